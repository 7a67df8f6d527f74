//! The report page of a search run directory, top to bottom: the verdict
//! (each final formula against the baseline), the best formula with f and
//! f′ next to GELU, the hall of fame with a plot of each entry, fitness
//! over generations, the Pareto front, dedup and screening per
//! generation, where the time went, the exported kernel, and the command,
//! settings, versions and files.
//!
//! Reads only the directory's files (`config.json`, `logbook.jsonl`,
//! `hall_of_fame.json`, `pareto.json`, `evaluations.jsonl`, `final.json`,
//! `best_kernel/`), so old runs get a page too, and turns them into plain
//! data for [`crate::report::html`]. The final retrain's folder is a train
//! run and gets its own page ([`crate::experiment::page`]).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dir::{
    BEST_KERNEL, CONFIG, CONFIG_FORMAT, EVALUATIONS, FINAL, FINAL_DIR, HALL_OF_FAME, LOGBOOK_JSONL,
    PARETO,
};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::experiment::page::{
    self as train_page, array, command_line, count, dir_name, files_table, flatten, footer,
    mean_ci, num, read_json, text, versus_blocks, DIGITS, METRICS,
};
use crate::ir::Library;
use crate::report::chart::{line_svg, scatter_svg, Axes, Dot, Series};
use crate::report::html::{self, Block, Cell, Figure, Page, Section, Table, Tone};
use crate::store::files::read_json_lines;
use crate::store::Lock;

/// Write the page of the run in `dir` (a search's or a train run's);
/// returns the pages written, the run's own first (a search also writes
/// one for its final retrain's folder). Takes the directory's lock, so it
/// is refused while a run works there (which rewrites the page itself).
pub fn write_report(dir: &Path) -> Result<Vec<PathBuf>> {
    let config = read_json(&dir.join(CONFIG))?.ok_or_else(|| {
        Error::Usage(format!(
            "{} is not an actforge run directory: it has no {CONFIG}",
            dir.display()
        ))
    })?;
    let train = train_page::is_train_config(&config);
    if !train && config["format"] != CONFIG_FORMAT {
        return Err(Error::Usage(format!(
            "{}: not the configuration of an actforge search or train run (its \"format\" is {})",
            dir.join(CONFIG).display(),
            config["format"]
        )));
    }
    let _lock = Lock::dir(dir, "report")?;
    if train {
        return Ok(vec![train_page::write(dir)?]);
    }
    write(dir)
}

/// Write `dir/report.html` for the search in `dir` (and
/// `final/report.html` when the final retrain left a train run there).
pub fn write(dir: &Path) -> Result<Vec<PathBuf>> {
    let page = build(dir)?;
    let path = dir.join(html::FILE_NAME);
    html::write(&path, &page)?;
    let mut written = vec![path];
    let final_dir = dir.join(FINAL_DIR);
    if final_dir.join(CONFIG).is_file() {
        written.push(train_page::write(&final_dir)?);
    }
    Ok(written)
}

/// The page of the search in `dir`.
pub fn build(dir: &Path) -> Result<Page> {
    let config = read_json(&dir.join(CONFIG))?.unwrap_or(Value::Null);
    let settings = &config["settings"];
    let logbook = read_json_lines(&dir.join(LOGBOOK_JSONL))?;
    let hof = array(&read_json(&dir.join(HALL_OF_FAME))?.unwrap_or(Value::Null));
    let pareto = array(&read_json(&dir.join(PARETO))?.unwrap_or(Value::Null));
    let evaluations = read_json_lines(&dir.join(EVALUATIONS))?;
    let fin = read_json(&dir.join(FINAL))?;
    let gens = settings["gens"].as_u64().map_or(0, |g| g + 1);
    let status = if fin.is_some() {
        "finished".to_string()
    } else if logbook.len() as u64 >= gens && gens > 0 {
        format!("all {gens} generations done")
    } else {
        format!(
            "generation {} of {gens} done (running or interrupted; `actforge search --resume DIR` continues)",
            logbook.len()
        )
    };
    let sections = vec![
        verdict(dir, settings, fin.as_ref()),
        best(&hof),
        hall_of_fame(&hof),
        fitness(&logbook),
        pareto_front(&pareto, &evaluations),
        dedup(&logbook),
        time(dir, &logbook, &evaluations),
        kernel(dir),
        run(dir, &config),
    ];
    Ok(Page {
        title: format!("actforge search · {}", dir_name(dir)),
        subtitle: format!(
            "{} evaluator · task {} · population {} · {} evaluations · {:.0} s · {status}",
            text(&settings["evaluator"]["kind"]),
            text(&settings["train"]["task"]),
            text(&settings["pop"]),
            evaluations.len(),
            logbook.iter().map(|r| num(&r["seconds"])).sum::<f64>(),
        ),
        sections,
        footer: footer(),
    })
}

