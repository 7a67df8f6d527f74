//! BLEU and chrF against sacreBLEU 2.6.0, the t distribution, intervals,
//! Welch's and the paired t-test against scipy, Holm's adjustment against
//! statsmodels, the minimum detectable effect of a paired design against
//! statsmodels and scipy's noncentral t, and the `actforge bleu` command. The expected
//! values are committed (tests/data/bleu, tests/data/stats) and were produced
//! by scripts/sacrebleu-cases.py and scripts/scipy-stats-cases.py.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use actforge::metrics::{
    bleu_signature, chrf_signature, corpus_bleu, corpus_chrf, holm, paired, paired_mde,
    student_t_quantile, student_t_sf, summarize, tokenize_13a, welch_p, Bleu,
};
use serde_json::Value;

/// Agreement with sacreBLEU's unrounded scores (0–100 scale).
const SACREBLEU_TOL: f64 = 1e-6;
/// Agreement with scipy, relative (absolute below 1e-300).
const SCIPY_TOL: f64 = 1e-9;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data(rel)).unwrap()).unwrap()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Asserts agreement within `tol`; returns the deviation.
fn close(ours: f64, theirs: f64, tol: f64, what: &str) -> f64 {
    let d = (ours - theirs).abs();
    assert!(d <= tol, "{what}: ours {ours}, expected {theirs}");
    d
}

/// Asserts the BLEU parts; returns the largest deviation of score, bp and precisions.
fn assert_bleu(b: &Bleu, e: &Value, nrefs: usize, what: &str) -> f64 {
    let mut worst = close(
        b.score,
        e["score"].as_f64().unwrap(),
        SACREBLEU_TOL,
        &format!("{what} score"),
    );
    worst = worst.max(close(
        b.bp,
        e["bp"].as_f64().unwrap(),
        SACREBLEU_TOL,
        &format!("{what} bp"),
    ));
    for (n, p) in f64s(&e["precisions"]).into_iter().enumerate() {
        worst = worst.max(close(
            b.precisions[n],
            p,
            SACREBLEU_TOL,
            &format!("{what} precision {}", n + 1),
        ));
    }
    assert_eq!(b.counts.to_vec(), usizes(&e["counts"]), "{what} counts");
    assert_eq!(b.totals.to_vec(), usizes(&e["totals"]), "{what} totals");
    assert_eq!(
        b.sys_len as u64,
        e["sys_len"].as_u64().unwrap(),
        "{what} sys_len"
    );
    assert_eq!(
        b.ref_len as u64,
        e["ref_len"].as_u64().unwrap(),
        "{what} ref_len"
    );
    assert_eq!(bleu_signature(nrefs), e["signature"].as_str().unwrap());
    worst
}

struct Case {
    name: String,
    hyps: Vec<String>,
    refs: Vec<Vec<String>>,
    expected: Value,
}

fn cases() -> Vec<Case> {
    let (inputs, expected) = (json("bleu/cases.json"), json("bleu/expected.json"));
    let owned = |v: &Value| strs(v).into_iter().map(String::from).collect::<Vec<_>>();
    let out: Vec<Case> = inputs["cases"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["cases"].as_array().unwrap())
        .map(|(c, e)| {
            assert_eq!(c["name"], e["name"]);
            Case {
                name: c["name"].as_str().unwrap().into(),
                hyps: owned(&c["hyps"]),
                refs: c["refs"].as_array().unwrap().iter().map(owned).collect(),
                expected: e.clone(),
            }
        })
        .collect();
    assert!(out.len() >= 25, "the committed cases are all read");
    out
}

fn borrow(c: &Case) -> (Vec<&str>, Vec<Vec<&str>>) {
    let hyps = c.hyps.iter().map(String::as_str).collect();
    let refs = c
        .refs
        .iter()
        .map(|s| s.iter().map(String::as_str).collect())
        .collect();
    (hyps, refs)
}

#[test]
fn bleu_equals_sacrebleu_on_every_case() {
    let mut worst = 0.0f64;
    for c in cases() {
        let (hyps, refs) = borrow(&c);
        let b = corpus_bleu(&hyps, &refs);
        worst = worst.max(assert_bleu(&b, &c.expected["bleu"], refs.len(), &c.name));
    }
    eprintln!("largest deviation from sacreBLEU (BLEU score, bp, precisions): {worst:e}");
}

