//! The run report (`report.html`): a search and a train run each end with
//! a line naming it; the verdict shows the paired contract where a run's
//! files have it and an honest fallback where they do not (fixtures of
//! both shapes in tests/data/report); an interrupted search and an
//! unfinished train run have a page; `actforge report DIR` rebuilds one;
//! and the pages render in headless Chromium without console errors or
//! network requests.
//!
//! The browser test needs Chromium (Debian: `apt-get install chromium`;
//! or `ACTFORGE_CHROMIUM=/path`). Without one it says why and passes,
//! unless `ACTFORGE_REQUIRE_BROWSER=1` (CI sets it).
//! `ACTFORGE_REPORT_SCREENSHOTS=DIR` keeps its screenshots.

mod browser;
#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use actforge::search::config::EvaluatorKind;
use actforge::search::evaluator::evaluators;
use actforge::search::progress::Observer;
use actforge::search::run::logbook::Row;
use actforge::search::run::record::Record;
use actforge::search::{InProcess, Outcome, Search, Settings};
use common::harness::{bin, tmp};

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fixture(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/report")
        .join(kind)
}

/// A copy of a fixture run directory; `pick` renames one of its files
/// (e.g. `final-paired.json` → `final.json`).
fn fixture_run(kind: &str, name: &str, pick: Option<(&str, &str)>) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixture(kind)).unwrap() {
        let e = e.unwrap();
        let file = e.file_name().to_string_lossy().into_owned();
        let to = match pick {
            Some((from, to)) if file == from => to.to_string(),
            _ if file.contains("-paired") || file.contains("-welch") => continue,
            _ => file,
        };
        std::fs::copy(e.path(), dir.join(to)).unwrap();
    }
    dir
}

/// `actforge report DIR`, which must print the page's path first.
fn report(dir: &Path) -> String {
    let out = ok(bin().arg("report").arg(dir).output().unwrap());
    let page = dir.join("report.html");
    assert_eq!(
        out.lines().next(),
        Some(page.display().to_string().as_str()),
        "{out}"
    );
    std::fs::read_to_string(page).unwrap()
}

#[test]
fn a_search_verdict_shows_the_paired_contract_where_final_json_has_it() {
    let dir = fixture_run(
        "search",
        "paired",
        Some(("final-paired.json", "final.json")),
    );
    let html = report(&dir);
    for expected in [
        "hof-1: better than gelu in fitness: paired difference +0.00210 (95% CI +0.000900, +0.00330) (+1.68% of gelu), p = 0.0120, Holm p = 0.0240, 3 seed pairs.",
        "hof-2: no difference from gelu in fitness",
        "Holm-adjusted over the activations of this table",
        "<dt>measured on</dt><dd><code>test</code>",
        "<dt>steps</dt><dd><code>300</code>",
        "0.800% of the baseline&#39;s fitness (80% power, α = 0.05)",
        "<span class=\"tag good\">better</span>",
        "<span class=\"tag neutral\">no difference</span>",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
    assert!(
        !html.contains("Welch p ="),
        "the paired verdict replaces Welch"
    );
}

#[test]
fn an_older_search_verdict_shows_welch_labelled_as_unpaired() {
    let dir = fixture_run("search", "welch", Some(("final-welch.json", "final.json")));
    let html = report(&dir);
    for expected in [
        "hof-1 against gelu in fitness: difference of means +0.00210 (+1.68% of gelu); Welch p = 0.0470: better by that test alone (unpaired, uncorrected).",
        "hof-2 against gelu in fitness: difference of means -0.000100",
        "predate the paired verdict",
        "not recorded: runs before the held-out verdict",
        "not recorded in this run&#39;s final.json",
        // hof-2 trained on 2 of 3 seeds.
        "<td class=\"num\" data-v=\"2e0\">2</td>",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
    assert!(!html.contains("Holm p ="));
}

#[test]
fn a_search_without_a_final_comparison_says_so() {
    let dir = fixture_run("search", "no-final", None);
    let html = report(&dir);
    assert!(html.contains("No final comparison yet"), "{html}");
    assert!(html.contains("generation 2 of 4 done (running or interrupted"));
    // Every section is there, in the order.
    let ids: Vec<&str> = html
        .match_indices("<section id=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(
        ids,
        [
            "verdict",
            "best",
            "hall-of-fame",
            "fitness",
            "pareto",
            "dedup",
            "time",
            "kernel",
            "run"
        ]
    );
}

#[test]
fn a_train_verdict_shows_the_paired_contract_and_the_failures() {
    let dir = fixture_run(
        "train",
        "train-paired",
        Some(("results-paired.json", "results.json")),
    );
    std::fs::remove_file(dir.join("runs.jsonl")).unwrap();
    let html = report(&dir);
    for expected in [
        "silu(x): no difference from gelu in fitness: paired difference -0.00200",
        "exp(x * 1000): worse than gelu in fitness",
        "<span class=\"tag bad\">worse</span>",
        // acc is worse for silu at Holm p 0.042.
        "<td class=\"num\" data-v=\"4.2e-2\">0.0420</td>",
        "non-finite training loss (NaN) (step 0)",
        "Sample generations",
        "A rod is long",
        // Per-epoch rows: silu(x)'s mean train loss in epoch 2.
        "<section id=\"epochs\">",
        "<td class=\"num\" data-v=\"7.4e0\">7.400</td>",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
}

#[test]
fn an_unfinished_train_run_has_a_page_of_its_runs_so_far() {
    let dir = fixture_run("train", "train-unfinished", None);
    let html = report(&dir);
    assert!(html.contains("unfinished: 3 of 6 runs done"), "{html}");
    assert!(
        html.contains("the comparison against the baseline appears when every run has finished")
    );
    assert!(!html.contains("Welch p"));
}

#[test]
fn report_refuses_what_is_not_a_run_directory() {
    let dir = tmp("not-a-run");
    std::fs::create_dir_all(&dir).unwrap();
    let out = bin().arg("report").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an actforge run directory") && err.contains("config.json"),
        "{err}"
    );
    std::fs::write(dir.join("config.json"), "{\"format\": \"other\"}").unwrap();
    let out = bin().arg("report").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"other\""));
    std::fs::write(dir.join("config.json"), "{\"format\": ").unwrap();
    let out = bin().arg("report").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json:1"));
}

