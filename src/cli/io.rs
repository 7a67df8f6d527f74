//! Standard output and error for the commands: every command writes to
//! one `&mut dyn Write`, so a closed pipe is one `Error::Io` on
//! [`STDOUT`] (which `cli::run` turns into a quiet exit), and messages on
//! stderr never echo control characters raw.

use std::fmt::Display;
use std::io::Write;

use crate::error::{Error, Result};
use crate::syntax::escape_controls;

/// The path named in errors about standard output.
pub const STDOUT: &str = "<stdout>";

/// `text` to standard output as it is (it ends with its own newline).
pub fn put(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes()).map_err(stdout_error)
}

pub fn stdout_error(e: std::io::Error) -> Error {
    Error::io(STDOUT, e)
}

/// A message on standard error, control characters other than newlines
/// and tabs escaped (`\u{1b}`: user input never reaches the terminal raw);
/// a closed stderr is ignored.
pub fn note(msg: impl Display) {
    let text = msg.to_string();
    let safe: Vec<String> = text
        .split('\n')
        .map(|line| {
            let parts: Vec<_> = line.split('\t').map(escape_controls).collect();
            parts.join("\t")
        })
        .collect();
    let _ = writeln!(std::io::stderr(), "{}", safe.join("\n"));
}
