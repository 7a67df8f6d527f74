//! Loaders for the user's data: Tatoeba exports, `src<TAB>tgt` TSV, and Q&A
//! text (blocks or JSONL). Bad records never panic: each is skipped with a
//! warning naming its line and the reason; a file that is more than half
//! malformed, or has no pair, is one clear error.
//!
//! Every reason string starts the same way for the same fault, so tests and
//! users can match on it; see the `REASON_*` prefixes.

use serde_json::Value;

use super::corpus::{Corpus, Format, Pair, Warning};
use crate::error::{Error, Result};

/// Longest accepted record (and so line) in bytes, after line endings are
/// removed: [`crate::limits::RECORD_BYTES`]. A Q&A block's continuation
/// lines count toward its record.
pub const MAX_LINE_BYTES: usize = crate::limits::RECORD_BYTES.max as usize;

/// One line of input: its 1-based number and its text, or why it has none.
struct Line<'a> {
    no: usize,
    text: std::result::Result<&'a str, String>,
}

/// One record's outcome, located at its first (or faulty) line.
type Record = (usize, std::result::Result<Pair, String>);

/// Parse a whole file's bytes. `name` is used in errors (the path as given).
pub fn load_bytes(bytes: &[u8], format: Option<Format>, name: &str) -> Result<Corpus> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let lines = split_lines(bytes);
    let format = format.unwrap_or_else(|| detect(&lines, name));
    let records = match format {
        Format::Tsv => lines.iter().filter_map(|l| tsv(l, 2)).collect(),
        Format::Tatoeba => lines.iter().filter_map(|l| tsv(l, 4)).collect(),
        Format::Qa if first_text(&lines).is_some_and(|t| t.starts_with('{')) => {
            lines.iter().filter_map(jsonl).collect()
        }
        Format::Qa => qa_blocks(&lines),
    };
    tally(records, format, name)
}

fn split_lines(bytes: &[u8]) -> Vec<Line<'_>> {
    let mut body = bytes;
    if let Some(b) = body.strip_suffix(b"\n") {
        body = b;
    }
    if bytes.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| Line {
            no: i + 1,
            text: decode(raw.strip_suffix(b"\r").unwrap_or(raw)),
        })
        .collect()
}

fn decode(raw: &[u8]) -> std::result::Result<&str, String> {
    if raw.len() > MAX_LINE_BYTES {
        return Err(format!(
            "line too long: {} bytes (limit {MAX_LINE_BYTES})",
            raw.len()
        ));
    }
    std::str::from_utf8(raw).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1))
}

fn first_text<'a>(lines: &[Line<'a>]) -> Option<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.text.as_ref().ok().copied())
        .find(|t| !t.trim().is_empty())
        .map(str::trim_start)
}

/// The format of a file given without `--format`: `.jsonl`, or a first
/// line starting with `Q:` or `{`, is Q&A; four columns with numeric first
/// and third columns are Tatoeba; anything else is TSV.
pub fn detect_format(bytes: &[u8], name: &str) -> Format {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    detect(&split_lines(bytes), name)
}

fn detect(lines: &[Line<'_>], name: &str) -> Format {
    let first = first_text(lines).unwrap_or("");
    if name.ends_with(".jsonl") || first.starts_with("Q:") || first.starts_with('{') {
        return Format::Qa;
    }
    let cols: Vec<&str> = first.split('\t').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if cols.len() == 4 && numeric(cols[0]) && numeric(cols[2]) {
        Format::Tatoeba
    } else {
        Format::Tsv
    }
}

/// A TSV line with `columns` columns (2: src, tgt; 4: Tatoeba's id, text,
/// id, text). Blank lines are no record.
fn tsv(line: &Line<'_>, columns: usize) -> Option<Record> {
    let text = match &line.text {
        Ok(t) if t.trim().is_empty() => return None,
        Ok(t) => *t,
        Err(reason) => return Some((line.no, Err(reason.clone()))),
    };
    let cols: Vec<&str> = text.split('\t').collect();
    if cols.len() != columns {
        let reason = format!(
            "wrong column count: expected {columns} tab-separated columns, found {}",
            cols.len()
        );
        return Some((line.no, Err(reason)));
    }
    let (src, tgt) = if columns == 4 {
        if let Some(bad) = [cols[0], cols[2]]
            .into_iter()
            .find(|c| c.trim().parse::<u64>().is_err())
        {
            return Some((
                line.no,
                Err(format!("bad sentence id: {bad:?} is not a number")),
            ));
        }
        (cols[1], cols[3])
    } else {
        (cols[0], cols[1])
    };
    Some((line.no, pair(src, tgt, "source", "target")))
}

fn pair(src: &str, tgt: &str, src_name: &str, tgt_name: &str) -> std::result::Result<Pair, String> {
    let (src, tgt) = (src.trim(), tgt.trim());
    if src.is_empty() {
        return Err(format!("empty {src_name}"));
    }
    if tgt.is_empty() {
        return Err(format!("empty {tgt_name}"));
    }
    Ok(Pair::new(src, tgt))
}

/// A JSONL line: an object with string fields `q` and `a`.
fn jsonl(line: &Line<'_>) -> Option<Record> {
    let text = match &line.text {
        Ok(t) if t.trim().is_empty() => return None,
        Ok(t) => *t,
        Err(reason) => return Some((line.no, Err(reason.clone()))),
    };
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some((line.no, Err(format!("invalid JSON: {e}")))),
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str);
    let r = match (field("q"), field("a")) {
        (Some(q), Some(a)) => pair(q, a, "question", "answer"),
        (None, _) => Err("missing string field \"q\"".to_string()),
        (_, None) => Err("missing string field \"a\"".to_string()),
    };
    Some((line.no, r))
}