#[test]
fn report_is_refused_while_a_run_holds_the_directory() {
    // A run working in the directory holds its lock: `report` is refused
    // (the run rewrites the page itself), and works once the lock is gone.
    let dir = fixture_run("search", "locked", None);
    let lock = actforge::store::Lock::dir(&dir, "search").unwrap();
    let out = bin().arg("report").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another actforge process"), "{err}");
    assert!(!dir.join("report.html").exists());
    drop(lock);
    report(&dir);
    assert!(!dir.join(".actforge.lock").exists(), "released");
}

/// Stops the search when generation `at` is done.
struct StopAt {
    at: usize,
    stop: Arc<AtomicBool>,
}

impl Observer for StopAt {
    fn generation_started(&mut self, _: usize, _: usize, _: usize) {}
    fn candidate_done(&mut self, _: &Record) {}
    fn generation_done(&mut self, row: &Row) {
        if row.gen == self.at {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
    fn note(&mut self, m: &str) {
        panic!("unexpected note: {m}");
    }
}

#[test]
fn an_interrupted_search_has_the_page_of_its_last_generation() {
    let dir = tmp("interrupted");
    let settings = Settings {
        pop: 6,
        gens: 5,
        hof: 3,
        seed: 11,
        export: false,
        evaluator: EvaluatorKind::Synthetic { sleep_ms: 0 },
        ..Settings::default()
    };
    let mut search = Search::create(&dir, settings.clone(), &["test".into()]).unwrap();
    let ev = evaluators(&settings, search.library(), None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut exec = InProcess::new(ev.evaluate, 1, stop.clone());
    let mut obs = StopAt {
        at: 1,
        stop: stop.clone(),
    };
    let outcome = search
        .run(&mut exec, &*ev.retrain, &mut obs, &stop)
        .unwrap();
    assert!(matches!(outcome, Outcome::Interrupted { generation: 2 }));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("generation 2 of 6 done"), "{html}");
    assert!(html.contains("No final comparison yet"));
    assert!(!dir.join("final.json").exists());
}

/// A tiny search (synthetic evaluator, kernel exported) and a tiny train
/// run, made once for the tests that need them.
fn tiny_runs() -> &'static (PathBuf, PathBuf) {
    static RUNS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let search = tmp("tiny-search");
        let out = ok(bin()
            .args([
                "search",
                "--evaluator",
                "synthetic",
                "--quiet",
                "--pop",
                "10",
                "--gens",
                "3",
            ])
            .args(["--hof", "4", "--seed", "7", "--out"])
            .arg(&search)
            .output()
            .unwrap());
        let last = out.lines().last().unwrap_or("");
        assert!(
            last.contains("report")
                && last.ends_with(&format!("{}", search.join("report.html").display())),
            "the search's last line names report.html: {out}"
        );
        let train = tmp("tiny-train");
        let out = ok(bin()
            .args([
                "train", "--task", "qa", "--act", "gelu", "--act", "silu(x)", "--seeds", "2",
            ])
            .args([
                "--steps",
                "4",
                "--batch-size",
                "8",
                "--eval-sentences=4",
                "--out",
            ])
            .arg(&train)
            .output()
            .unwrap());
        assert_eq!(
            out.lines().last(),
            Some(format!("report: {}", train.join("report.html").display()).as_str()),
            "the train run's last line names report.html: {out}"
        );
        (search, train)
    })
}

