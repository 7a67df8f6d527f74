#!/usr/bin/env python3
"""Expected BLEU and chrF values from sacreBLEU 2.6.0 for tests/metrics.rs.

Maintainers only; the tests read the committed output. Rebuild with:

    python3 -m venv /tmp/sb && /tmp/sb/bin/pip install sacrebleu==2.6.0
    apt-get install wordnet-base        # the realistic corpus's source text
    /tmp/sb/bin/python scripts/sacrebleu-cases.py

WORDNET_NOUNS=PATH reads WordNet's data.noun from elsewhere (e.g. a package
unpacked with `apt-get download wordnet-base && dpkg-deb -x ...`).

Writes, under tests/data/bleu/:
  cases.json          the hand-built cases: {"cases": [{"name", "hyps", "refs"}]}
                      (refs[r][i] is reference stream r of segment i)
  corpus.ref1.txt     400 example sentences from WordNet 3.0's noun glosses
  corpus.ref2.txt     a second reference: each sentence lightly edited
  corpus.hyp.txt      a "system output": each sentence edited more heavily
  expected.json       sacreBLEU's unrounded results for every case and for the
                      corpus with one and with two references, plus the 13a
                      tokenization of every line.
Everything is deterministic (fixed seeds, WordNet's file order).
"""

import json
import os
import random
import re
import sys
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "bleu"
WORDNET = Path(os.environ.get("WORDNET_NOUNS", "/usr/share/wordnet/data.noun"))

