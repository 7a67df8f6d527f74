//! The data leaf: loaders (every malformed-record reason, located warnings,
//! the more-than-half rule), built-in corpora, splits, thinning, tokenizers
//! (train, save, load, cache, a GPT-2-style file) and batches (determinism,
//! layouts, masks), and the `actforge data` commands.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use actforge::data::{
    self, encode_pairs, group_key, Batcher, Corpus, CorpusKind, Example, Format, Pair, Specials,
    Tokenizer,
};
use actforge::Error;

// ---------------------------------------------------------------- helpers

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("actforge-data-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load(bytes: &[u8], format: Option<Format>) -> actforge::Result<Corpus> {
    data::load_bytes(bytes, format, "mem.txt")
}

fn reasons(c: &Corpus) -> Vec<(usize, String)> {
    c.warnings
        .iter()
        .map(|w| (w.line, w.reason.clone()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<Pair> {
    items.iter().map(|(s, t)| Pair::new(*s, *t)).collect()
}

fn good_lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("source {i}\ttarget {i}\n"))
        .collect()
}

const SP: Specials = Specials {
    pad: 0,
    bos: 1,
    eos: 2,
    sep: 3,
    q: 4,
    a: 5,
};

// ---------------------------------------------------------------- loaders

#[test]
fn tsv_with_bom_and_crlf_loads_clean() {
    let c = load(
        b"\xEF\xBB\xBFHello world\tHallo Welt\r\nGood night\tGute Nacht\r\n",
        None,
    )
    .unwrap();
    assert_eq!(c.kind, CorpusKind::Translation);
    assert_eq!(
        c.pairs,
        pairs(&[("Hello world", "Hallo Welt"), ("Good night", "Gute Nacht")])
    );
    assert_eq!((c.skipped, c.warnings.len()), (0, 0));
}

#[test]
fn every_malformed_tsv_reason_is_counted_and_located() {
    let mut f = good_lines(6).into_bytes();
    f.extend_from_slice(b"only one column\n"); // line 7
    f.extend_from_slice(b"a\tb\tc\n"); // 8
    f.extend_from_slice(b"  \ttarget\n"); // 9
    f.extend_from_slice(b"source\t \n"); // 10
    f.extend_from_slice(b"bad \xff byte\tx\n"); // 11
    f.extend_from_slice(format!("{}\tlong\n", "x".repeat(data::MAX_LINE_BYTES)).as_bytes()); // 12
    f.extend_from_slice(b"\n"); // 13: blank, no record
    f.extend_from_slice(good_lines(1).as_bytes()); // 14
    let c = load(&f, Some(Format::Tsv)).unwrap();
    assert_eq!(c.pairs.len(), 7);
    assert_eq!(c.skipped, 6);
    let r = reasons(&c);
    let expect = [
        (
            7,
            "wrong column count: expected 2 tab-separated columns, found 1",
        ),
        (
            8,
            "wrong column count: expected 2 tab-separated columns, found 3",
        ),
        (9, "empty source"),
        (10, "empty target"),
        (11, "invalid UTF-8 at byte 5"),
        (12, "line too long: 4101 bytes (limit 4096)"),
    ];
    assert_eq!(r, expect.map(|(l, s)| (l, s.to_string())).to_vec());
    assert_eq!(
        c.located(&c.warnings[0]),
        format!("mem.txt:7: {}", expect[0].1)
    );
}

#[test]
fn more_than_half_malformed_is_one_clear_error() {
    let f = format!("{}bad\nbad\nbad\n", good_lines(2));
    let e = load(f.as_bytes(), Some(Format::Tsv)).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Input { ref path, .. } if path == "mem.txt"),
        "{msg}"
    );
    assert!(
        msg.contains("3 of 5 records are malformed (more than half)"),
        "{msg}"
    );
    assert!(msg.contains("line 3: wrong column count"), "{msg}");
    // Exactly half is still loaded (with warnings).
    let f = format!("{}bad\nbad\n", good_lines(2));
    assert_eq!(load(f.as_bytes(), Some(Format::Tsv)).unwrap().skipped, 2);
}

#[test]
fn empty_or_blank_file_is_an_error() {
    for f in [&b""[..], b"\n\n  \n"] {
        let msg = load(f, Some(Format::Tsv)).unwrap_err().to_string();
        assert!(msg.contains("no pairs found"), "{msg}");
    }
}

#[test]
fn tatoeba_export_is_detected_and_checked() {
    let f = "1276\tLet's try something.\t77\tLass uns etwas versuchen!\n\
             1277\tI have to go to sleep.\t2\tIch muss schlafen gehen.\n\
             x12\tNo id.\t3\tKeine Nummer.\n\
             1280\tToday is June 18th.\t5\n";
    let c = load(f.as_bytes(), None).unwrap();
    assert_eq!(
        c.pairs[1],
        Pair::new("I have to go to sleep.", "Ich muss schlafen gehen.")
    );
    assert_eq!(
        reasons(&c),
        vec![
            (3, "bad sentence id: \"x12\" is not a number".to_string()),
            (
                4,
                "wrong column count: expected 4 tab-separated columns, found 3".to_string()
            ),
        ]
    );
    assert_eq!(data::detect_format(f.as_bytes(), "x.tsv"), Format::Tatoeba);
}