#[test]
fn a_search_and_a_train_run_end_with_a_line_naming_their_page() {
    let (search, train) = tiny_runs();
    let html = std::fs::read_to_string(search.join("report.html")).unwrap();
    assert!(html.contains("<svg"), "inline figures");
    assert!(html.contains("best_kernel/best.cu"), "the exported kernel");
    // Register counts where NVRTC made a CUBIN, SASS figures where
    // nvdisasm and cuobjdump exist (CI has both).
    let cubin = search.join("best_kernel/best.cubin").exists();
    assert_eq!(html.contains("Registers per thread"), cubin);
    let sass = search.join("best_kernel/sass.json").exists();
    if std::env::var("ACTFORGE_REQUIRE_SASS").as_deref() == Ok("1") {
        assert!(
            sass,
            "ACTFORGE_REQUIRE_SASS=1: the search writes best_kernel/sass.json"
        );
    }
    assert_eq!(html.contains("SASS on sm_90"), sass);
    let html = std::fs::read_to_string(train.join("report.html")).unwrap();
    assert!(html.contains("Learning curves") && html.contains("<svg"));
}

/// Chromium, or `None` after saying why the test is skipped (a failure
/// when `ACTFORGE_REQUIRE_BROWSER=1`).
fn chromium() -> Option<PathBuf> {
    let exe = browser::find();
    if exe.is_none() {
        let why = "no Chromium found (install Debian's `chromium`, or set ACTFORGE_CHROMIUM)";
        if std::env::var("ACTFORGE_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("ACTFORGE_REQUIRE_BROWSER=1 but {why}");
        }
        eprintln!("skipping the browser test: {why}");
    }
    exe
}

#[test]
fn the_browser_check_sees_errors_requests_and_blank_pages() {
    let Some(exe) = chromium() else { return };
    let dir = tmp("bad-page");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>console.error('boom'); undefined_call();</script>\
         <img src=\"http://192.0.2.1/x.png\"></body></html>",
    )
    .unwrap();
    let mut b = browser::Browser::launch(&exe, 400, 300);
    let visit = b.visit(&bad);
    assert!(
        visit.errors.iter().any(|e| e.contains("boom")),
        "{:?}",
        visit.errors
    );
    assert!(
        visit.errors.iter().any(|e| e.contains("undefined_call")),
        "{:?}",
        visit.errors
    );
    assert_eq!(visit.requests, ["http://192.0.2.1/x.png"]);
    let (inked, _, _) = browser::ink(&visit.png);
    assert!(inked < 0.01, "a page with nothing on it is blank: {inked}");
}

#[test]
fn pages_render_in_headless_chromium_without_errors_or_requests() {
    let Some(exe) = chromium() else { return };
    let (search, train) = tiny_runs();
    let keep = std::env::var_os("ACTFORGE_REPORT_SCREENSHOTS").map(PathBuf::from);
    let mut b = browser::Browser::launch(&exe, 1100, 900);
    for (name, dir) in [("search", search), ("train", train)] {
        let page = dir.join("report.html");
        let visit = b.visit(&page);
        assert!(visit.errors.is_empty(), "{name}: {:?}", visit.errors);
        assert!(visit.requests.is_empty(), "{name}: {:?}", visit.requests);
        let (inked, colours, size) = browser::ink(&visit.png);
        assert_eq!(size, (1100, 900), "{name}: the viewport");
        assert!(
            inked > 0.02 && colours > 16,
            "{name}: the screenshot looks blank ({:.1}% ink, {colours} colours)",
            100.0 * inked
        );
        if let Some(d) = &keep {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join(format!("{name}.png")), &visit.png).unwrap();
        }
        // Every figure laid out with a size, every table row in the markup.
        let empty_svgs = b.eval(
            "[...document.querySelectorAll('svg')].filter(s => s.getBoundingClientRect().width < 10).length",
        );
        assert_eq!(empty_svgs, 0, "{name}");
        // A click on a header sorts; a second click reverses.
        // The rank of the hall of fame; the seed of the runs.
        let (table, col) = if name == "search" {
            ("#hall-of-fame table", 0)
        } else {
            ("#runs table", 1)
        };
        let order = b.eval(&format!(
            "(() => {{ const t = document.querySelector('{table}');
                 const col = () => [...t.tBodies[0].rows].map(r => r.cells[{col}].textContent);
                 const h = t.tHead.rows[0].cells[{col}];
                 h.click(); const up = col(); h.click(); const down = col();
                 return [up, down, h.getAttribute('aria-sort')]; }})()"
        ));
        let up: Vec<&str> = order[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut down: Vec<&str> = order[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(up.len() >= 2, "{name}: {order}");
        down.reverse();
        assert_eq!(up, down, "{name}: the second click reverses the order");
        assert_eq!(order[2], "descending");
        // With JavaScript off the page reads the same: every row is there,
        // only the sorting is missing.
        let shape = "[document.querySelectorAll('tbody tr').length, document.querySelectorAll('th.sortable').length]";
        let with_js = b.eval(shape);
        b.scripts(false);
        let visit = b.visit(&page);
        let without_js = b.eval(shape);
        b.scripts(true);
        assert!(
            visit.errors.is_empty() && visit.requests.is_empty(),
            "{name}"
        );
        assert!(
            browser::ink(&visit.png).0 > 0.02,
            "{name}: blank without JavaScript"
        );
        assert!(with_js[1].as_u64().unwrap() > 0, "{name}: {with_js}");
        assert_eq!(without_js[0], with_js[0], "{name}: the same rows");
        assert_eq!(without_js[1], 0, "{name}: the script did not run");
    }
}