fn section(id: &str, title: &str, blocks: Vec<Block>) -> Section {
    Section {
        id: id.into(),
        title: title.into(),
        blocks,
    }
}

fn figure(svg: Result<html::Svg>, caption: &str) -> Block {
    match svg {
        Ok(svg) => Block::Figures(vec![Figure {
            svg,
            caption: caption.into(),
        }]),
        Err(e) => Block::Note(format!("no chart: {e}")),
    }
}

// ----- verdict ----------------------------------------------------------------

fn verdict(dir: &Path, settings: &Value, fin: Option<&Value>) -> Section {
    let Some(fin) = fin else {
        let why = if settings["retrain_top"].as_u64() == Some(0) {
            "This search skipped the final comparison (--retrain-top 0)."
        } else {
            "No final comparison yet: the search writes final.json when its last generation is done."
        };
        return section(
            "verdict",
            "Verdict",
            vec![Block::Callout(Tone::Caution, why.into())],
        );
    };
    let seeds = array(&fin["seeds"]).len() as u64;
    let summary: Vec<Value> = array(&fin["summary"])
        .into_iter()
        .map(|mut row| {
            // final.json counts successes: state the failures as train does.
            if row["runs_failed"].is_null() {
                let ok = row["runs_ok"].as_u64().unwrap_or(0);
                row["runs"] = seeds.into();
                row["failed"] = seeds.saturating_sub(ok).into();
            }
            row
        })
        .collect();
    let mut blocks = versus_blocks(&summary, "activation", &METRICS);
    let recorded = |key: &str, missing: &str| match &fin[key] {
        Value::Null => Cell::text(missing),
        v => Cell::code(text(v)),
    };
    let mut facts = vec![
        (
            "measured on".to_string(),
            recorded("split", "not recorded: runs before the held-out verdict scored the final comparison on the validation split that also selected the formulas"),
        ),
        ("seeds".into(), Cell::code(array(&fin["seeds"]).iter().map(text).collect::<Vec<_>>().join(", "))),
        ("steps".into(), recorded("steps", "not recorded (see the final retrain's settings)")),
    ];
    facts.push((
        "minimum detectable effect".into(),
        match fin["mde"].as_f64() {
            Some(m) => Cell::text(format!(
                "{}% of the baseline's fitness (80% power, α = 0.05)",
                crate::report::number::significant(m, 3)
            )),
            None => Cell::text("not recorded in this run's final.json"),
        },
    ));
    blocks.push(Block::Facts(facts));
    let formulas: Vec<(String, String)> = summary
        .iter()
        .map(|s| (text(&s["activation"]), text(&s["formula"])))
        .collect();
    let per_metric = &fin["metrics"];
    let mut header = vec!["entrant".to_string(), "formula".into(), "runs ok".into()];
    let with_metrics = per_metric
        .as_object()
        .is_some_and(|m| m.values().any(|v| v["fitness"]["mean"].is_number()));
    if with_metrics {
        header.extend(METRICS.iter().map(|(_, l, _)| format!("{l} mean [95% CI]")));
    } else {
        header.push("fitness mean [95% CI]".into());
    }
    let rows = summary
        .iter()
        .zip(&formulas)
        .map(|(s, (label, formula))| {
            let mut r = vec![
                Cell::code(label.clone()),
                Cell::code(formula.clone()),
                Cell::int(s["runs_ok"].as_u64().unwrap_or(0)),
            ];
            if with_metrics {
                r.extend(
                    METRICS
                        .iter()
                        .map(|(k, _, _)| mean_ci(&per_metric[label][*k])),
                );
            } else {
                r.push(mean_ci(&s["fitness"]));
            }
            r
        })
        .collect();
    blocks.push(Block::Table(Table {
        header,
        rows,
        sortable: true,
    }));
    if dir.join(FINAL_DIR).join(CONFIG).is_file() {
        blocks.push(Block::Facts(vec![(
            "final retrain".into(),
            Cell::Link {
                href: format!("{FINAL_DIR}/{}", html::FILE_NAME),
                text: format!(
                    "{FINAL_DIR}/{} (learning curves, every run)",
                    html::FILE_NAME
                ),
            },
        )]));
    }
    section("verdict", "Verdict", blocks)
}

