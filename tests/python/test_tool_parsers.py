"""vLLM's `mistral` and `pythonic` tool-call parsers (issue 22) through the real OpenAI SDK: calls read
out of the model's output into tool_calls, streamed and not, what is not a call left as content,
and a conversation round trip through each model's chat template.

The server serves two copies of the demo model (4 M parameters, its context raised to 2048 so that
prompts with tools fit) whose format is detected from their chat templates: "mistral" has Mistral
7B v0.3's (tests/fixtures/chat_templates/mistral_v0_3.jinja: `[TOOL_CALLS]`), "pythonic" Sluice's
Llama 3.2-style test template that asks for a Python list of calls
(tests/fixtures/tool_templates/llama3_2_pythonic.jinja). The demo model knows nothing of tools:
a guided regex forces each format (as vLLM, a constraint may come with tool_choice "auto"), so that
the parsers read real token-by-token output; a named tool_choice makes the calls of the round
trips. The prompts are checked against transformers' apply_chat_template, id for id, through
/tokenize (whose count is the completion's prompt_tokens).

Run: SLUICE_BINARY_DIR=build .venv/bin/python -m pytest -q tests/python/test_tool_parsers.py
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import DEMO_MODEL, SOURCE_DIR, chat_parts, post_json, serve_module, write_demo_model

MISTRAL_TEMPLATE = SOURCE_DIR / "tests" / "fixtures" / "chat_templates" / "mistral_v0_3.jinja"
PYTHONIC_TEMPLATE = SOURCE_DIR / "tests" / "fixtures" / "tool_templates" / "llama3_2_pythonic.jinja"
ASK = [{"role": "user", "content": "Weather in Paris?"}]
MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")  # vLLM's Mistral ids; the template refuses others
VLLM_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{32}")
CONTEXT = 2048

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather of a city.",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]},
                                  "days": {"type": "integer", "enum": [1, 2, 3]}},
                   "required": ["city", "days"], "additionalProperties": False}}}
PING = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, PING]
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("tool_parser_repository")
    write_demo_model(root, "mistral", MISTRAL_TEMPLATE.read_text(), {}, CONTEXT)
    write_demo_model(root, "pythonic", PYTHONIC_TEMPLATE.read_text(), {}, CONTEXT)
    yield from serve_module(request, ["--model-repository", str(root), "--model-control-mode", "explicit",
                                      "--load-model", "mistral", "--load-model", "pythonic", "--cpu-threads", "2"])


def test_the_formats_are_detected_from_the_templates(server):
    log = server.log()
    for model, fmt in (("mistral", "mistral"), ("pythonic", "pythonic")):
        assert f"model '{model}': tool calls read in the {fmt} format (detected from the chat template)" in log


# ---- mistral: [TOOL_CALLS] and a JSON array ---------------------------------------------------

MISTRAL_CALLS = (r'Sure\. \[TOOL_CALLS\] \[\{"name": "get_weather", "arguments": \{"city": "(Paris|Rome)", '
                 r'"days": [1-3]\}\}, \{"name": "ping", "arguments": \{\}\}\]')


@STREAM
def test_mistral_calls_are_read_with_mistral_ids(client, stream):
    for seed in range(3):
        content, calls, finish = chat_parts(client, stream, MISTRAL_ID, model="mistral", messages=ASK, tools=TOOLS,
                                            temperature=1.0, seed=seed, extra_body={"guided_regex": MISTRAL_CALLS})
        assert content == "Sure. "
        assert [c["name"] for c in calls] == ["get_weather", "ping"], calls
        assert json.loads(calls[0]["arguments"])["city"] in ("Paris", "Rome")
        assert json.loads(calls[1]["arguments"]) == {}
        assert all(MISTRAL_ID.fullmatch(c["id"]) for c in calls) and calls[0]["id"] != calls[1]["id"], calls
        assert finish == "tool_calls"


@STREAM
def test_mistral_calls_that_cannot_be_read_are_content_less_the_token(client, stream):
    cut = r'\[TOOL_CALLS\] \[\{"name": "get_weather", "arguments": \{"city": "Paris'  # a string never closed
    content, calls, finish = chat_parts(client, stream, MISTRAL_ID, model="mistral", messages=ASK, tools=TOOLS,
                                        temperature=1.0, extra_body={"guided_regex": cut})
    assert content == ' [{"name": "get_weather", "arguments": {"city": "Paris', content
    assert calls == [] and finish == "stop"


# ---- pythonic: a Python list of calls ---------------------------------------------------------

PYTHONIC_CALLS = r"\[get_weather\(city='(Paris|Rome)', days=[1-3]\), ping\(\)\]"


@STREAM
def test_pythonic_calls_are_read_into_json_arguments(client, stream):
    for seed in range(3):
        content, calls, finish = chat_parts(client, stream, VLLM_ID, model="pythonic", messages=ASK, tools=TOOLS,
                                            temperature=1.0, seed=seed, extra_body={"guided_regex": PYTHONIC_CALLS})
        assert content is None
        assert [c["name"] for c in calls] == ["get_weather", "ping"], calls
        assert re.fullmatch(r'\{"city": "(Paris|Rome)", "days": [1-3]\}', calls[0]["arguments"]), calls
        assert calls[1]["arguments"] == "{}"
        assert finish == "tool_calls"


@STREAM
@pytest.mark.parametrize("output", [r"\[get_weather\(city=Paris\)\]", r"It is sunny\.", r"\[1, 2\]"],
                         ids=["a-name-not-a-literal", "text", "a-list-of-numbers"])
def test_pythonic_output_that_is_not_a_list_of_calls_is_content(client, stream, output):
    content, calls, finish = chat_parts(client, stream, VLLM_ID, model="pythonic", messages=ASK, tools=TOOLS,
                                        temperature=1.0, extra_body={"guided_regex": output})
    assert re.fullmatch(output, content or ""), content
    assert calls == [] and finish == "stop"


# ---- round trips: call, result, answer through each template ------------------------------------

def reference_ids(template: str, messages: list[dict], tools: list[dict]) -> list[int]:
    """The conversation rendered by transformers' apply_chat_template (the demo's special tokens,
    arguments as objects as vLLM passes them), encoded by the demo's tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(DEMO_MODEL))
    rendered = []
    for m in messages:
        m = {k: v for k, v in m.items() if v is not None}
        if m.get("tool_calls"):
            m["tool_calls"] = [{**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                               for c in m["tool_calls"]]
        rendered.append(m)
    text = tokenizer.apply_chat_template(rendered, tools=tools, chat_template=template, add_generation_prompt=True,
                                         tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@STREAM
@pytest.mark.parametrize("model,template,call_id", [("mistral", MISTRAL_TEMPLATE, MISTRAL_ID),
                                                    ("pythonic", PYTHONIC_TEMPLATE, VLLM_ID)],
                         ids=["mistral", "pythonic"])
def test_a_conversation_round_trip(client, server, stream, model, template, call_id):
    content, calls, _ = chat_parts(client, stream, call_id, model=model, messages=ASK, tools=TOOLS, temperature=1.0,
                                   tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert len(calls) == 1 and call_id.fullmatch(calls[0]["id"]), calls
    messages = ASK + [
        {"role": "assistant", "content": content,
         "tool_calls": [{"id": calls[0]["id"], "type": "function",
                         "function": {"name": calls[0]["name"], "arguments": calls[0]["arguments"]}}]},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C"},
    ]
    # The template takes the call back (Mistral's refuses an id that is not its kind) ...
    r = client.chat.completions.create(model=model, messages=messages, tools=TOOLS, temperature=1.0, max_tokens=16,
                                       extra_body={"guided_regex": r"It is 18C\."})
    assert r.choices[0].message.content == "It is 18C." and r.choices[0].finish_reason == "stop"
    # ... and renders it as transformers does.
    status, tokens = post_json(server, "/tokenize", {"model": model, "messages": messages, "tools": TOOLS})
    assert status == 200, tokens
    assert tokens["tokens"] == reference_ids(template.read_text(), messages, TOOLS)
    assert r.usage.prompt_tokens == tokens["count"]