#[test]
fn chrf_equals_sacrebleu_on_every_case() {
    let mut worst = 0.0f64;
    for c in cases() {
        let (hyps, refs) = borrow(&c);
        let e = &c.expected["chrf"];
        worst = worst.max(close(
            corpus_chrf(&hyps, &refs),
            e["score"].as_f64().unwrap(),
            SACREBLEU_TOL,
            &c.name,
        ));
        assert_eq!(chrf_signature(refs.len()), e["signature"].as_str().unwrap());
    }
    eprintln!("largest deviation from sacreBLEU (chrF): {worst:e}");
}

#[test]
fn tokenize_13a_equals_sacrebleu_on_every_line() {
    for c in cases() {
        let lines = c.hyps.iter().chain(c.refs.iter().flatten());
        for (line, want) in lines.zip(strs(&c.expected["tokenized"])) {
            assert_eq!(tokenize_13a(line), want, "{}: {line:?}", c.name);
        }
    }
}

fn corpus_lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(data(&format!("bleu/{name}"))).unwrap();
    text.lines().map(String::from).collect()
}

#[test]
fn realistic_corpus_equals_sacrebleu_with_one_and_two_references() {
    let e = &json("bleu/expected.json")["corpus"];
    let hyps = corpus_lines("corpus.hyp.txt");
    let (r1, r2) = (
        corpus_lines("corpus.ref1.txt"),
        corpus_lines("corpus.ref2.txt"),
    );
    assert_eq!((hyps.len(), r1.len(), r2.len()), (400, 400, 400));
    let h: Vec<&str> = hyps.iter().map(String::as_str).collect();
    let r1: Vec<&str> = r1.iter().map(String::as_str).collect();
    let r2: Vec<&str> = r2.iter().map(String::as_str).collect();
    for (key, refs) in [("one_ref", vec![r1.clone()]), ("two_refs", vec![r1, r2])] {
        let b = assert_bleu(&corpus_bleu(&h, &refs), &e[key]["bleu"], refs.len(), key);
        let chrf = e[key]["chrf"]["score"].as_f64().unwrap();
        let c = close(corpus_chrf(&h, &refs), chrf, SACREBLEU_TOL, key);
        eprintln!("400-line corpus, {key}: deviation BLEU {b:e}, chrF {c:e}");
    }
}

#[test]
fn streams_pair_up_like_zip() {
    // A longer hypothesis stream is cut to the references, as sacreBLEU's zip.
    let short = corpus_bleu(&["a b c d e"], &[vec!["a b c d e"]]);
    let long = corpus_bleu(&["a b c d e", "x y"], &[vec!["a b c d e"]]);
    assert_eq!(short, long);
    assert_eq!(corpus_bleu(&["a"], &[]).score, 0.0);
    assert_eq!(corpus_chrf(&[], &[vec!["a"]]), 0.0);
}

/// Asserts relative agreement with scipy; returns the relative deviation.
fn rel_close(ours: f64, theirs: f64, what: &str) -> f64 {
    let scale = theirs.abs().max(1e-300);
    let rel = (ours - theirs).abs() / scale;
    assert!(rel <= SCIPY_TOL, "{what}: ours {ours:e}, scipy {theirs:e}");
    rel
}

#[test]
fn student_t_equals_scipy() {
    let d = json("stats/scipy.json");
    let mut worst = 0.0f64;
    for q in d["quantiles"].as_array().unwrap() {
        let (p, df) = (q["p"].as_f64().unwrap(), q["df"].as_f64().unwrap());
        let want = q["t"].as_f64().unwrap();
        let what = format!("ppf({p}, {df})");
        worst = worst.max(rel_close(student_t_quantile(p, df), want, &what));
    }
    for s in d["sf"].as_array().unwrap() {
        let (t, df) = (s["t"].as_f64().unwrap(), s["df"].as_f64().unwrap());
        let want = s["sf"].as_f64().unwrap();
        worst = worst.max(rel_close(
            student_t_sf(t, df),
            want,
            &format!("sf({t}, {df})"),
        ));
    }
    eprintln!("largest relative deviation from scipy (t quantiles and tails): {worst:e}");
}