// ----- formulas ---------------------------------------------------------------

/// The function of an archived formula: its canonical (intrinsic) form
/// reads with the standard library whatever primitive set found it.
fn function_of(entry: &Value) -> Result<Function> {
    let formula = entry["canonical"]
        .as_str()
        .or(entry["formula"].as_str())
        .unwrap_or_default();
    Ok(Function::new(&Library::standard().parse(formula)?))
}

/// f, f′, GELU and GELU′ on [-5, 5] at `n` points.
fn activation_series(f: &Function, n: usize) -> Vec<Series> {
    let gelu = Function::new(
        &Library::standard()
            .parse("gelu(x)")
            .expect("gelu is in the prelude"),
    );
    let xs: Vec<f64> = crate::report::axis::grid(-5.0, 5.0, n).collect();
    let line = |label: &str, g: &dyn Fn(f64) -> f64, dashed: bool| Series {
        label: label.into(),
        points: xs.iter().map(|&x| (x, g(x))).collect(),
        band: Vec::new(),
        dashed,
    };
    vec![
        line("f", &|x| f.value(x), false),
        line("f′", &|x| f.derivative(x), false),
        line("GELU", &|x| gelu.value(x), true),
        line("GELU′", &|x| gelu.derivative(x), true),
    ]
}

fn best(hof: &[Value]) -> Section {
    let Some(b) = hof.first() else {
        return section(
            "best",
            "Best formula",
            vec![Block::Text("No candidate has a fitness yet.".into())],
        );
    };
    let facts = vec![
        ("as written".to_string(), Cell::code(text(&b["formula"]))),
        (
            "simplified (infix)".into(),
            Cell::code(text(&b["simplified"])),
        ),
        (
            "simplified (prefix)".into(),
            Cell::code(text(&b["canonical"])),
        ),
        (
            "fitness".into(),
            Cell::text(format!(
                "{} ({})",
                crate::report::number::significant(num(&b["fitness"]), DIGITS),
                seeds_text(b)
            )),
        ),
        (
            "nodes · tree size · height".into(),
            Cell::text(format!(
                "{} · {} · {}",
                text(&b["nodes"]),
                text(&b["size"]),
                text(&b["height"])
            )),
        ),
        (
            "found in generation".into(),
            Cell::text(text(&b["generation"])),
        ),
        ("canonical hash".into(), Cell::code(text(&b["hash"]))),
    ];
    let axes = Axes {
        title: "The best formula f and f′ next to GELU".into(),
        x: "x".into(),
        y: "value".into(),
        log_y: false,
    };
    let plot =
        function_of(b).and_then(|f| line_svg(&activation_series(&f, 401), &axes, (900, 440), true));
    section(
        "best",
        "Best formula",
        vec![
            Block::Facts(facts),
            figure(
                plot,
                "f and f′ (solid) against GELU and GELU′ (dashed) on [-5, 5].",
            ),
        ],
    )
}

/// The seeds a fitness was measured on: the entry's own `seeds` where it
/// records them, else its training runs' seeds.
fn seeds_text(entry: &Value) -> String {
    let mut seeds: Vec<String> = array(&entry["seeds"]).iter().map(text).collect();
    if seeds.is_empty() {
        seeds = array(&entry["metrics"]["runs"])
            .iter()
            .map(|r| text(&r["seed"]))
            .filter(|s| !s.is_empty())
            .collect();
    }
    match (seeds.len(), array(&entry["metrics"]["per_seed"]).len()) {
        (1, _) => format!("seed {}", seeds[0]),
        (0, 0) => "seeds not recorded".into(),
        (0, 1) => "1 seed".into(),
        (0, n) => format!("{n} seeds"),
        _ => format!("seeds {}", seeds.join(", ")),
    }
}