/// Q&A blocks: non-blank lines separated by blank lines, each block one
/// `Q:` line and one `A:` line; other lines continue the field above them.
fn qa_blocks(lines: &[Line<'_>]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut block: Vec<&Line<'_>> = Vec::new();
    for line in lines {
        if matches!(&line.text, Ok(t) if t.trim().is_empty()) {
            if !block.is_empty() {
                out.push(qa_block(&block));
                block.clear();
            }
        } else {
            block.push(line);
        }
    }
    if !block.is_empty() {
        out.push(qa_block(&block));
    }
    out
}

fn qa_block(block: &[&Line<'_>]) -> Record {
    let start = block[0].no;
    // Each line is within the limit; the record must be too, however many
    // continuation lines it has.
    let bytes: usize = block
        .iter()
        .map(|l| l.text.as_ref().map_or(0, |t| t.len() + 1))
        .sum::<usize>()
        .saturating_sub(1);
    if bytes > MAX_LINE_BYTES {
        return (
            start,
            Err(format!(
                "record too long: {bytes} bytes over {} lines (limit {MAX_LINE_BYTES} bytes per record)",
                block.len()
            )),
        );
    }
    let (mut q, mut a): (Option<String>, Option<String>) = (None, None);
    for line in block {
        let text = match &line.text {
            Ok(t) => t.trim(),
            Err(reason) => return (line.no, Err(reason.clone())),
        };
        if let Some(rest) = text.strip_prefix("Q:") {
            if q.is_some() {
                return (
                    line.no,
                    Err("a second 'Q:' in one block (separate pairs with a blank line)".into()),
                );
            }
            q = Some(rest.trim().to_string());
        } else if let Some(rest) = text.strip_prefix("A:") {
            if q.is_none() {
                return (line.no, Err("'A:' before any 'Q:' in its block".into()));
            }
            if a.is_some() {
                return (line.no, Err("a second 'A:' in one block".into()));
            }
            a = Some(rest.trim().to_string());
        } else {
            match (&mut q, &mut a) {
                (_, Some(field)) | (Some(field), None) => {
                    field.push(' ');
                    field.push_str(text);
                }
                (None, None) => return (line.no, Err("block does not start with 'Q:'".into())),
            }
        }
    }
    match (q, a) {
        (Some(q), Some(a)) => (start, pair(&q, &a, "question", "answer")),
        _ => (start, Err("question without an 'A:' line".into())),
    }
}

/// Count the outcomes; more than half malformed (or no pair) is an error.
fn tally(records: Vec<Record>, format: Format, name: &str) -> Result<Corpus> {
    let total = records.len();
    let mut pairs = Vec::with_capacity(total);
    let mut warnings = Vec::new();
    for (line, r) in records {
        match r {
            Ok(p) => pairs.push(p),
            Err(reason) => warnings.push(Warning { line, reason }),
        }
    }
    let input_error = |message: String| Error::Input {
        path: name.to_string(),
        line: None,
        message,
    };
    if warnings.len() * 2 > total {
        let w = &warnings[0];
        return Err(input_error(format!(
            "{} of {total} records are malformed (more than half), so nothing is loaded; \
             the first: line {}: {} (is {} {} right?)",
            warnings.len(),
            w.line,
            w.reason,
            crate::error::Setting::Format,
            format.as_str()
        )));
    }
    if pairs.is_empty() {
        return Err(input_error(format!(
            "no pairs found (format {})",
            format.as_str()
        )));
    }
    Ok(Corpus {
        name: name.to_string(),
        kind: format.kind(),
        skipped: warnings.len(),
        pairs,
        warnings,
        path: None,
    })
}
