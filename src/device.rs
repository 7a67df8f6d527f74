//! Where work runs: the CPU or a GPU. One parse of the names users write
//! (`cpu`, `cuda`, `cuda:N`), one spelling back (so settings files keep
//! their text), and the one place that opens a candle device from it.
//!
//! A leaf: it knows no formula, model or search; `train`, `search`,
//! `eval-candidates` and `bench` all read `--device` through it.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The CPU, or a GPU: `cuda` (the default GPU) or `cuda:N` (GPU `N`).
/// `cuda` and `cuda:0` train on the same GPU but are kept apart, so a
/// device prints as it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    /// `None`: the default GPU (`cuda`); `Some(n)`: `cuda:n`.
    Cuda(Option<usize>),
}

impl Device {
    /// `cpu`, `cuda` or `cuda:N`.
    pub fn parse(spec: &str) -> Result<Device> {
        match spec {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(None)),
            s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(n) => Ok(Device::Cuda(Some(n))),
                None => Err(Error::Usage(format!(
                    "device `{spec}`: expected cpu, cuda or cuda:N"
                ))),
            },
        }
    }

    pub fn is_cpu(self) -> bool {
        self == Device::Cpu
    }

    pub fn is_cuda(self) -> bool {
        !self.is_cpu()
    }

    /// The GPU's ordinal (`cuda` is GPU 0); `None` on the CPU.
    pub fn ordinal(self) -> Option<usize> {
        match self {
            Device::Cpu => None,
            Device::Cuda(n) => Some(n.unwrap_or(0)),
        }
    }

    /// Open it as a candle device (a GPU needs the `cuda` feature and a
    /// driver; the error says so).
    pub fn open(self) -> Result<candle_core::Device> {
        let Some(ordinal) = self.ordinal() else {
            return Ok(candle_core::Device::Cpu);
        };
        candle_core::Device::new_cuda(ordinal).map_err(|e| Error::Missing {
            what: format!("CUDA device {ordinal}"),
            detail: e.to_string(),
            hint: format!(
                "build with `--features cuda` on a machine with an NVIDIA driver, or use {} cpu",
                crate::error::Setting::Device
            ),
        })
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(None) => f.write_str("cuda"),
            Device::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        Device::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Device;

    #[test]
    fn devices_print_as_written() {
        for s in ["cpu", "cuda", "cuda:0", "cuda:3"] {
            assert_eq!(Device::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Device::parse("cuda").unwrap().ordinal(), Some(0));
        assert_eq!(Device::parse("cuda:3").unwrap().ordinal(), Some(3));
        assert_eq!(Device::Cpu.ordinal(), None);
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", " cpu", "cuda:-1"] {
            let e = Device::parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu, cuda or cuda:N"), "{bad}: {e}");
        }
        assert!(matches!(Device::Cpu.open(), Ok(candle_core::Device::Cpu)));
    }
}
