"""Tool calling (issue 22) through the real OpenAI SDK: tools, tool_choice ("auto", "none",
"required", a named function), messages with tool_calls and tool results, streamed and not.

The server serves three copies of the demo model (4 M parameters, trained on fortunes; its
context raised to 2048 so that prompts with tools fit) that differ in their chat template: "hermes" has Qwen2.5's (its tool-call format, Hermes', is detected
from the template), "llama" Llama 3.1's (model.json names the llama3_json parser), "plain" the
demo's own ChatML template, which knows no tools (no parser: tool_choice "auto" is a 400).

The model knows nothing of tools, so:
- "required" and a named function are the grammar engine's doing: every output at temperature 1
  must be calls of the tools whose arguments validate (PyPI jsonschema) against their schemas;
- "auto" parsing is exercised by combining tools with a guided regex that forces the model's
  format (allowed, as vLLM allows a structured-output constraint with tool_choice "auto"), so
  that the parser reads real token-by-token output;
- the prompt a conversation with calls and results renders to is checked against transformers'
  apply_chat_template on the same conversation (arguments passed as objects, as vLLM does), by
  its token count.

Run: SLUICE_BINARY_DIR=build .venv/bin/python -m pytest -q tests/python/test_tool_calling.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import openai
import pytest
import requests

from conftest import EXAMPLES, SOURCE_DIR, SluiceServer

DEMO = EXAMPLES / "sluice-demo" / "1" / "model"
TEMPLATES = SOURCE_DIR / "tests" / "fixtures" / "chat_templates"
ASK = [{"role": "user", "content": "Weather in Paris?"}]
CALL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{32}")
CONTEXT = 2048

WEATHER = {"type": "function", "function": {
    "name": "get_weather",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]},
                                  "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
FLIGHT = {"type": "function", "function": {
    "name": "book_flight",
    "parameters": {"$defs": {"airport": {"type": "string", "enum": ["CDG", "FCO", "OSL"]}},
                   "type": "object",
                   "properties": {"from": {"$ref": "#/$defs/airport"}, "to": {"$ref": "#/$defs/airport"},
                                  "seats": {"type": "integer", "enum": [1, 2, 3]},
                                  "note": {"type": "string", "maxLength": 6}},
                   "required": ["from", "to", "seats"], "additionalProperties": False}}}
PING = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, FLIGHT, PING]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}

HERMES_CALL = (r'<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "(Paris|Rome)", "unit": "c"\}\}\n'
               r'</tool_call>')
HERMES_TWO_CALLS = r'Let me check\. ' + HERMES_CALL + r'\n<tool_call>\n\{"name": "ping", "arguments": \{\}\}\n</tool_call>'
LLAMA_CALL = r'\{"name": "get_weather", "parameters": \{"city": "(Paris|Rome)", "unit": "c"\}\}'


def write_model(root: Path, name: str, template: str | None, engine_args: dict) -> None:
    """A copy of the demo model (its files linked) with `template` as its chat template."""
    folder = root / name / "1" / "model"
    folder.mkdir(parents=True)
    for f in ("generation_config.json", "model.safetensors", "tokenizer.json"):
        (folder / f).symlink_to(DEMO / f)
    # A context of 2048 (trained on 512): a prompt with tools fits. What the model says past
    # its training length does not matter here: the grammar engine decides the outputs.
    config = json.loads((DEMO / "config.json").read_text())
    config["max_position_embeddings"] = CONTEXT
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((DEMO / "tokenizer_config.json").read_text())
    if template is not None:
        tokenizer_config["chat_template"] = (TEMPLATES / f"{template}.jinja").read_text()
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (root / name / "1" / "model.json").write_text(json.dumps({"model": "model", "max_model_len": CONTEXT, **engine_args}))
    (root / name / "config.pbtxt").write_text(
        f'name: "{name}"\nbackend: "vllm"\ninstance_group [{{ count: 1 kind: KIND_MODEL }}]\n'
        'model_transaction_policy { decoupled: true }\n')


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("tool_repository")
    write_model(root, "hermes", "qwen2_5", {})
    write_model(root, "llama", "llama3_1", {"tool_call_parser": "llama3_json"})
    write_model(root, "plain", None, {})
    s = SluiceServer(["--model-repository", str(root), "--model-control-mode", "explicit", "--load-model", "hermes",
                      "--load-model", "llama", "--load-model", "plain", "--cpu-threads", "2"])
    yield s
    failed = getattr(request.session, "testsfailed", 0)
    s.stop()
    if failed:
        print("---- sluice log (end) ----\n" + s.log()[-6000:] + "\n---- end of sluice log ----")


def assert_still_serves(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="hermes", messages=ASK, max_tokens=4, temperature=0)
    assert r.choices[0].finish_reason in ("stop", "length")


def complete(client, stream: bool, **kw) -> tuple[str | None, list[dict], str]:
    """One chat completion's content, tool calls ([{"id", "name", "arguments"}]) and finish
    reason; streamed, the deltas are checked to be OpenAI's as they are assembled."""
    if not stream:
        r = client.chat.completions.create(**kw)
        m = r.choices[0].message
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments, "type": c.type}
                 for c in m.tool_calls or []]
        return m.content, calls, r.choices[0].finish_reason
    content, calls, finish = "", [], []
    for chunk in client.chat.completions.create(stream=True, **kw):
        for choice in chunk.choices:
            d = choice.delta
            if d.content:
                assert not calls, f"content after a call: {d.content!r}"
                assert "<tool" not in d.content, f"a tag leaked into the content: {d.content!r}"
                content += d.content
            for piece in d.tool_calls or []:
                if piece.index == len(calls):  # a call's first piece: its id, type and name
                    assert CALL_ID.fullmatch(piece.id or ""), piece
                    assert piece.type == "function" and piece.function.name, piece
                    assert piece.function.arguments == "", piece
                    calls.append({"id": piece.id, "name": piece.function.name, "arguments": "", "type": "function"})
                else:
                    assert piece.index == len(calls) - 1 and piece.id is None and piece.function.name is None, piece
                    calls[-1]["arguments"] += piece.function.arguments
            if choice.finish_reason is not None:
                finish.append(choice.finish_reason)
    assert len(finish) == 1
    return content or None, calls, finish[0]


