//! `actforge bleu`: corpus BLEU and chrF of a hypothesis file against one or
//! more reference files, equal to sacreBLEU 2.6.0's defaults. Reading,
//! checking and printing only; the metrics live in `crate::metrics`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::io::note;
use crate::error::{Error, Result};
use crate::metrics::{bleu_signature, chrf_signature, corpus_bleu, corpus_chrf, Bleu};

pub const AFTER_HELP: &str = "\
Files hold one segment (sentence) per line, UTF-8; line i of every --ref is a
reference for line i of --hyp, so all files must have the same number of
lines (a byte-order mark at the start of a file is kept as text, as
sacreBLEU keeps it, with a warning). Scores equal sacreBLEU 2.6.0 with its defaults (BLEU: tokenizer 13a,
exponential smoothing, 4-grams, closest reference length, case kept; chrF2:
character 6-grams, whitespace removed, beta 2), on its 0-100 scale, each
printed with sacreBLEU's signature so published numbers can be compared.

Examples:
  actforge bleu --ref newstest.de --hyp output.de
  actforge bleu --ref ref1.txt --ref ref2.txt --hyp hyp.txt --json

JSON (--json), keys stable: {\"score\": BLEU, \"bp\": brevity penalty,
\"precisions\": [p1, p2, p3, p4] (0-100), \"sys_len\": hypothesis tokens,
\"ref_len\": closest-reference tokens, \"chrf\": chrF2, \"signature\": the BLEU
signature}. chrF's signature is nrefs:N|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0.";

/// Arguments of `actforge bleu`.
#[derive(Args, Debug)]
pub struct BleuArgs {
    /// A reference file; repeat for several references per segment.
    #[arg(long = "ref", value_name = "REF.txt", required = true)]
    pub refs: Vec<PathBuf>,
    /// The system output (hypotheses), one segment per line.
    #[arg(long, value_name = "HYP.txt")]
    pub hyp: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run the command; exit status 0.
pub fn run(out: &mut dyn Write, args: &BleuArgs) -> Result<i32> {
    let hyps = read_lines(&args.hyp)?;
    warn_bom(&args.hyp, &hyps);
    let mut refs = Vec::with_capacity(args.refs.len());
    for path in &args.refs {
        let lines = read_lines(path)?;
        warn_bom(path, &lines);
        check_count(&args.hyp, hyps.len(), path, lines.len())?;
        refs.push(lines);
    }
    let hyps: Vec<&str> = hyps.iter().map(String::as_str).collect();
    let refs: Vec<Vec<&str>> = refs
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let bleu = corpus_bleu(&hyps, &refs);
    let chrf = corpus_chrf(&hyps, &refs);
    print(out, &bleu, chrf, refs.len(), args.json)?;
    Ok(0)
}

fn print(out: &mut dyn Write, b: &Bleu, chrf: f64, nrefs: usize, as_json: bool) -> Result<()> {
    if as_json {
        let v = json!({
            "score": b.score,
            "bp": b.bp,
            "precisions": b.precisions,
            "sys_len": b.sys_len,
            "ref_len": b.ref_len,
            "chrf": chrf,
            "signature": bleu_signature(nrefs),
        });
        outln!(out, "{v}");
        return Ok(());
    }
    let p = b.precisions.map(|p| format!("{p:.1}")).join("/");
    let ratio = if b.ref_len > 0 {
        b.sys_len as f64 / b.ref_len as f64
    } else {
        0.0
    };
    outln!(
        out,
        "BLEU = {:.2} {p} (BP = {:.3} ratio = {ratio:.3} hyp_len = {} ref_len = {})",
        b.score,
        b.bp,
        b.sys_len,
        b.ref_len
    );
    outln!(out, "  {}", bleu_signature(nrefs));
    outln!(out, "chrF2 = {chrf:.2}");
    outln!(out, "  {}", chrf_signature(nrefs));
    Ok(())
}

/// A UTF-8 byte-order mark is text to sacreBLEU (it reads files as plain
/// UTF-8), so it stays in the first segment and lowers that segment's
/// score; scores stay equal to sacreBLEU's, but the user is told, as data
/// files warn about what they skip.
fn warn_bom(path: &Path, lines: &[String]) {
    if lines.first().is_some_and(|l| l.starts_with('\u{feff}')) {
        note(format!(
            "warning: {}:1: starts with a UTF-8 byte-order mark, which is scored as part of the first segment (as sacreBLEU does), lowering its score; remove it (e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' {})",
            path.display(),
            path.display()
        ));
    }
}

fn check_count(hyp: &Path, hyp_lines: usize, reference: &Path, ref_lines: usize) -> Result<()> {
    if hyp_lines == ref_lines {
        return Ok(());
    }
    Err(Error::Input {
        path: hyp.display().to_string(),
        line: None,
        message: format!(
            "the hypotheses have {hyp_lines} lines but the reference {} has {ref_lines} lines \
             (one segment per line, the same count in every file)",
            reference.display()
        ),
    })
}

/// The lines of a UTF-8 file, split at `\n` only (as sacreBLEU reads them;
/// a final newline ends the last line rather than starting an empty one).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mut pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|l| l.is_empty()) {
        pieces.pop();
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, line)| utf8_line(path, i + 1, line))
        .collect()
}

fn utf8_line(path: &Path, line: usize, bytes: &[u8]) -> Result<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => Err(Error::Input {
            path: path.display().to_string(),
            line: Some(line),
            message: format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1),
        }),
    }
}