/// The numeric metrics the entries carry, besides fitness and nodes.
fn metric_keys(entries: &[Value]) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for e in entries {
        if let Some(m) = e["metrics"].as_object() {
            keys.extend(
                m.iter()
                    .filter(|(k, v)| v.is_number() && *k != "fitness" && *k != "nodes")
                    .map(|(k, _)| k.clone()),
            );
        }
    }
    keys.into_iter().collect()
}

fn hall_of_fame(hof: &[Value]) -> Section {
    if hof.is_empty() {
        return section(
            "hall-of-fame",
            "Hall of fame",
            vec![Block::Text("Empty so far.".into())],
        );
    }
    let keys = metric_keys(hof);
    let mut header = [
        "rank",
        "f, f′ vs GELU",
        "formula",
        "simplified",
        "nodes",
        "fitness",
        "seeds",
        "generation",
    ]
    .map(String::from)
    .to_vec();
    header.extend(keys.iter().cloned());
    let axes = Axes::default();
    let rows = hof
        .iter()
        .map(|e| {
            let thumb = function_of(e)
                .and_then(|f| line_svg(&activation_series(&f, 121), &axes, (170, 100), false))
                .map_or(Cell::text("—"), Cell::Figure);
            let mut r = vec![
                Cell::int(e["rank"].as_u64().unwrap_or(0)),
                thumb,
                Cell::code(text(&e["formula"])),
                Cell::code(text(&e["simplified"])),
                count(&e["nodes"]),
                Cell::num(num(&e["fitness"]), DIGITS),
                Cell::text(seeds_text(e)),
                count(&e["generation"]),
            ];
            r.extend(
                keys.iter()
                    .map(|k| Cell::num(num(&e["metrics"][k]), DIGITS)),
            );
            r
        })
        .collect();
    section(
        "hall-of-fame",
        "Hall of fame",
        vec![
            Block::Table(Table {
                header,
                rows,
                sortable: true,
            }),
            Block::Note("Plots on [-5, 5]: f blue, f′ orange, GELU green dashed, GELU′ red dashed. Fitness and metrics as the search measured them (its seeds, its validation data).".into()),
        ],
    )
}

// ----- generations --------------------------------------------------------------

fn per_gen(logbook: &[Value], key: &str) -> Vec<(f64, f64)> {
    logbook
        .iter()
        .map(|r| (num(&r["gen"]), num(&r[key])))
        .collect()
}

fn fitness(logbook: &[Value]) -> Section {
    let best = Series {
        label: "best".into(),
        points: per_gen(logbook, "fitness_max"),
        ..Series::default()
    };
    let mean = Series {
        label: "mean (band: min to max)".into(),
        points: per_gen(logbook, "fitness_mean"),
        band: logbook
            .iter()
            .map(|r| {
                (
                    num(&r["gen"]),
                    num(&r["fitness_min"]),
                    num(&r["fitness_max"]),
                )
            })
            .collect(),
        dashed: false,
    };
    let axes = Axes {
        title: "Fitness of the population over generations".into(),
        x: "generation".into(),
        y: "fitness".into(),
        log_y: false,
    };
    section(
        "fitness",
        "Fitness over generations",
        vec![figure(
            line_svg(&[best, mean], &axes, (900, 420), true),
            "The population after selection in each generation (failures left out).",
        )],
    )
}