def assert_valid_call(call: dict) -> None:
    assert CALL_ID.fullmatch(call["id"]), call
    assert call["name"] in SCHEMAS, call
    jsonschema.validate(json.loads(call["arguments"]), SCHEMAS[call["name"]])


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


# ---- forced choices: the grammar engine's ----------------------------------------------------

@STREAM
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_a_named_function_always_gets_valid_arguments(client, name, stream):
    for seed in range(4):
        content, calls, finish = complete(client, stream, model="hermes", messages=ASK, tools=TOOLS, temperature=1.0,
                                          seed=seed, tool_choice={"type": "function", "function": {"name": name}})
        assert finish == "stop"  # OpenAI's for a named function
        assert content is None
        assert len(calls) == 1 and calls[0]["name"] == name, calls
        assert_valid_call(calls[0])


@STREAM
def test_required_always_calls_tools_with_valid_arguments(client, stream):
    seen = set()
    for seed in range(6):
        content, calls, finish = complete(client, stream, model="hermes", messages=ASK, tools=TOOLS, temperature=1.0,
                                          seed=seed, tool_choice="required", parallel_tool_calls=False)
        assert finish == "tool_calls" and content is None
        assert len(calls) == 1, calls
        assert_valid_call(calls[0])
        seen.add(calls[0]["name"])
    assert len(seen) > 1, seen  # sampled among the tools, not forced to one


