//! The built-in corpora, compressed with xz and embedded in the binary, so
//! `builtin:NAME` works from any directory with no network. Built by
//! `scripts/build-corpora.sh` from Debian packages; licences and cleaning
//! rules are in `data/LICENSES.md` and `data/README.md`.

use std::sync::OnceLock;

use super::corpus::{Corpus, CorpusKind, Format};
use super::load::load_bytes;
use crate::error::{Error, Result};

/// The names `builtin:NAME` accepts.
pub const BUILTIN_NAMES: [&str; 2] = ["translate", "qa"];

static TRANSLATE_XZ: &[u8] = include_bytes!("../../data/translate.tsv.xz");
static QA_XZ: &[u8] = include_bytes!("../../data/qa.tsv.xz");

/// The built-in corpus `name` (`translate`: English → German, Ding
/// dictionary, GPL-2+; `qa`: questions and answers from element data,
/// BSD quiz files and WordNet). Decoded once per process, then cloned.
pub fn builtin(name: &str) -> Result<Corpus> {
    static TRANSLATE: OnceLock<Corpus> = OnceLock::new();
    static QA: OnceLock<Corpus> = OnceLock::new();
    let (cell, xz, kind) = match name {
        "translate" => (&TRANSLATE, TRANSLATE_XZ, CorpusKind::Translation),
        "qa" => (&QA, QA_XZ, CorpusKind::Qa),
        _ => {
            return Err(Error::Usage(format!(
                "unknown built-in corpus 'builtin:{name}'; the built-in corpora are {}",
                BUILTIN_NAMES.map(|n| format!("builtin:{n}")).join(", ")
            )))
        }
    };
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let c = decode(name, xz, kind)?;
    Ok(cell.get_or_init(|| c).clone())
}

fn decode(name: &str, xz: &[u8], kind: CorpusKind) -> Result<Corpus> {
    let spec = format!("builtin:{name}");
    let mut tsv = Vec::with_capacity(xz.len() * 5);
    lzma_rs::xz_decompress(&mut &xz[..], &mut tsv).map_err(|e| Error::Input {
        path: spec.clone(),
        line: None,
        message: format!("the embedded xz data does not decode: {e}"),
    })?;
    let mut c = load_bytes(&tsv, Some(Format::Tsv), &spec)?;
    c.kind = kind;
    Ok(c)
}
