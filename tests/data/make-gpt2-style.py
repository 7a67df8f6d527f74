#!/usr/bin/env python3
"""Writes gpt2-style-tokenizer.json: a small tokenizer with GPT-2's layout
(the 256 byte-level symbols in GPT-2's order, merges as "a b" strings,
<|endoftext|> as an added special token, ByteLevel pre-tokenizer,
post-processor and decoder) and ten merges instead of 50,000."""
import json


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


sym = bytes_to_unicode()
vocab = {sym[b]: i for i, b in enumerate(sorted(sym))}
merges = ["Ġ t", "h e", "Ġt he", "i n", "a n", "Ġ a", "Ġa n", "e r", "o n", "Ġ w"]
for m in merges:
    a, b = m.split(" ")
    vocab[a + b] = len(vocab)
eot = len(vocab)
vocab["<|endoftext|>"] = eot
tok = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": True, "special": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": merges},
}
with open("gpt2-style-tokenizer.json", "w", encoding="utf-8") as f:
    f.write(json.dumps(tok, ensure_ascii=False, indent=1) + "\n")