def test_required_with_parallel_calls(client):
    r = client.chat.completions.create(model="hermes", messages=ASK, tools=TOOLS, tool_choice="required",
                                       temperature=1.0, n=4, seed=3, max_tokens=120)
    for c in r.choices:
        calls = c.message.tool_calls
        assert calls and c.finish_reason in ("tool_calls", "length"), c
        complete_calls = calls if c.finish_reason == "tool_calls" else calls[:-1]
        for call in complete_calls:
            assert_valid_call({"id": call.id, "name": call.function.name, "arguments": call.function.arguments})
        assert len({call.id for call in calls}) == len(calls)


# ---- "auto": the model's own format, parsed --------------------------------------------------

@STREAM
def test_auto_reads_hermes_calls_and_the_text_before_them(client, stream):
    for seed in range(3):
        content, calls, finish = complete(client, stream, model="hermes", messages=ASK, tools=TOOLS, temperature=1.0,
                                          seed=seed, extra_body={"guided_regex": HERMES_TWO_CALLS})
        assert content == "Let me check. "
        assert [c["name"] for c in calls] == ["get_weather", "ping"], calls
        assert json.loads(calls[0]["arguments"])["city"] in ("Paris", "Rome")
        assert json.loads(calls[1]["arguments"]) == {}
        for call in calls:
            assert_valid_call(call)
        assert finish == "tool_calls"


@STREAM
def test_auto_reads_llama3_json_calls(client, stream):
    content, calls, finish = complete(client, stream, model="llama", messages=ASK, tools=TOOLS, temperature=1.0,
                                      max_tokens=100, extra_body={"guided_regex": LLAMA_CALL})
    assert content is None
    assert len(calls) == 1 and calls[0]["name"] == "get_weather", calls
    assert_valid_call(calls[0])
    assert finish == "tool_calls"


@STREAM
def test_auto_without_a_call_is_plain_content(client, stream):
    content, calls, finish = complete(client, stream, model="hermes", messages=ASK, tools=TOOLS, temperature=1.0,
                                      extra_body={"guided_regex": r"It is sunny(\.|!) <3"})
    assert re.fullmatch(r"It is sunny(\.|!) <3", content or ""), content
    assert calls == [] and finish == "stop"


def test_tool_choice_none_renders_the_tools_and_parses_nothing(client):
    kw = dict(model="hermes", messages=ASK, tools=TOOLS, temperature=1.0, extra_body={"guided_regex": HERMES_CALL})
    none = client.chat.completions.create(tool_choice="none", **kw)
    auto = client.chat.completions.create(**kw)
    assert none.choices[0].message.tool_calls is None
    assert re.fullmatch(HERMES_CALL, none.choices[0].message.content)
    assert none.choices[0].finish_reason == "stop"
    assert auto.choices[0].message.tool_calls and auto.choices[0].finish_reason == "tool_calls"
    assert none.usage.prompt_tokens == auto.usage.prompt_tokens  # the same prompt, tools in it
    plain = client.chat.completions.create(model="hermes", messages=ASK, max_tokens=1)
    assert plain.usage.prompt_tokens < none.usage.prompt_tokens


# ---- a conversation: call, result, answer ----------------------------------------------------