fn pareto_front(pareto: &[Value], evaluations: &[Value]) -> Section {
    let front: HashSet<String> = pareto.iter().map(|e| text(&e["hash"])).collect();
    let mut seen = HashSet::new();
    // Merged formulas (functional hits) have no evaluation line of their
    // own: the front's entries are added where missing.
    let dots: Vec<Dot> = evaluations
        .iter()
        .chain(pareto)
        .filter(|e| e["fitness"].is_number() && seen.insert(text(&e["hash"])))
        .map(|e| Dot {
            x: num(&e["nodes"]),
            y: num(&e["fitness"]),
            highlight: front.contains(&text(&e["hash"])),
        })
        .collect();
    let axes = Axes {
        title: "Fitness against complexity (Pareto front highlighted)".into(),
        x: "nodes of the simplified formula".into(),
        y: "fitness".into(),
        log_y: false,
    };
    let rows = pareto
        .iter()
        .map(|e| {
            vec![
                count(&e["nodes"]),
                Cell::num(num(&e["fitness"]), DIGITS),
                Cell::code(text(&e["simplified"])),
                Cell::code(text(&e["formula"])),
            ]
        })
        .collect();
    section(
        "pareto",
        "Pareto front",
        vec![
            figure(
                scatter_svg(&dots, &axes, (900, 420)),
                "Every evaluated formula (grey) and the non-dominated ones (blue): higher fitness, fewer nodes.",
            ),
            Block::Table(Table {
                header: ["nodes", "fitness", "simplified", "formula"].map(String::from).to_vec(),
                rows,
                sortable: true,
            }),
        ],
    )
}

