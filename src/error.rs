//! The crate error: one variant per stage that can fail on bad input or a
//! broken environment. Numerical failure and exhausted budgets are values,
//! not errors.

use std::fmt;

use crate::syntax::Diagnostic;

#[derive(Debug)]
pub enum Error {
    /// Bad formula or definitions text: renders with a caret.
    Syntax(Diagnostic),
    /// A data or input file problem, with the file and line.
    Input {
        path: String,
        line: Option<usize>,
        message: String,
    },
    /// I/O on a named path.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Command-line usage that parsed but makes no sense.
    Usage(String),
    /// A library or tool the operation needs is not installed.
    Missing {
        what: String,
        detail: String,
        hint: String,
    },
    /// NVRTC rejected generated code: the evidence is kept.
    Compile {
        message: String,
        options: Vec<String>,
        log: String,
        source_code: String,
    },
    /// A CUDA driver call failed.
    Cuda(String),
    /// A tensor operation failed (shape or device): a bug or a broken
    /// environment, never a numerical result (NaN/Inf are values).
    Tensor(candle_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Syntax(d)
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Tensor(e)
    }
}

impl Error {
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Syntax(d) => write!(f, "{d}"),
            Error::Input {
                path,
                line: Some(l),
                message,
            } => write!(f, "error: {path}:{l}: {message}"),
            Error::Input {
                path,
                line: None,
                message,
            } => write!(f, "error: {path}: {message}"),
            Error::Io { path, source } => write!(f, "error: {path}: {source}"),
            Error::Usage(m) => write!(f, "error: {m}"),
            Error::Missing { what, detail, hint } => {
                write!(
                    f,
                    "error: {what} is not available: {detail}\n  = help: {hint}"
                )
            }
            Error::Compile {
                message,
                options,
                log,
                source_code,
            } => {
                write!(f, "error: {message}\n  options: {}\n", options.join(" "))?;
                writeln!(f, "  log:")?;
                for l in log.lines() {
                    writeln!(f, "    {l}")?;
                }
                write!(
                    f,
                    "  (generated source: {} lines, kept in the error)",
                    source_code.lines().count()
                )
            }
            Error::Cuda(m) => write!(f, "error: CUDA: {m}"),
            Error::Tensor(e) => write!(f, "error: tensor: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Tensor(e) => Some(e),
            _ => None,
        }
    }
}