@pytest.fixture(scope="module")
def reference_prompt_tokens():
    """Tokens of a conversation rendered by transformers' apply_chat_template with Qwen2.5's
    template (arguments as objects, as vLLM passes them), encoded by the demo's tokenizer."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(DEMO / "tokenizer.json"))
    template = (TEMPLATES / "qwen2_5.jinja").read_text()
    encoder = Tokenizer.from_file(str(DEMO / "tokenizer.json"))

    def count(messages: list[dict], tools: list[dict]) -> int:
        rendered = []
        for m in messages:
            m = dict(m)
            if m.get("tool_calls"):
                m["tool_calls"] = [{**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                                   for c in m["tool_calls"]]
            rendered.append({k: v for k, v in m.items() if v is not None})
        text = tokenizer.apply_chat_template(rendered, tools=tools, chat_template=template, add_generation_prompt=True,
                                             tokenize=False)
        return len(encoder.encode(text, add_special_tokens=False).ids)

    return count


@STREAM
def test_a_tool_calling_conversation_round_trip(client, reference_prompt_tokens, stream):
    tools = [WEATHER, PING]
    # 1. The model calls the tool (forced here: the demo model would not on its own).
    content, calls, finish = complete(client, stream, model="hermes", messages=ASK, tools=tools, temperature=1.0,
                                      tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert len(calls) == 1
    assert_valid_call(calls[0])
    # 2. The client runs it and sends the result back; 3. the model answers.
    messages = ASK + [
        {"role": "assistant", "content": content,
         "tool_calls": [{"id": calls[0]["id"], "type": "function",
                         "function": {"name": calls[0]["name"], "arguments": calls[0]["arguments"]}}]},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C, sunny"},
    ]
    r = client.chat.completions.create(model="hermes", messages=messages, tools=tools, temperature=1.0, max_tokens=24,
                                       extra_body={"guided_regex": r"It is 18C and sunny in (Paris|Rome)\."})
    answer = r.choices[0]
    assert re.fullmatch(r"It is 18C and sunny in (Paris|Rome)\.", answer.message.content), answer.message.content
    assert answer.message.tool_calls is None and answer.finish_reason == "stop"
    # The prompt holds the call (its arguments an object) and the result, as transformers renders them.
    assert r.usage.prompt_tokens == reference_prompt_tokens(messages, tools)


# ---- bad input: 400 naming the problem, and the server keeps serving -------------------------

BAD = [
    ({"model": "plain", "tools": TOOLS}, "tool_call_parser"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
    ({"tool_choice": "required"}, "'tool_choice' needs 'tools'"),
    ({"tools": []}, "'tools' must not be an empty list"),
    ({"tools": [{"type": "retrieval"}]}, "'tools[0].type' must be \"function\""),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
     "'tools[0].function.parameters' must be a JSON Schema object"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "a": {"type": "string", "frobnicate": True}}}}}], "tool_choice": "required"},
     "tools: the parameters of function 'f'"),
    ({"tools": TOOLS, "tool_choice": "required", "response_format": {"type": "json_object"}},
     "cannot be combined with a structured-output constraint"),
    ({"messages": ASK + [{"role": "tool", "content": "18C"}]}, "'messages[1].tool_call_id' is required"),
    ({"messages": ASK + [{"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{city: Paris"}}]}]},
     "'messages[1].tool_calls[0].function.arguments' is not valid JSON"),
]


@STREAM
@pytest.mark.parametrize("kw,named", BAD, ids=[
    "auto-without-parser", "unknown-function", "required-without-tools", "empty-tools", "unknown-tool-type",
    "parameters-not-a-schema", "schema-does-not-compile", "required-and-response-format", "tool-without-id",
    "arguments-not-json"])
def test_bad_tool_requests_are_400_naming_the_problem(client, kw, named, stream):
    args = {"model": "hermes", "messages": ASK, "max_tokens": 8, **kw}
    with pytest.raises(openai.BadRequestError) as e:
        r = client.chat.completions.create(stream=stream, **args)
        if stream:
            list(r)
    assert e.value.status_code == 400
    assert named in e.value.message, e.value.message
    assert_still_serves(client)


# ---- Triton's routes are not OpenAI's: no tool parsing there ---------------------------------

def test_triton_generate_returns_the_raw_text(server):
    sampling = {"guided_regex": HERMES_CALL, "temperature": 1.0, "max_tokens": 200}
    r = requests.post(f"http://{server.http_url}/v2/models/hermes/generate",
                      json={"text_input": "Weather?", "sampling_parameters": json.dumps(sampling),
                            "exclude_input_in_output": True}, timeout=60)
    assert r.status_code == 200, r.text
    assert re.fullmatch(HERMES_CALL, r.json()["text_output"]), r.json()