fn dedup(logbook: &[Value]) -> Section {
    let screened: Vec<String> = logbook
        .first()
        .and_then(Value::as_object)
        .map(|o| {
            o.keys()
                .filter(|k| k.starts_with("screened_"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let counts = [
        "offspring",
        "evaluations",
        "failures",
        "syntactic_hits",
        "canonical_hits",
        "functional_hits",
    ];
    let mut header: Vec<String> = [
        "gen",
        "offspring",
        "evaluated",
        "failed",
        "syntactic hits",
        "canonical hits",
        "functional hits",
        "dedup rate",
    ]
    .map(String::from)
    .to_vec();
    header.extend(
        screened
            .iter()
            .map(|k| format!("screened: {}", &k["screened_".len()..])),
    );
    header.extend(["best fitness", "mean fitness"].map(String::from));
    let keys: Vec<&str> = counts
        .iter()
        .copied()
        .chain(screened.iter().map(String::as_str))
        .collect();
    let mut totals = vec![0u64; keys.len()];
    let rows = logbook
        .iter()
        .map(|r| {
            let mut row = vec![Cell::int(r["gen"].as_u64().unwrap_or(0))];
            for (i, k) in keys.iter().enumerate() {
                let n = r[*k].as_u64().unwrap_or(0);
                totals[i] += n;
                row.push(Cell::int(n));
                if i == counts.len() - 1 {
                    row.push(percent(num(&r["dedup_rate"])));
                }
            }
            row.push(Cell::num(num(&r["fitness_max"]), DIGITS));
            row.push(Cell::num(num(&r["fitness_mean"]), DIGITS));
            row
        })
        .collect();
    let offspring = totals[0] as f64;
    let rate = |n: u64| {
        if offspring > 0.0 {
            format!("{:.1}%", 100.0 * n as f64 / offspring)
        } else {
            "—".into()
        }
    };
    let facts = vec![
        ("offspring".to_string(), Cell::text(totals[0].to_string())),
        (
            "evaluated (failed)".into(),
            Cell::text(format!("{} ({})", totals[1], totals[2])),
        ),
        (
            "served by meaning (dedup)".into(),
            Cell::text(format!(
                "{} canonical + {} functional = {}",
                totals[4],
                totals[5],
                rate(totals[4] + totals[5])
            )),
        ),
        (
            "text equality would serve".into(),
            Cell::text(rate(totals[3])),
        ),
        (
            "screened before training".into(),
            Cell::text(totals[counts.len()..].iter().sum::<u64>().to_string()),
        ),
    ];
    section(
        "dedup",
        "Dedup and screening per generation",
        vec![
            Block::Facts(facts),
            Block::Table(Table {
                header,
                rows,
                sortable: true,
            }),
            Block::Note("Canonical hits share a simplified formula with an earlier candidate, functional hits its values on the probe points; both reuse its fitness. Screened candidates are rejected by cheap checks before any training.".into()),
        ],
    )
}

fn percent(rate: f64) -> Cell {
    if rate.is_finite() {
        Cell::num_text(rate, format!("{:.1}%", 100.0 * rate))
    } else {
        Cell::num(rate, 3)
    }
}

// ----- time --------------------------------------------------------------------

fn time(dir: &Path, logbook: &[Value], evaluations: &[Value]) -> Section {
    let sum = |k: &str| {
        logbook
            .iter()
            .map(|r| num(&r[k]))
            .filter(|v| v.is_finite())
            .sum::<f64>()
    };
    let runs: Vec<Value> = evaluations
        .iter()
        .flat_map(|e| array(&e["metrics"]["runs"]))
        .collect();
    let run_sum = |k: &str| {
        runs.iter()
            .map(|r| num(&r[k]))
            .filter(|v| v.is_finite())
            .sum::<f64>()
    };
    let (wall, inside) = (sum("seconds"), sum("eval_seconds"));
    let (train, eval) = (run_sum("train_seconds"), run_sum("eval_seconds"));
    let final_runs = read_json(&dir.join(FINAL_DIR).join("results.json"))
        .ok()
        .flatten()
        .map(|r| array(&r["runs"]))
        .unwrap_or_default();
    let final_secs: f64 = final_runs
        .iter()
        .flat_map(|r| ["setup", "train", "eval"].map(|k| num(&r["timing"][k])))
        .filter(|v| v.is_finite())
        .sum();
    let share = |v: f64| {
        if inside > 0.0 {
            format!("{:.1}%", 100.0 * v / inside)
        } else {
            "—".into()
        }
    };
    let mut rows = vec![
        vec![
            Cell::text("generations, wall clock"),
            Cell::num(wall, 4),
            Cell::text(""),
        ],
        vec![
            Cell::text("evaluations, summed over workers"),
            Cell::num(inside, 4),
            Cell::text("100%"),
        ],
    ];
    if !runs.is_empty() {
        rows.push(vec![
            Cell::text("… of which training"),
            Cell::num(train, 4),
            Cell::text(share(train)),
        ]);
        rows.push(vec![
            Cell::text("… of which evaluation (metrics, generations)"),
            Cell::num(eval, 4),
            Cell::text(share(eval)),
        ]);
        let rest = inside - train - eval;
        rows.push(vec![
            Cell::text("… of which the rest (data, setup, transfer)"),
            Cell::num(rest, 4),
            Cell::text(share(rest)),
        ]);
    }
    rows.push(vec![
        Cell::text("screening"),
        Cell::num(sum("screen_seconds"), 4),
        Cell::text(""),
    ]);
    rows.push(vec![
        Cell::text("kernel compile"),
        Cell::num(sum("compile_seconds"), 4),
        Cell::text(""),
    ]);
    if !final_runs.is_empty() {
        rows.push(vec![
            Cell::text("final retrain (setup, training, evaluation)"),
            Cell::num(final_secs, 4),
            Cell::text(""),
        ]);
    }
    let series: Vec<Series> = [
        ("wall clock", "seconds"),
        ("evaluations (summed)", "eval_seconds"),
        ("screening", "screen_seconds"),
        ("compile", "compile_seconds"),
    ]
    .into_iter()
    .map(|(label, key)| Series {
        label: label.into(),
        points: per_gen(logbook, key),
        ..Series::default()
    })
    .collect();
    let axes = Axes {
        title: "Seconds per generation".into(),
        x: "generation".into(),
        y: "seconds".into(),
        log_y: false,
    };
    section(
        "time",
        "Where the time went",
        vec![
            Block::Table(Table {
                header: ["what", "seconds", "share of evaluations"].map(String::from).to_vec(),
                rows,
                sortable: false,
            }),
            Block::Note("Evaluation seconds add up over parallel workers, so they can exceed the wall clock.".into()),
            figure(line_svg(&series, &axes, (900, 380), true), "Seconds per generation."),
        ],
    )
}

// ----- kernel --------------------------------------------------------------------

/// `| key | value |` rows of a Markdown table in `text`, after the line
/// that starts with `after` (the first table after it).
fn markdown_rows(text: &str, after: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(after));
    let mut rows = Vec::new();
    let mut started = false;
    for l in lines.by_ref() {
        let l = l.trim();
        if l.starts_with('|') {
            started = true;
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect();
            if !cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                rows.push(cells);
            }
        } else if started {
            break;
        }
    }
    rows
}

/// The fenced code blocks of the section of `text` under `heading`.
fn code_under(text: &str, heading: &str) -> Option<String> {
    let start = text.find(heading)?;
    let rest = &text[start..];
    let open = rest.find("```")?;
    let body = &rest[open + 3..];
    let body = &body[body.find('\n')? + 1..];
    let end = body.find("```")?;
    Some(body[..end].trim_end().to_string())
}

fn kernel(dir: &Path) -> Section {
    let kdir = dir.join(BEST_KERNEL);
    let Ok(readme) = std::fs::read_to_string(kdir.join("README.md")) else {
        return section(
            "kernel",
            "Exported kernel",
            vec![Block::Text("No kernel package in this run (--no-export, or the search has not finished). Export one with `actforge export 'FORMULA' --out DIR`.".into())],
        );
    };
    let mut blocks = Vec::new();
    let facts: Vec<(String, Cell)> = markdown_rows(&readme, "# ")
        .into_iter()
        .filter(|r| r.len() == 2 && !r[0].is_empty())
        .map(|r| (r[0].clone(), Cell::code(r[1].replace('`', ""))))
        .collect();
    blocks.push(Block::Facts(facts));
    let mut files = files_table(&kdir);
    for row in &mut files.rows {
        if let Some(Cell::Link { href, .. }) = row.first_mut() {
            *href = format!("{BEST_KERNEL}/{href}");
        }
    }
    blocks.push(Block::Table(files));
    let registers = markdown_rows(&readme, "Registers per thread");
    if registers.len() > 1 {
        let line = readme
            .lines()
            .find(|l| l.starts_with("Registers per thread"))
            .unwrap_or("Registers per thread:");
        blocks.push(Block::Text(line.replace('`', "")));
        blocks.push(Block::Table(Table {
            header: registers[0].clone(),
            rows: registers[1..]
                .iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(i, c)| {
                            if i == 0 {
                                Cell::code(c.clone())
                            } else {
                                c.parse::<f64>()
                                    .map_or(Cell::text(c.clone()), |v| Cell::num_text(v, c.clone()))
                            }
                        })
                        .collect()
                })
                .collect(),
            sortable: true,
        }));
    } else if readme.contains("no PTX") || !kdir.join("best.cubin").exists() {
        blocks.push(Block::Note(
            "No CUBIN in this package (NVRTC was not available), so no register counts.".into(),
        ));
    }
    blocks.extend(sass(&kdir));
    let mut load = Vec::new();
    if let Some(c) = code_under(&readme, "## Loading from C++") {
        load.push(Block::Text("From C++ (CUDA driver API):".into()));
        load.push(Block::Code(c));
    }
    if let Some(py) = code_under(&readme, "## Loading from PyTorch") {
        load.push(Block::Text("From PyTorch, through CuPy:".into()));
        load.push(Block::Code(py));
    }
    if !load.is_empty() {
        blocks.push(Block::Details("How to load it".into(), load));
    }
    blocks.push(Block::Facts(vec![(
        "everything else".into(),
        Cell::Link {
            href: format!("{BEST_KERNEL}/README.md"),
            text: format!("{BEST_KERNEL}/README.md"),
        },
    )]));
    section("kernel", "Exported kernel", blocks)
}