CASES = [
    ("exact-match", ["The quick brown fox jumps over the lazy dog.", "It was a bright cold day in April."],
     [["The quick brown fox jumps over the lazy dog.", "It was a bright cold day in April."]]),
    ("empty-hypothesis", ["", "The cat sat on the mat."],
     [["A man walks into a bar.", "The cat sat on the mat."]]),
    ("all-empty", [""], [[""]]),
    ("empty-hypotheses-only", ["", ""], [["one two three four five", "six seven"]]),
    ("empty-reference", ["a b c d e", "x y z"], [["", "x y z w"]]),
    ("shorter-than-reference", ["the cat sat", "on a mat today"],
     [["the cat sat on the mat", "he was sitting on a mat today at noon"]]),
    ("longer-than-reference", ["the cat sat on the big red mat in the hall all day long", "yes yes yes yes yes"],
     [["the cat sat on the mat", "yes"]]),
    ("no-four-gram-match", ["a b c x d e f y g h"], [["a b c d e f g h i j"]]),
    ("unigrams-only", ["d c b a e"], [["a b c d e"]]),
    ("no-match-at-all", ["foo bar baz qux quux"], [["one two three four five"]]),
    ("three-tokens", ["a b c"], [["a b c"]]),
    ("clipping", ["the the the the the the the"], [["the cat is on the mat"]]),
    ("case-sensitive", ["The Cat Sat On The Mat ."], [["the cat sat on the mat ."]]),
    ("punctuation", [
        'He said: "Don\'t go!" (really?) [no] {maybe} <yes>',
        "e.g. the U.S.A. costs $3.14, or 1,000 units; 5-3=2 and well-known a--b...",
        "Wait!!! What?!? #tag @user ~tilde^caret_under `tick` |pipe| \\back/slash",
        "End with a tokenized period .",
        "...",
    ], [[
        'He said: "Do not go!" (really) [no] {perhaps} <yes>',
        "e.g. the USA costs $3.14, or 1,000 units; 5-3 = 2 and well known a-b ...",
        "Wait! What? #tag @user ~tilde^caret_under `tick` |pipe| \\back/slash",
        "End with a tokenized period.",
        "…",
    ]]),
    ("digits-and-dashes", ["1-2 a-1 1.5.3 1. .5 ,1 1,a a,1 x.y 2,-3 -4 3.-"],
     [["1 - 2 a-1 1.5.3 1 . .5 , 1 1 , a a , 1 x . y 2 , -3 -4 3. -"]]),
    ("html-entities", [
        "&quot;Hello&quot; &amp; &lt;b&gt;bold&lt;/b&gt; &amp;lt; &amp;amp; &apos;x&apos; &#39;",
        "text<skipped>more words-\nhere and\nthere",
        "AT&T; & alone &quot",
    ], [[
        '"Hello" & <b>bold</b> < &amp; \'x\' \'',
        "textmore wordshere and there",
        "AT&T; & alone &quot",
    ]]),
    ("unicode-latin", [
        "Straße, Größe und Übermaß – „so“ sagt man… «oui» £5 €10",
        "Le café coûte 3,50 € — n'est-ce pas ?",
    ], [[
        "Strasse, Größe und Übermaß — „so“ sagt man... «oui» £5 €10",
        "Le café coûte 3,50 € – n’est-ce pas ?",
    ]]),
    ("cjk", [
        "我爱北京天安门。天安门上太阳升！",
        "東京は日本の首都です、そして大きい。",
        "서울은 한국의 수도입니다. 정말 크다!",
        "混合 mixed 文本, with ASCII (括号) 和，全角标点。",
    ], [[
        "我爱北京天安门，天安门上太阳升。",
        "東京は日本の首都で、大きいです。",
        "서울은 한국의 수도입니다. 아주 크다!",
        "混合 mixed 文本, with ASCII (括号) 和, 全角标点.",
    ]]),
    ("combining-marks", [
        "cafe\u0301 na\u0308ive re\u0301sume\u0301",
        "Tiê\u0301ng Việt có dấu: Hà Nội",
        "हिन्दी भाषा बहुत सुंदर है।",
        "\u0301leading combining mark and e\u0301\u0302 stacked",
    ], [[
        "café naïve résumé",
        "Tiếng Việt có dấu: Hà Nội",
        "हिन्दी भाषा बहुत सुन्दर है।",
        "\u0301leading combining mark and e\u0301\u0302 stacked",
    ]]),
    ("rtl-scripts", ["مرحبا بالعالم، كيف حالك؟", "שלום עולם, מה שלומך?"],
     [["مرحبا بالعالم، كيف الحال؟", "שלום עולם, מה נשמע?"]]),
    ("emoji-and-symbols", [
        "I ❤ NY 🙂🙂 x² + y² = z² ≤ ∞",
        "see https://example.com/a?b=c&d=e#frag, mail me@example.org!",
    ], [[
        "I ❤️ NY 🙂 x² + y² = z² ≤ ∞",
        "see https://example.com/a?b=c&d=e#frag , mail me@example.org !",
    ]]),
    ("whitespace-variants", [
        "  leading and trailing  \t",
        "tab\tseparated\twords",
        "no\u00a0break\u2009thin\u3000ideographic\u202fnarrow",
        "unit\u001fsep\u001crecord\u001dgroup\u001efile",
        "carriage\r return\r",
        "line\u2028sep\u0085nel\x0bvt\x0cff",
        "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    ], [[
        "leading and trailing",
        "tab separated words",
        "no break thin ideographic narrow",
        "unit sep record group file",
        "carriage return",
        "line sep nel vt ff",
        "zero width non joiner bom",
    ]]),
    ("multiple-references", [
        "The cat is sitting on the mat.",
        "There is a cat on the mat.",
        "A dog barked loudly at the mailman this morning.",
    ], [
        ["The cat sat on the mat.", "A cat is on the mat.", "The dog barked at the postman."],
        ["There is a cat sitting on the mat.", "There is a cat on the mat.", "This morning a dog barked loudly at the mailman."],
        ["On the mat sits a cat.", "The mat has a cat on it.", "A dog barked."],
    ]),
    ("reference-length-ties", ["one two three four five", "a b c d e f g"], [
        ["one two three four five six", "a b c d e f g h"],
        ["one two three four", "a b c d e f"],
    ]),
    ("chrf-best-reference", ["abcdef ghij", "kitten"], [
        ["xyz", "sitting"],
        ["abcdef ghij", "kitchen"],
        ["", "mitten"],
    ]),
    ("one-character", ["a", "b", ".", "é"], [["a", "c", ".", "e"]]),
    ("long-tokens", ["supercalifragilisticexpialidocious antidisestablishmentarianism " * 3],
     [["supercalifragilisticexpialidocious antidisestablishmentarianism"]]),
]


