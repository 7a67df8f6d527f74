//! `open`: a corpus from `builtin:NAME` or from a data file in one of three
//! formats (detected when not given). It picks the loader; the types are in
//! `corpus`, the parsers in `load` and `builtin`.

use std::path::Path;

use super::corpus::{Corpus, Format};
use super::{builtin, load};
use crate::error::{Error, Result, Setting};

/// Open `builtin:NAME` (see [`super::BUILTIN_NAMES`]) or a file. `format`
/// `None` detects it from the file (see [`load::detect`]). Malformed records
/// are skipped with located warnings; a file more than half malformed, or
/// with no pair at all, is an error.
pub fn open(spec: &str, format: Option<Format>) -> Result<Corpus> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        if format.is_some_and(|f| f != Format::Tsv) {
            return Err(Error::setting(format!(
                "{} does not apply to the built-in corpus {spec}",
                Setting::Format
            )));
        }
        return builtin::builtin(name);
    }
    let path = Path::new(spec);
    let bytes = read_data_file(path, spec)?;
    let mut c = load::load_bytes(&bytes, format, spec)?;
    c.path = Some(path.to_path_buf());
    Ok(c)
}

/// The bytes of a data file: a regular file (a FIFO would block the open or
/// the read, a device such as `/dev/zero` would never end) of at most
/// [`crate::limits::DATA_FILE_BYTES`].
fn read_data_file(path: &Path, spec: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let limit = crate::limits::DATA_FILE_BYTES;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(spec, e))?;
    let meta = f.metadata().map_err(|e| Error::io(spec, e))?;
    if !meta.is_file() {
        return Err(Error::Input {
            path: spec.to_string(),
            line: None,
            message: "is not a regular file (a FIFO, device or folder): give a data file".into(),
        });
    }
    let too_big = |n: u64| {
        Error::Usage(format!(
            "the data file {spec} has {n} bytes, above the limit of {} ({})",
            limit.max, limit.what
        ))
    };
    if meta.len() > limit.max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(limit.max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(spec, e))?;
    if bytes.len() as u64 > limit.max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}