#[test]
fn summaries_equal_scipy() {
    let mut worst = 0.0f64;
    for s in json("stats/scipy.json")["summaries"].as_array().unwrap() {
        let xs = f64s(&s["xs"]);
        let got = summarize(&xs);
        let ci = f64s(&s["ci95"]);
        assert_eq!(got.n, xs.len());
        for (ours, theirs, what) in [
            (got.mean, s["mean"].as_f64().unwrap(), "mean"),
            (got.sd, s["sd"].as_f64().unwrap(), "sd"),
            (got.ci95.0, ci[0], "ci low"),
            (got.ci95.1, ci[1], "ci high"),
        ] {
            worst = worst.max(rel_close(ours, theirs, &format!("{what} of {xs:?}")));
        }
    }
    eprintln!("largest relative deviation from scipy (mean, sd, 95% CI): {worst:e}");
}

#[test]
fn welch_equals_scipy() {
    let mut worst = 0.0f64;
    for w in json("stats/scipy.json")["welch"].as_array().unwrap() {
        let (a, b) = (f64s(&w["a"]), f64s(&w["b"]));
        let p = welch_p(&a, &b).expect("defined");
        worst = worst.max(rel_close(
            p,
            w["p"].as_f64().unwrap(),
            &format!("welch {a:?} {b:?}"),
        ));
        assert_eq!(welch_p(&b, &a), Some(p), "symmetric");
    }
    eprintln!("largest relative deviation from scipy (Welch p): {worst:e}");
}

/// An optional number of the cases file (`null`: undefined).
fn opt(v: &Value) -> Option<f64> {
    v.as_f64()
}

#[test]
fn paired_t_equals_scipy_ttest_rel() {
    let mut worst = 0.0f64;
    for c in json("stats/scipy.json")["paired"].as_array().unwrap() {
        let (x, y) = (f64s(&c["contender"]), f64s(&c["baseline"]));
        let diffs: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
        let got = paired(&diffs);
        let what = format!("ttest_rel({x:?}, {y:?})");
        assert_eq!(got.n, x.len());
        // A mean difference of ~1e-16 is rounding: compare it on the scale
        // of the data.
        let scale = x.iter().map(|v| v.abs()).fold(0.0, f64::max) * 1e-6;
        let want = c["mean_diff"].as_f64().unwrap();
        assert!(
            (got.mean_diff - want).abs() <= SCIPY_TOL * want.abs().max(scale),
            "{what}: mean_diff {} vs {want}",
            got.mean_diff
        );
        let ci = f64s(&c["ci95"]);
        match opt(&c["p"]) {
            Some(p) => worst = worst.max(rel_close(got.p.expect("defined"), p, &what)),
            None => assert_eq!(got.p, None, "{what}"),
        }
        for (ours, theirs, end) in [(got.ci95.0, ci[0], "low"), (got.ci95.1, ci[1], "high")] {
            assert!(
                (ours - theirs).abs() <= SCIPY_TOL * theirs.abs().max(scale),
                "{what}: ci {end} {ours} vs {theirs}"
            );
        }
        worst = worst.max(rel_close(
            got.sd_diff,
            c["sd_diff"].as_f64().unwrap(),
            &what,
        ));
    }
    eprintln!("largest relative deviation from scipy (paired p, sd of differences): {worst:e}");
}

#[test]
fn holm_equals_statsmodels_multipletests() {
    let mut worst = 0.0f64;
    for c in json("stats/scipy.json")["holm"].as_array().unwrap() {
        let ps: Vec<Option<f64>> = c["p"].as_array().unwrap().iter().map(opt).collect();
        let want: Vec<Option<f64>> = c["holm"].as_array().unwrap().iter().map(opt).collect();
        let got = holm(&ps);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            match (g, w) {
                (Some(g), Some(w)) => worst = worst.max(rel_close(*g, *w, &format!("holm {ps:?}"))),
                _ => assert_eq!(g, w, "holm {ps:?}"),
            }
        }
    }
    eprintln!("largest relative deviation from statsmodels (Holm): {worst:e}");
}