def tok(line):
    return Tokenizer13a()(line)


def bleu_result(hyps, refs):
    metric = BLEU()
    s = metric.corpus_score(hyps, refs)
    return {
        "score": s.score, "bp": s.bp, "precisions": list(s.precisions),
        "counts": list(s.counts), "totals": list(s.totals),
        "sys_len": s.sys_len, "ref_len": s.ref_len,
        "signature": str(metric.get_signature()),
    }


def chrf_result(hyps, refs):
    metric = CHRF()
    return {"score": metric.corpus_score(hyps, refs).score, "signature": str(metric.get_signature())}


def expected(name, hyps, refs):
    return {
        "name": name,
        "bleu": bleu_result(hyps, refs),
        "chrf": chrf_result(hyps, refs),
        "tokenized": [tok(line) for line in hyps + [r for stream in refs for r in stream]],
    }


def wordnet_examples():
    """Quoted example sentences of WordNet's noun glosses, 6 to 25 words."""
    out, seen = [], set()
    for line in WORDNET.read_text(encoding="utf-8").splitlines():
        if line.startswith("  ") or "|" not in line:
            continue
        for ex in re.findall(r'"([^"]+)"', line.split("|", 1)[1]):
            ex = ex.strip()
            if 6 <= len(ex.split()) <= 25 and ex not in seen:
                seen.add(ex)
                out.append(ex)
    return out


def sentence(ex):
    ex = ex[0].upper() + ex[1:]
    return ex if ex[-1] in ".!?" else ex + "."


def edit(words, rng, vocab, n_edits):
    words = list(words)
    for _ in range(n_edits):
        if len(words) < 2:
            break
        op = rng.randrange(5)
        i = rng.randrange(len(words))
        if op == 0:
            del words[i]
        elif op == 1 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == 2:
            words[i] = rng.choice(vocab)
        elif op == 3:
            words.insert(i, words[i])
        else:
            words = words[: max(1, len(words) * 2 // 3)]
    return words


def build_corpus(n=400):
    examples = wordnet_examples()
    step = len(examples) // n
    refs1 = [sentence(ex) for ex in examples[::step][:n]]
    vocab = sorted({w for r in refs1 for w in r.split()})
    rng = random.Random(9)
    refs2, hyps = [], []
    for r in refs1:
        words = r.split()
        refs2.append(" ".join(edit(words, rng, vocab, 1)))
        roll = rng.random()
        if roll < 0.02:
            hyps.append("")
        elif roll < 0.12:
            hyps.append(r)
        else:
            hyp = " ".join(edit(words, rng, vocab, rng.randrange(1, 5)))
            hyps.append(hyp.lower() if rng.random() < 0.1 else hyp)
    return hyps, refs1, refs2


def write_lines(path, lines):
    for line in lines:
        assert "\n" not in line and "\r" not in line, line
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = [{"name": n, "hyps": h, "refs": r} for n, h, r in CASES]
    for c in cases:
        assert all(len(s) == len(c["hyps"]) for s in c["refs"]), c["name"]
    (OUT / "cases.json").write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n",
                                    encoding="utf-8")
    hyps, refs1, refs2 = build_corpus()
    write_lines(OUT / "corpus.hyp.txt", hyps)
    write_lines(OUT / "corpus.ref1.txt", refs1)
    write_lines(OUT / "corpus.ref2.txt", refs2)
    exp = {
        "sacrebleu": sacrebleu.__version__,
        "cases": [expected(c["name"], c["hyps"], c["refs"]) for c in cases],
        "corpus": {
            "files": {"hyp": "corpus.hyp.txt", "refs": ["corpus.ref1.txt", "corpus.ref2.txt"]},
            "one_ref": {"bleu": bleu_result(hyps, [refs1]), "chrf": chrf_result(hyps, [refs1])},
            "two_refs": {"bleu": bleu_result(hyps, [refs1, refs2]), "chrf": chrf_result(hyps, [refs1, refs2])},
        },
    }
    (OUT / "expected.json").write_text(json.dumps(exp, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases, corpus of {len(hyps)} lines -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