/// The SASS figures of `best_kernel/sass.json` (written where nvdisasm
/// and cuobjdump were found).
fn sass(kdir: &Path) -> Vec<Block> {
    let Ok(Some(v)) = read_json(&kdir.join("sass.json")) else {
        return vec![Block::Note("No SASS figures (they need nvdisasm and cuobjdump: scripts/install-cuda-tools.sh; then `actforge bench-compile --sass --source best_kernel/best.cu`).".into())];
    };
    let keys = [
        "dir",
        "dtype",
        "registers",
        "instrs_per_elem",
        "mufu_per_elem",
        "budget_instrs_per_elem",
        "bound",
        "bound_over_memory",
        "static_instrs",
    ];
    let rows = array(&v["kernels"])
        .iter()
        .map(|k| {
            let mut r = vec![Cell::code(text(&k["kernel"]))];
            r.extend(keys.iter().map(|key| match &k[*key] {
                Value::Number(n) => Cell::num_text(n.as_f64().unwrap_or(f64::NAN), n.to_string()),
                v => Cell::text(text(v)),
            }));
            r
        })
        .collect();
    let mut header = vec!["kernel".to_string()];
    header.extend(keys.iter().map(|k| k.replace('_', " ")));
    vec![
        Block::Text(format!("SASS on {} ({} math), per element of the unrolled vector loop's main path:", text(&v["arch"]), text(&v["math"]))),
        Block::Table(Table {
            header,
            rows,
            sortable: true,
        }),
        Block::Note("bound: the resource that limits the kernel on an H200 streaming at copy speed; bound over memory ≤ 1 means it keeps up with memory (see `actforge bench-compile --help`).".into()),
    ]
}