#[test]
fn qa_blocks_with_continuations_and_every_block_fault() {
    let f = "Q: What is a hydrogen atom made of?\nA: One proton\nand one electron.\n\n\
             Q: What is the symbol of helium?\r\nA: He.\r\n\n\
             Q: First?\nQ: Second?\nA: x\n\n\
             A: An answer first.\n\n\
             Q: No answer?\n\n\
             Q: Empty answer?\nA:\n\n\
             Some text.\nQ: late?\nA: y\n\n\
             Q: Two answers?\nA: one\nA: two\n\n\
             Q: ok?\nA: yes\n\n\
             Q: ok2?\nA: yes\n\n\
             Q: ok3?\nA: yes\n\n\
             Q: ok4?\nA: yes\n";
    let c = load(f.as_bytes(), None).unwrap();
    assert_eq!(c.kind, CorpusKind::Qa);
    assert_eq!(
        c.pairs[0],
        Pair::new(
            "What is a hydrogen atom made of?",
            "One proton and one electron."
        )
    );
    assert_eq!(
        c.pairs[1],
        Pair::new("What is the symbol of helium?", "He.")
    );
    assert_eq!(c.pairs.len(), 6);
    let r = reasons(&c);
    let expect = [
        (
            9,
            "a second 'Q:' in one block (separate pairs with a blank line)",
        ),
        (12, "'A:' before any 'Q:' in its block"),
        (14, "question without an 'A:' line"),
        (16, "empty answer"),
        (19, "block does not start with 'Q:'"),
        (25, "a second 'A:' in one block"),
    ];
    assert_eq!(r, expect.map(|(l, s)| (l, s.to_string())).to_vec());
}

#[test]
fn qa_jsonl_is_detected_and_checked() {
    let f = "{\"q\": \"What is H?\", \"a\": \"Hydrogen.\"}\n\
             {\"q\": \"What is He?\", \"a\": \"Helium.\"}\n\
             {\"q\": \"broken\"\n\
             {\"q\": \"no answer\"}\n\
             {\"q\": 3, \"a\": \"x\"}\n\
             {\"q\": \"What is Li?\", \"a\": \"Lithium.\"}\n\
             {\"q\": \"What is Be?\", \"a\": \"Beryllium.\"}\n\
             {\"q\": \"What is B?\", \"a\": \"  \"}\n";
    let c = load(f.as_bytes(), None).unwrap();
    assert_eq!(c.kind, CorpusKind::Qa);
    assert_eq!(c.pairs.len(), 4);
    let r = reasons(&c);
    assert_eq!(r[0].0, 3);
    assert!(r[0].1.starts_with("invalid JSON: "), "{}", r[0].1);
    assert_eq!(r[1], (4, "missing string field \"a\"".to_string()));
    assert_eq!(r[2], (5, "missing string field \"q\"".to_string()));
    assert_eq!(r[3], (8, "empty answer".to_string()));
}

#[test]
fn open_reports_missing_files_and_unknown_builtins() {
    let e = data::open("/nonexistent/pairs.tsv", None).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let msg = data::open("builtin:nope", None).unwrap_err().to_string();
    assert!(msg.contains("builtin:translate, builtin:qa"), "{msg}");
    let dir = temp_dir("open");
    let p = dir.join("pairs.tsv");
    std::fs::write(&p, good_lines(3)).unwrap();
    let c = data::open(p.to_str().unwrap(), None).unwrap();
    assert_eq!(c.path.as_deref(), Some(p.as_path()));
    assert_eq!(c.name, p.to_str().unwrap());
}

// -------------------------------------------------------------- built-ins

/// The counts written by scripts/build-corpora.sh (data/build-report.tsv).
fn reported_count(section: &str) -> usize {
    let report = include_str!("../data/build-report.tsv");
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("{section}\tpairs written\t")))
        .expect("a 'pairs written' row");
    line.rsplit('\t').next().unwrap().parse().unwrap()
}

#[test]
fn builtin_corpora_decode_and_match_the_build_report() {
    for (name, kind, section) in [
        ("translate", CorpusKind::Translation, "translate"),
        ("qa", CorpusKind::Qa, "qa"),
    ] {
        let start = Instant::now();
        let c = data::builtin(name).unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "builtin:{name}: {} pairs decoded in {secs:.3} s",
            c.pairs.len()
        );
        assert_eq!(c.kind, kind);
        assert_eq!(c.pairs.len(), reported_count(section));
        assert_eq!((c.skipped, c.path.clone()), (0, None));
        assert_eq!(c.name, format!("builtin:{name}"));
        let h = c.hash_hex();
        assert_eq!(h.len(), 16);
        assert_eq!(
            data::open(&format!("builtin:{name}"), None)
                .unwrap()
                .hash_hex(),
            h
        );
    }
    let qa = data::builtin("qa").unwrap();
    let hydrogen = qa
        .pairs
        .iter()
        .find(|p| p.src == "What is the atomic number of hydrogen?")
        .unwrap();
    assert_eq!(hydrogen.tgt, "The atomic number of hydrogen is 1.");
}

#[test]
fn corpus_hash_follows_content() {
    let mut c = load(good_lines(4).as_bytes(), None).unwrap();
    let h = c.hash();
    c.name = "renamed".into();
    assert_eq!(c.hash(), h);
    c.pairs[2].tgt.push('!');
    assert_ne!(c.hash(), h);
}

// ----------------------------------------------------------------- splits