#[test]
fn minimum_detectable_effect_equals_the_noncentral_t() {
    let mut worst = 0.0f64;
    for c in json("stats/scipy.json")["mde"].as_array().unwrap() {
        let f = |k: &str| c[k].as_f64().unwrap();
        let n = c["n"].as_u64().unwrap() as usize;
        let got = paired_mde(f("sd"), n, f("alpha"), f("power"));
        let want = f("mde");
        let rel = (got - want).abs() / want;
        assert!(
            rel <= SCIPY_TOL,
            "mde sd {} n {n}: ours {got}, scipy {want}",
            f("sd")
        );
        worst = worst.max(rel);
    }
    eprintln!("largest relative deviation from scipy's noncentral t (MDE): {worst:e}");
}

// ---- the `actforge bleu` command -------------------------------------------

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_actforge"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn path(rel: &str) -> String {
    data(rel).to_str().unwrap().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("actforge-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bleu_command_json_equals_sacrebleu() {
    let e = &json("bleu/expected.json")["corpus"]["two_refs"];
    let (r1, r2, hyp) = (
        path("bleu/corpus.ref1.txt"),
        path("bleu/corpus.ref2.txt"),
        path("bleu/corpus.hyp.txt"),
    );
    let o = run(&["bleu", "--ref", &r1, "--ref", &r2, "--hyp", &hyp, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "score",
            "bp",
            "precisions",
            "sys_len",
            "ref_len",
            "chrf",
            "signature"
        ]
    );
    let b = &e["bleu"];
    for key in ["score", "bp"] {
        close(
            v[key].as_f64().unwrap(),
            b[key].as_f64().unwrap(),
            SACREBLEU_TOL,
            key,
        );
    }
    for (ours, theirs) in f64s(&v["precisions"])
        .into_iter()
        .zip(f64s(&b["precisions"]))
    {
        close(ours, theirs, SACREBLEU_TOL, "precision");
    }
    assert_eq!(v["sys_len"], b["sys_len"]);
    assert_eq!(v["ref_len"], b["ref_len"]);
    close(
        v["chrf"].as_f64().unwrap(),
        e["chrf"]["score"].as_f64().unwrap(),
        SACREBLEU_TOL,
        "chrf",
    );
    assert_eq!(v["signature"], b["signature"]);
}

#[test]
fn bleu_command_text_shows_both_scores_with_signatures() {
    let (r1, hyp) = (path("bleu/corpus.ref1.txt"), path("bleu/corpus.hyp.txt"));
    let o = run(&["bleu", "--ref", &r1, "--hyp", &hyp]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let e = &json("bleu/expected.json")["corpus"]["one_ref"];
    let score = e["bleu"]["score"].as_f64().unwrap();
    let chrf = e["chrf"]["score"].as_f64().unwrap();
    assert!(text.contains(&format!("BLEU = {score:.2}")), "{text}");
    assert!(text.contains(&format!("chrF2 = {chrf:.2}")), "{text}");
    assert!(
        text.contains(&bleu_signature(1)) && text.contains(&chrf_signature(1)),
        "{text}"
    );
}

#[test]
fn bleu_command_names_both_files_on_a_line_count_mismatch() {
    let hyp = scratch("three.txt", b"a\nb\nc\n");
    let r1 = path("bleu/corpus.ref1.txt");
    let o = run(&["bleu", "--ref", &r1, "--hyp", &hyp]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&hyp) && err.contains(&r1), "{err}");
    assert!(
        err.contains("3 lines") && err.contains("400 lines"),
        "{err}"
    );
}

#[test]
fn bleu_command_names_file_and_line_of_invalid_utf8() {
    let hyp = scratch("bad.txt", b"fine\nbad \xff byte\n");
    let r = scratch("ref.txt", b"fine\nalso fine\n");
    let o = run(&["bleu", "--ref", &r, "--hyp", &hyp]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{hyp}:2:")) && err.contains("UTF-8"),
        "{err}"
    );
}

#[test]
fn bleu_command_help_teaches_the_json_keys() {
    let o = run(&["bleu", "--help"]);
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    for key in [
        "\"score\"",
        "\"bp\"",
        "\"precisions\"",
        "\"sys_len\"",
        "\"ref_len\"",
        "\"chrf\"",
        "\"signature\"",
    ] {
        assert!(help.contains(key), "{key} missing from --help");
    }
    assert!(help.contains("actforge bleu --ref"), "an example");
}