// ----- the run -------------------------------------------------------------------

fn run(dir: &Path, config: &Value) -> Section {
    let mut facts = vec![
        (
            "command".to_string(),
            Cell::code(command_line(&config["command"])),
        ),
        (
            "created (UTC)".into(),
            Cell::code(text(&config["created_utc"])),
        ),
        (
            "settings hash".into(),
            Cell::code(text(&config["settings_hash"])),
        ),
        (
            "training seeds".into(),
            Cell::code(
                array(&config["training_seeds"])
                    .iter()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ),
        (
            "final retrain seeds".into(),
            Cell::code(
                array(&config["retrain_seeds"])
                    .iter()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ),
        (
            "primitive set".into(),
            Cell::code(text(&config["details"]["primitive_set"])),
        ),
    ];
    flatten("versions", &config["versions"], &mut facts);
    let mut settings = Vec::new();
    flatten("", &config["settings"], &mut settings);
    section(
        "run",
        "Command, settings, versions and files",
        vec![
            Block::Facts(facts),
            Block::Details(
                "Every setting (config.json)".into(),
                vec![Block::Facts(settings)],
            ),
            Block::Details(
                "Files of this run directory".into(),
                vec![Block::Table(files_table(dir))],
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_read_back() {
        let md = "# k\n\n| | |\n|---|---|\n| formula | `x` |\n| target | `sm_90` |\n\n## Files\n\nRegisters per thread on sm_90 (ptxas):\n\n| kernel | registers | spills (bytes) |\n|---|---|---|\n| `act_1_fwd_f32` | 28 | 0 |\n";
        // The empty header of a key/value table reads like a separator.
        let kv = markdown_rows(md, "# ");
        assert_eq!(kv, [["formula", "x"], ["target", "sm_90"]]);
        let regs = markdown_rows(md, "Registers per thread");
        assert_eq!(
            regs,
            [
                ["kernel", "registers", "spills (bytes)"],
                ["act_1_fwd_f32", "28", "0"]
            ]
        );
    }

    #[test]
    fn front_members_without_an_evaluation_line_are_drawn() {
        // A functional merge: on the front, never evaluated under its own hash.
        let evaluations = [serde_json::json!({"hash": "a", "nodes": 6, "fitness": 0.12})];
        let pareto = [
            serde_json::json!({"hash": "a", "nodes": 6, "fitness": 0.12}),
            serde_json::json!({"hash": "b", "nodes": 2, "fitness": 0.10, "merged_from": "c"}),
        ];
        let s = pareto_front(&pareto, &evaluations);
        let Block::Figures(f) = &s.blocks[0] else {
            panic!("a figure first")
        };
        assert_eq!(f[0].svg.as_str().matches("r=\"5\"").count(), 2);
    }

    #[test]
    fn seeds_come_from_the_entry_or_its_runs() {
        use serde_json::json;
        assert_eq!(
            seeds_text(&json!({"seeds": [3, 4], "metrics": {"runs": [{"seed": 9}]}})),
            "seeds 3, 4"
        );
        assert_eq!(
            seeds_text(&json!({"metrics": {"runs": [{"seed": 9}]}})),
            "seed 9"
        );
        assert_eq!(
            seeds_text(&json!({"metrics": {"per_seed": [0.1, 0.2]}})),
            "2 seeds"
        );
        assert_eq!(seeds_text(&json!({"metrics": {}})), "seeds not recorded");
    }

    #[test]
    fn code_blocks_are_found_under_their_heading() {
        let md = "## A\n\n```c\nint a;\n```\n\n## B\n\n```python\nimport x\n```\n";
        assert_eq!(code_under(md, "## B").unwrap(), "import x");
        assert_eq!(code_under(md, "## A").unwrap(), "int a;");
        assert!(code_under(md, "## C").is_none());
    }
}
