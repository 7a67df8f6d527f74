//! A GPU architecture as NVRTC targets it: the one parser of `sm_90`,
//! `compute_90` or `90` (whether this NVRTC supports it is
//! `export::check_arch`'s question).

use std::fmt;
use std::str::FromStr;

use crate::syntax::escape_controls;

/// Compute capability × 10 (`sm_90` is `Arch(90)`); prints as `sm_90`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch(pub u32);

impl FromStr for Arch {
    type Err = String;

    fn from_str(s: &str) -> Result<Arch, String> {
        let digits = s
            .trim()
            .trim_start_matches("sm_")
            .trim_start_matches("compute_");
        digits
            .parse::<u32>()
            .ok()
            .filter(|&a| a > 0)
            .map(Arch)
            .ok_or_else(|| {
                format!(
                    "expected an SM architecture such as sm_90, got `{}`",
                    escape_controls(s)
                )
            })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sm_{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!("sm_90".parse(), Ok(Arch(90)));
        assert_eq!("compute_80".parse(), Ok(Arch(80)));
        assert_eq!("120".parse(), Ok(Arch(120)));
        assert!("sm_x".parse::<Arch>().is_err());
        assert!("sm_0".parse::<Arch>().is_err());
        assert_eq!(Arch(90).to_string(), "sm_90");
    }
}