fn assert_partition(c: &Corpus, s: &data::Splits) {
    let mut all: Vec<&Pair> = s.train.iter().chain(&s.valid).chain(&s.test).collect();
    let mut orig: Vec<&Pair> = c.pairs.iter().collect();
    all.sort_by(|a, b| (&a.src, &a.tgt).cmp(&(&b.src, &b.tgt)));
    orig.sort_by(|a, b| (&a.src, &a.tgt).cmp(&(&b.src, &b.tgt)));
    assert_eq!(all, orig, "the splits are not a partition of the corpus");
    for side in [Side::Source, Side::Target] {
        let mut home: HashMap<String, usize> = HashMap::new();
        for (k, part) in [&s.train, &s.valid, &s.test].iter().enumerate() {
            for p in part.iter() {
                let prev = *home.entry(group_key(side.of(p))).or_insert(k);
                assert_eq!(prev, k, "{side:?} {:?} is in two splits", side.of(p));
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Side {
    Source,
    Target,
}

impl Side {
    fn of(self, p: &Pair) -> &str {
        match self {
            Side::Source => &p.src,
            Side::Target => &p.tgt,
        }
    }
}

/// The normalisation, written here independently of the crate's:
/// lower-cased, whitespace collapsed.
fn plain(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Validation and test pairs whose question (source) or answer (target)
/// also occurs in training, under `norm`.
fn leaks(s: &data::Splits, norm: fn(&str) -> String) -> Vec<String> {
    let mut out = Vec::new();
    for side in [Side::Source, Side::Target] {
        let train: HashSet<String> = s.train.iter().map(|p| norm(side.of(p))).collect();
        for (name, part) in [("valid", &s.valid), ("test", &s.test)] {
            for p in part.iter().filter(|p| train.contains(&norm(side.of(p)))) {
                out.push(format!("{name} {side:?} {:?}", side.of(p)));
            }
        }
    }
    out
}

#[test]
fn built_in_splits_share_no_question_or_answer_with_training() {
    for name in ["qa", "translate"] {
        let c = data::builtin(name).unwrap();
        // The recipe's split (2% / 2%, seed 0), other seeds, larger parts.
        for (valid, test, seed) in [(0.02, 0.02, 0), (0.02, 0.02, 1), (0.05, 0.1, 7)] {
            let s = data::split(&c, valid, test, seed);
            assert_partition(&c, &s);
            for norm in [plain as fn(&str) -> String, |t: &str| t.to_string()] {
                let l = leaks(&s, norm);
                assert!(
                    l.is_empty(),
                    "{name} seed {seed}: {} leaks, e.g. {:?}",
                    l.len(),
                    &l[..l.len().min(5)]
                );
            }
            let (v, t) = s.overlap();
            assert_eq!((v, t), Default::default(), "{name}: measured overlap");
            // Still fine-grained: tens of thousands of components of a
            // few pairs each, and the parts near their shares.
            assert!(s.components > 20_000 && s.largest_component <= 20, "{name}");
            let n = c.pairs.len() as f64;
            assert!((s.valid.len() as f64 / n - valid).abs() < 0.002, "{name}");
            assert!((s.test.len() as f64 / n - test).abs() < 0.002, "{name}");
        }
    }
}

#[test]
fn a_users_shared_answers_keep_their_components_whole() {
    // Each fact asked three ways with one answer (the built-in Q&A's
    // shape), answers shared across facts in a chain, and one answer
    // ("yes") given to half the corpus.
    let mut pairs = Vec::new();
    for f in 0..300 {
        for q in ["What is", "Name", "Tell me"] {
            pairs.push(Pair::new(
                format!("{q} fact {f}?"),
                format!("Answer {}", f / 2),
            ));
        }
    }
    for i in 0..900 {
        pairs.push(Pair::new(format!("Is {i} a number?"), "Yes.".to_string()));
    }
    let c = Corpus {
        name: "shared".into(),
        kind: CorpusKind::Qa,
        pairs,
        skipped: 0,
        warnings: vec![],
        path: None,
    };
    for seed in 0..4 {
        let s = data::split(&c, 0.1, 0.1, seed);
        assert_partition(&c, &s);
        assert!(leaks(&s, plain).is_empty(), "seed {seed}");
        // Facts 2k and 2k+1 share their answer: 6 pairs per component;
        // the 900 "yes" pairs are one component, too large for a part.
        assert_eq!((s.components, s.largest_component), (151, 900));
        assert!(s.train.iter().filter(|p| p.tgt == "Yes.").count() == 900);
        assert!(!s.valid.is_empty() && !s.test.is_empty());
        assert!(s.valid.len() <= 180 + 45 && s.test.len() <= 180 + 45);
    }
}

#[test]
fn splits_are_disjoint_seeded_and_sized() {
    let c = data::builtin("qa").unwrap();
    let s = data::split(&c, 0.05, 0.1, 3);
    assert_partition(&c, &s);
    let n = c.pairs.len() as f64;
    assert!(
        (s.valid.len() as f64 / n - 0.05).abs() < 0.002,
        "{}",
        s.valid.len()
    );
    assert!(
        (s.test.len() as f64 / n - 0.1).abs() < 0.002,
        "{}",
        s.test.len()
    );
    assert_eq!(s, data::split(&c, 0.05, 0.1, 3));
    assert_ne!(s.test, data::split(&c, 0.05, 0.1, 4).test);
    // A pair's split depends on its text, not its position.
    let mut rev = c.clone();
    rev.pairs.reverse();
    let r = data::split(&rev, 0.05, 0.1, 3);
    let set = |v: &[Pair]| v.iter().cloned().collect::<HashSet<_>>();
    assert_eq!(set(&r.test), set(&s.test));
}

#[test]
fn a_question_never_appears_in_two_splits() {
    // Many answers to few questions, in spelling variants.
    let mut items = Vec::new();
    for i in 0..400 {
        let q = match i % 3 {
            0 => format!("What is item {}?", i % 40),
            1 => format!("what is ITEM {} ?", i % 40),
            _ => format!("What is item {}", i % 40),
        };
        items.push(Pair::new(q, format!("Answer {i}.")));
    }
    let c = Corpus {
        name: "q".into(),
        kind: CorpusKind::Qa,
        pairs: items,
        skipped: 0,
        warnings: vec![],
        path: None,
    };
    for seed in 0..5 {
        let s = data::split(&c, 0.2, 0.2, seed);
        assert_partition(&c, &s);
        assert!(!s.test.is_empty() && !s.valid.is_empty());
    }
}

#[test]
fn splits_are_recorded_in_a_run_directory() {
    let c = load(good_lines(50).as_bytes(), None).unwrap();
    let s = data::split(&c, 0.1, 0.1, 9);
    let dir = temp_dir("splits");
    s.save(&dir).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("split.json")).unwrap()).unwrap();
    assert_eq!(meta["seed"], 9);
    assert_eq!(meta["components"], s.components);
    for part in ["valid", "test"] {
        for side in ["source", "target"] {
            assert_eq!(meta["shared_with_train"][part][side], 0, "{part} {side}");
        }
    }
    assert_eq!(meta["test"]["pairs"], s.test.len());
    assert_eq!(
        meta["train"]["hash"],
        format!("{:016x}", data::pairs_hash(&s.train))
    );
    let back = data::open(dir.join("train.tsv").to_str().unwrap(), None).unwrap();
    assert_eq!(back.pairs, s.train);
}

// --------------------------------------------------------------- thinning

fn check_thin(name: &str, p: &[Pair], fraction: f64, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let t = data::thin(p, fraction, seed);
        assert_eq!(t.pairs.len(), data::kept_count(p.len(), fraction));
        for v in [
            t.js_length,
            t.js_unigram,
            t.uniform_js_length,
            t.uniform_js_unigram,
        ] {
            assert!((0.0..=1.0).contains(&v), "{v}");
        }
        eprintln!(
            "{name} seed {seed}: JS length {:.2e} (uniform {:.2e}), unigram {:.2e} (uniform {:.2e})",
            t.js_length, t.uniform_js_length, t.js_unigram, t.uniform_js_unigram
        );
        assert!(
            t.js_length <= t.uniform_js_length,
            "{name} seed {seed}: length"
        );
        assert!(
            t.js_unigram <= t.uniform_js_unigram,
            "{name} seed {seed}: unigram"
        );
    }
}

#[test]
fn stratified_thinning_is_no_worse_than_uniform_on_the_builtins() {
    for name in ["translate", "qa"] {
        let c = data::builtin(name).unwrap();
        check_thin(name, &c.pairs, 0.5, 0..3);
    }
}

/// Zipf-distributed words and a heavily skewed length distribution: most
/// pairs short, a long tail up to 60 words.
fn skewed_corpus(n: usize) -> Vec<Pair> {
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let zipf = |next: &mut dyn FnMut() -> f64| {
        let u = next();
        format!("w{}", (1.0 / (1.0 - u * 0.999)).powf(1.3) as usize)
    };
    (0..n)
        .map(|_| {
            let len = |u: f64| 1 + (u * u * u * u * 60.0) as usize;
            let (ls, lt) = (len(next()), len(next()));
            let src: Vec<String> = (0..ls).map(|_| zipf(&mut next)).collect();
            let tgt: Vec<String> = (0..lt).map(|_| zipf(&mut next)).collect();
            Pair::new(src.join(" "), tgt.join(" "))
        })
        .collect()
}

#[test]
fn stratified_thinning_is_no_worse_than_uniform_on_a_skewed_corpus() {
    let p = skewed_corpus(6000);
    check_thin("skewed 50%", &p, 0.5, 0..6);
    check_thin("skewed 20%", &p, 0.2, 0..3);
}

#[test]
fn thinning_is_deterministic_ordered_and_total_at_one() {
    let p = skewed_corpus(800);
    let a = data::thin(&p, 0.3, 5);
    assert_eq!(a.pairs, data::thin(&p, 0.3, 5).pairs);
    assert_ne!(a.pairs, data::thin(&p, 0.3, 6).pairs);
    // A subsequence of the input, in order.
    let mut it = p.iter();
    assert!(a.pairs.iter().all(|k| it.any(|x| x == k)));
    let all = data::thin(&p, 1.0, 0);
    assert_eq!(all.pairs, p);
    assert!(all.js_length.abs() < 1e-12 && all.js_unigram.abs() < 1e-12);
}

#[test]
fn js_divergence_known_values() {
    assert_eq!(data::js_divergence(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
    assert!((data::js_divergence(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    // JS([1,0],[.5,.5]) = 1 - 0.5*H(0.75, 0.25)... computed directly:
    let m = [0.75f64, 0.25];
    let want = 0.5 * (1.0f64 / m[0]).log2()
        + 0.5 * (0.5 * (0.5 / m[0]).log2() + 0.5 * (0.5 / m[1]).log2());
    assert!((data::js_divergence(&[1.0, 0.0], &[0.5, 0.5]) - want).abs() < 1e-12);
}

// -------------------------------------------------------------- tokenizer

const TEXTS: [&str; 8] = [
    "What is a hydrogen atom made of?",
    "One proton and one electron.",
    "Der Hund läuft über die Straße.",
    "The dog runs across the street.",
    "Ich habe meine Belastungsgrenze erreicht.",
    "I have reached the breaking point.",
    "Æsop's fables — 12.5% of 3 × 4 = 1.5",
    "Tab\tand\nnewline, emoji 🦀.",
];

fn small_tokenizer() -> Tokenizer {
    let texts: Vec<&str> = TEXTS.iter().cycle().take(200).copied().collect();
    Tokenizer::train(&texts, 400).unwrap()
}

#[test]
fn tokenizer_trains_round_trips_saves_and_loads() {
    let t = small_tokenizer();
    assert_eq!(
        t.specials(),
        SP,
        "specials are ids 0-5 of a trained tokenizer"
    );
    assert!(
        t.vocab_size() <= 400 && t.vocab_size() > 262,
        "{}",
        t.vocab_size()
    );
    for s in TEXTS {
        let ids = t.encode(s);
        assert!(
            !ids.contains(&SP.pad) && !ids.contains(&SP.bos),
            "no specials are added"
        );
        assert_eq!(t.decode(&ids), s, "round trip");
    }
    // Specials are skipped by decode.
    let mut ids = vec![SP.bos, SP.q];
    ids.extend(t.encode("One proton"));
    ids.push(SP.eos);
    assert_eq!(t.decode(&ids), "One proton");
    // Merges were learned: frequent words take fewer tokens than bytes.
    assert!(t.encode(TEXTS[0]).len() < TEXTS[0].len() / 2);
    let dir = temp_dir("tok");
    let path = dir.join("tokenizer.json");
    t.save(&path).unwrap();
    let back = Tokenizer::load(&path).unwrap();
    assert_eq!(back.hash(), t.hash());
    assert_eq!(back.specials(), t.specials());
    for s in TEXTS {
        assert_eq!(back.encode(s), t.encode(s));
    }
    // Training is deterministic.
    assert_eq!(small_tokenizer().hash(), t.hash());
}

#[test]
fn tokenizer_cache_hits_and_survives_a_corrupt_file() {
    let c = load(
        TEXTS
            .iter()
            .map(|s| format!("{}\tx {}\n", s.replace(['\t', '\n'], " "), s.len()))
            .collect::<String>()
            .as_bytes(),
        None,
    )
    .unwrap();
    let dir = temp_dir("tokcache");
    let (a, hit) = Tokenizer::cached(&c, 300, Some(&dir)).unwrap();
    assert!(!hit);
    let file = dir.join(data::cache_name(&c, 300));
    assert!(file.exists(), "{}", file.display());
    let (b, hit) = Tokenizer::cached(&c, 300, Some(&dir)).unwrap();
    assert!(hit);
    assert_eq!(a.hash(), b.hash());
    // Another vocabulary size is another entry.
    assert!(!Tokenizer::cached(&c, 290, Some(&dir)).unwrap().1);
    std::fs::write(&file, "{ truncated").unwrap();
    let (d, hit) = Tokenizer::cached(&c, 300, Some(&dir)).unwrap();
    assert!(!hit, "a corrupt cache file is retrained, not trusted");
    assert_eq!(d.hash(), a.hash());
    assert!(
        Tokenizer::cached(&c, 300, Some(&dir)).unwrap().1,
        "and rewritten"
    );
    // for_corpus uses $ACTFORGE_CACHE_DIR/tokenizers.
    let env_dir = temp_dir("tokenv");
    std::env::set_var("ACTFORGE_CACHE_DIR", &env_dir);
    Tokenizer::for_corpus(&c, 300).unwrap();
    assert!(env_dir
        .join("tokenizers")
        .join(data::cache_name(&c, 300))
        .exists());
}

#[test]
fn a_cached_tokenizer_that_is_not_what_was_asked_is_retrained() {
    let c = load(
        TEXTS
            .iter()
            .map(|s| format!("{}\tx {}\n", s.replace(['\t', '\n'], " "), s.len()))
            .collect::<String>()
            .as_bytes(),
        None,
    )
    .unwrap();
    let dir = temp_dir("tokcache-asked");
    let (small, _) = Tokenizer::cached(&c, 290, Some(&dir)).unwrap();
    let (big, _) = Tokenizer::cached(&c, 320, Some(&dir)).unwrap();
    assert!(big.vocab_size() > 290, "{}", big.vocab_size());
    let file = dir.join(data::cache_name(&c, 290));
    // A readable tokenizer of another vocabulary under this entry's name.
    std::fs::copy(dir.join(data::cache_name(&c, 320)), &file).unwrap();
    let (t, hit) = Tokenizer::cached(&c, 290, Some(&dir)).unwrap();
    assert!(!hit, "a cache file with too many tokens is not trusted");
    assert_eq!(t.hash(), small.hash());
    assert!(
        Tokenizer::cached(&c, 290, Some(&dir)).unwrap().1,
        "and rewritten"
    );
    // One whose specials are not ids 0-5 (GPT-2's, appended at the end).
    let gpt2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gpt2-style-tokenizer.json");
    std::fs::copy(gpt2, &file).unwrap();
    let (t, hit) = Tokenizer::cached(&c, 290, Some(&dir)).unwrap();
    assert!(!hit, "a cache file with other specials is not trusted");
    assert_eq!(t.hash(), small.hash());
}

#[test]
fn a_qa_record_is_bounded_however_many_continuation_lines_it_has() {
    // Each line is short; the record (question and answer with their
    // continuation lines) is not.
    let mut f = String::new();
    for i in 0..4 {
        f.push_str(&format!("Q: question {i}?\nA: answer {i}.\n\n"));
    }
    f.push_str("Q: a long one?\nA: it goes on\n");
    for _ in 0..100 {
        f.push_str(&format!("{}\n", "and on ".repeat(10)));
    }
    f.push_str("\nQ: last?\nA: yes.\n");
    let c = load(f.as_bytes(), Some(Format::Qa)).unwrap();
    assert_eq!(c.pairs.len(), 5);
    let r = reasons(&c);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, 13);
    assert!(
        r[0].1.starts_with("record too long") && r[0].1.contains("limit 4096"),
        "{r:?}"
    );
}

#[test]
fn a_data_file_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("pairs.tsv");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.display().to_string();
    for spec in [fifo.as_str(), "/dev/zero", dir.to_str().unwrap()] {
        // In a thread, so that a blocking open fails the test instead of
        // hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = spec.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(data::open(&owned, None).map(|c| c.pairs.len()));
        });
        let got = rx
            // A backstop far beyond any load: opening takes microseconds.
            .recv_timeout(std::time::Duration::from_secs(600))
            .unwrap_or_else(|_| panic!("opening {spec} blocked"));
        let e = got.unwrap_err().to_string();
        assert!(
            e.contains(spec) && e.contains("not a regular file"),
            "{spec}: {e}"
        );
    }
}

#[test]
fn a_gpt2_style_tokenizer_json_loads_by_path() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gpt2-style-tokenizer.json");
    let t = Tokenizer::load(&path).unwrap();
    // 256 byte symbols, 10 merges, <|endoftext|>, then our six specials.
    assert_eq!(t.vocab_size(), 267 + 6);
    assert_eq!(t.specials().pad, 267);
    assert_eq!(t.specials().a, 272);
    let ids = t.encode("the answer");
    assert_eq!(t.decode(&ids), "the answer");
    assert!(ids.len() < "the answer".len(), "merges apply: {ids:?}");
    assert_eq!(t.encode(" the"), vec![258], "'Ġthe' is one token");
}

#[test]
fn bad_tokenizer_files_and_sizes_are_clear_errors() {
    let dir = temp_dir("badtok");
    let p = dir.join("tokenizer.json");
    std::fs::write(&p, "{\"model\": 3}").unwrap();
    let msg = Tokenizer::load(&p).unwrap_err().to_string();
    assert!(
        msg.contains("tokenizer.json") && msg.contains("not a tokenizer.json"),
        "{msg}"
    );
    let msg = Tokenizer::train(&["abc"], 100).unwrap_err().to_string();
    assert!(msg.contains("at least 262"), "{msg}");
}

#[test]
fn a_4k_tokenizer_trains_on_the_builtin_translation_corpus() {
    let c = data::builtin("translate").unwrap();
    let start = Instant::now();
    let (t, hit) = Tokenizer::cached(&c, 4000, None).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!("4k BPE on builtin:translate: {secs:.2} s");
    assert!(!hit);
    assert_eq!(t.vocab_size(), 4000);
    let start = Instant::now();
    let ex = encode_pairs(&t, &c.pairs, 64, 64);
    eprintln!(
        "encode_pairs of builtin:translate: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(ex.len(), c.pairs.len());
    let tokens: usize = ex.iter().map(|e| e.src.len() + e.tgt.len()).sum();
    assert!(
        tokens < c.pairs.len() * 30,
        "{tokens} tokens: the merges compress"
    );
}

// ---------------------------------------------------------------- batches

fn examples(n: usize) -> Vec<Example> {
    (0..n)
        .map(|i| Example {
            src: (0..(i * 7) % 13 + 1).map(|k| 10 + k as u32).collect(),
            tgt: (0..(i * 5) % 11 + 1).map(|k| 100 + k as u32).collect(),
        })
        .collect()
}

#[test]
fn batches_are_deterministic_and_cover_each_epoch() {
    let ex = examples(1000);
    let a = Batcher::new(&ex, 16, 42);
    let b = Batcher::new(&ex, 16, 42);
    assert_eq!(a.batches_per_epoch(), 63);
    for epoch in 0..3 {
        let mut seen = vec![0u8; ex.len()];
        for i in 0..a.batches_per_epoch() {
            let idx = a.batch_indices(epoch, i);
            idx.iter().for_each(|&j| seen[j] += 1);
            assert!(idx.len() == 16 || idx.len() == 1000 % 16, "{}", idx.len());
        }
        assert!(
            seen.iter().all(|&s| s == 1),
            "epoch {epoch} covers every example once"
        );
    }
    // Bit for bit the same, whatever order the calls come in (resume).
    for (epoch, i) in [(2, 5), (0, 62), (1, 0), (2, 5)] {
        assert_eq!(
            a.decoder_batch(epoch, i, CorpusKind::Qa, &SP),
            b.decoder_batch(epoch, i, CorpusKind::Qa, &SP)
        );
        assert_eq!(
            a.seq2seq_batch(epoch, i, &SP),
            b.seq2seq_batch(epoch, i, &SP)
        );
    }
    assert_ne!(
        a.batch_indices(0, 0),
        a.batch_indices(1, 0),
        "epochs differ"
    );
    assert_ne!(
        a.batch_indices(0, 0),
        Batcher::new(&ex, 16, 43).batch_indices(0, 0),
        "seeds differ"
    );
}

#[test]
fn bucketing_cuts_padding_against_random_batches() {
    let ex = examples(2000);
    let b = Batcher::new(&ex, 32, 1);
    let padding = |batches: &[Vec<usize>]| {
        let (mut pad, mut all) = (0usize, 0usize);
        for idx in batches {
            let lens: Vec<usize> = idx
                .iter()
                .map(|&j| ex[j].src.len() + ex[j].tgt.len())
                .collect();
            let max = *lens.iter().max().unwrap();
            pad += lens.iter().map(|l| max - l).sum::<usize>();
            all += max * lens.len();
        }
        pad as f64 / all as f64
    };
    let bucketed: Vec<Vec<usize>> = (0..b.batches_per_epoch())
        .map(|i| b.batch_indices(0, i))
        .collect();
    let random: Vec<Vec<usize>> = (0..2000)
        .collect::<Vec<_>>()
        .chunks(32)
        .map(|c| c.to_vec())
        .collect();
    let (pb, pr) = (padding(&bucketed), padding(&random));
    eprintln!("padding share: bucketed {pb:.3}, unbucketed {pr:.3}");
    assert!(pb < pr / 3.0, "bucketed {pb}, unbucketed {pr}");
}

#[test]
fn decoder_layouts_and_masks() {
    let ex = vec![
        Example {
            src: vec![10, 11],
            tgt: vec![20],
        },
        Example {
            src: vec![12],
            tgt: vec![21, 22, 23],
        },
    ];
    let b = Batcher::new(&ex, 2, 0);
    let order = b.batch_indices(0, 0);
    let t = b.decoder_batch(0, 0, CorpusKind::Translation, &SP);
    // BOS src SEP tgt EOS; lengths 6 and 7, so len = 6 (inputs drop the last).
    assert_eq!((t.rows, t.len), (2, 6));
    let row = |v: &[u32], r: usize| v[r * 6..r * 6 + 6].to_vec();
    let rowf = |v: &[f32], r: usize| v[r * 6..r * 6 + 6].to_vec();
    let r0 = order.iter().position(|&j| j == 0).unwrap();
    let r1 = 1 - r0;
    assert_eq!(row(&t.input, r0), vec![1, 10, 11, 3, 20, 0]);
    assert_eq!(row(&t.target, r0), vec![10, 11, 3, 20, 2, 0]);
    assert_eq!(rowf(&t.loss_mask, r0), vec![0., 0., 0., 1., 1., 0.]);
    assert_eq!(rowf(&t.pad_mask, r0), vec![1., 1., 1., 1., 1., 0.]);
    assert_eq!(row(&t.input, r1), vec![1, 12, 3, 21, 22, 23]);
    assert_eq!(row(&t.target, r1), vec![12, 3, 21, 22, 23, 2]);
    assert_eq!(rowf(&t.loss_mask, r1), vec![0., 0., 1., 1., 1., 1.]);
    assert_eq!(rowf(&t.pad_mask, r1), vec![1.; 6]);
    // Q&A: BOS Q src A tgt EOS.
    let q = b.decoder_batch(0, 0, CorpusKind::Qa, &SP);
    assert_eq!(q.len, 7);
    let row7 = |v: &[u32], r: usize| v[r * 7..r * 7 + 7].to_vec();
    assert_eq!(row7(&q.input, r0), vec![1, 4, 10, 11, 5, 20, 0]);
    assert_eq!(row7(&q.target, r0), vec![4, 10, 11, 5, 20, 2, 0]);
    assert_eq!(
        q.loss_mask[r0 * 7..r0 * 7 + 7].to_vec(),
        vec![0., 0., 0., 0., 1., 1., 0.]
    );
    assert_eq!(row7(&q.input, r1), vec![1, 4, 12, 5, 21, 22, 23]);
    assert_eq!(
        q.loss_mask[r1 * 7..r1 * 7 + 7].to_vec(),
        vec![0., 0., 0., 1., 1., 1., 1.]
    );
}

#[test]
fn seq2seq_layout_and_masks() {
    let ex = vec![
        Example {
            src: vec![10, 11],
            tgt: vec![20],
        },
        Example {
            src: vec![12],
            tgt: vec![21, 22, 23],
        },
    ];
    let b = Batcher::new(&ex, 2, 0);
    let r0 = b.batch_indices(0, 0).iter().position(|&j| j == 0).unwrap();
    let r1 = 1 - r0;
    let s = b.seq2seq_batch(0, 0, &SP);
    assert_eq!((s.rows, s.src_len, s.tgt_len), (2, 3, 4));
    assert_eq!(s.src[r0 * 3..r0 * 3 + 3].to_vec(), vec![10, 11, 2]);
    assert_eq!(s.src[r1 * 3..r1 * 3 + 3].to_vec(), vec![12, 2, 0]);
    assert_eq!(s.src_mask[r1 * 3..r1 * 3 + 3].to_vec(), vec![1., 1., 0.]);
    assert_eq!(s.dec_in[r0 * 4..r0 * 4 + 4].to_vec(), vec![1, 20, 0, 0]);
    assert_eq!(s.target[r0 * 4..r0 * 4 + 4].to_vec(), vec![20, 2, 0, 0]);
    assert_eq!(
        s.tgt_mask[r0 * 4..r0 * 4 + 4].to_vec(),
        vec![1., 1., 0., 0.]
    );
    assert_eq!(s.dec_in[r1 * 4..r1 * 4 + 4].to_vec(), vec![1, 21, 22, 23]);
    assert_eq!(s.target[r1 * 4..r1 * 4 + 4].to_vec(), vec![21, 22, 23, 2]);
    assert_eq!(s.tgt_mask[r1 * 4..r1 * 4 + 4].to_vec(), vec![1.; 4]);
}

#[test]
fn real_text_batches_carry_the_target_under_the_loss_mask() {
    let t = small_tokenizer();
    let p = pairs(&[
        (TEXTS[2], TEXTS[3]),
        (TEXTS[4], TEXTS[5]),
        (TEXTS[0], TEXTS[1]),
    ]);
    let ex = encode_pairs(&t, &p, 64, 64);
    for (e, q) in ex.iter().zip(&p) {
        assert_eq!(
            (&e.src, &e.tgt),
            (&t.encode(&q.src), &t.encode(&q.tgt)),
            "batch = one by one"
        );
    }
    let short = encode_pairs(&t, &p, 3, 2);
    assert!(
        short.iter().all(|e| e.src.len() == 3 && e.tgt.len() == 2),
        "truncation"
    );
    let b = Batcher::new(&ex, 3, 7);
    let d = b.decoder_batch(0, 0, CorpusKind::Translation, &t.specials());
    for (r, &j) in b.batch_indices(0, 0).iter().enumerate() {
        let row = r * d.len..(r + 1) * d.len;
        let under: Vec<u32> = row
            .clone()
            .filter(|&k| d.loss_mask[k] == 1.0)
            .map(|k| d.target[k])
            .collect();
        assert_eq!(*under.last().unwrap(), t.specials().eos);
        assert_eq!(t.decode(&under), p[j].tgt);
        let input: Vec<u32> = row
            .filter(|&k| d.pad_mask[k] == 1.0)
            .map(|k| d.input[k])
            .collect();
        assert_eq!(t.decode(&input), format!("{}{}", p[j].src, p[j].tgt));
    }
}

// -------------------------------------------------------------------- CLI

fn actforge(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_actforge"))
        .args(args)
        .env("ACTFORGE_CACHE_DIR", temp_dir("clicache"))
        .output()
        .unwrap();
    let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (o.status.code().unwrap_or(-1), s(o.stdout), s(o.stderr))
}

#[test]
fn cli_data_stats_json_keys_and_located_warnings() {
    let (code, out, err) = actforge(&["data", "stats", "builtin:qa", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pairs"], reported_count("qa"));
    assert_eq!(v["skipped"], 0);
    assert!(v["warnings"].as_array().unwrap().is_empty());
    assert!(v["vocab_size"].as_u64().unwrap() > 1000);
    assert!(v["src_lengths"]["histogram"].as_array().unwrap().len() > 5);
    assert_eq!(v["kind"], "qa");
    // The recipe's split, with its measured overlap with training.
    let split = &v["split"];
    assert_eq!(split["seed"], 0);
    let parts: u64 = ["train", "valid", "test"]
        .iter()
        .map(|k| split["pairs"][*k].as_u64().unwrap())
        .sum();
    assert_eq!(v["pairs"], parts);
    for part in ["valid", "test"] {
        for side in ["source", "target"] {
            assert_eq!(split["shared_with_train"][part][side], 0, "{part} {side}");
        }
    }
    let (_, text, _) = actforge(&["data", "stats", "builtin:qa", "--split-seed", "3"]);
    assert!(
        text.contains("seed 3)")
            && text.contains(
                "shared with training: valid 0 sources, 0 targets; test 0 sources, 0 targets"
            ),
        "{text}"
    );
    let (code, _, err) = actforge(&["data", "stats", "builtin:qa", "--valid-fraction", "0.7"]);
    assert_eq!(code, 2);
    assert!(err.contains("--valid-fraction"), "{err}");

    let dir = temp_dir("clistats");
    let f = dir.join("pairs.tsv");
    std::fs::write(&f, format!("{}bad line\n", good_lines(3))).unwrap();
    let fs = f.to_str().unwrap();
    let (code, out, _) = actforge(&["data", "stats", fs, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["skipped"], 1);
    assert_eq!(v["warnings"][0]["line"], 4);
    assert_eq!(
        v["warnings"][0]["reason"],
        "wrong column count: expected 2 tab-separated columns, found 1"
    );
    let (_, text, _) = actforge(&["data", "stats", fs]);
    assert!(
        text.contains(&format!("{fs}:4: wrong column count")),
        "{text}"
    );

    std::fs::write(&f, "bad\nbad\nok\tok\n").unwrap();
    let (code, _, err) = actforge(&["data", "stats", fs]);
    assert_eq!(code, 1);
    assert!(err.contains("more than half") && err.contains(fs), "{err}");
}

#[test]
fn cli_data_thin_reports_both_samples() {
    let (code, out, err) = actforge(&[
        "data",
        "thin",
        "builtin:qa",
        "--fraction",
        "0.5",
        "--seed",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = reported_count("qa");
    assert_eq!(v["pairs"], n);
    assert_eq!(v["kept"], data::kept_count(n, 0.5));
    let f = |a: &str, b: &str| v[a][b].as_f64().unwrap();
    assert!(f("stratified", "js_length") <= f("uniform", "js_length"));
    assert!(f("stratified", "js_unigram") <= f("uniform", "js_unigram"));
    let (code, _, err) = actforge(&["data", "thin", "builtin:qa", "--fraction", "1.5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--fraction must be in (0, 1]"), "{err}");
}
