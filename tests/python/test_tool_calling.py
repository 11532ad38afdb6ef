"""Tool calling (issue 22) through the real OpenAI SDK: tools, tool_choice ("auto", "none",
"required", a named function), messages with tool_calls and tool results, streamed and not.

The server serves three copies of the demo model (4 M parameters, trained on fortunes; its
context raised to 2048 so that prompts with tools fit) that differ in their chat template:
"hermes" has Qwen2.5's (its tool-call format, Hermes', is detected from the template), "llama"
Llama 3.1's (model.json names the llama3_json parser), "plain" the demo's own ChatML template,
which knows no tools (no parser: tool_choice "auto" is a 400). The mistral and pythonic parsers
are test_tool_parsers.py's.

The model knows nothing of tools, so:
- "required" and a named function are the grammar engine's doing: every output at temperature 1
  must be calls of the tools whose arguments validate (PyPI jsonschema) against their schemas;
- "auto" parsing is exercised by combining tools with a guided regex that forces the model's
  format (allowed, as vLLM allows a structured-output constraint with tool_choice "auto"), so
  that the parser reads real token-by-token output;
- the prompt a conversation with calls and results renders to is checked against transformers'
  apply_chat_template on the same conversation (arguments passed as objects, as vLLM does), by
  its token count, and id for id through vLLM's /tokenize with tools;
- a tool message must answer a call before it: OpenAI's 400 and `param`, checked on the raw body.

Run: SLUICE_BINARY_DIR=build .venv/bin/python -m pytest -q tests/python/test_tool_calling.py
"""

from __future__ import annotations

import json
import re

import jsonschema
import openai
import pytest
import requests

from conftest import (DEMO_MODEL, SOURCE_DIR, assert_chat_refused, chat_parts, post_json, serve_module,
                      write_demo_model)

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
# A template that shows a chat_template_kwargs object's members in the client's order.
KWARGS_TEMPLATE = ("{% for k in meta %}{% if loop.first %}{{ k }}{% endif %}{% endfor %} {{ meta | tojson }}\n"
                   "{% for m in messages %}{{ m.content }}{% endfor %}")
LLAMA_CALL = r'\{"name": "get_weather", "parameters": \{"city": "(Paris|Rome)", "unit": "c"\}\}'


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("tool_repository")
    write_demo_model(root, "hermes", (TEMPLATES / "qwen2_5.jinja").read_text(), {}, CONTEXT)
    write_demo_model(root, "llama", (TEMPLATES / "llama3_1.jinja").read_text(),
                     {"tool_call_parser": "llama3_json"}, CONTEXT)
    write_demo_model(root, "plain", None, {}, CONTEXT)
    write_demo_model(root, "kwargs", KWARGS_TEMPLATE, {}, CONTEXT)
    yield from serve_module(request, ["--model-repository", str(root), "--model-control-mode", "explicit",
                                      "--load-model", "hermes", "--load-model", "llama", "--load-model", "plain",
                                      "--load-model", "kwargs", "--cpu-threads", "2"])


def complete(client, stream: bool, **kw) -> tuple[str | None, list[dict], str]:
    """One chat completion's content, tool calls and finish reason (conftest.chat_parts), no tag
    of a call left in the content."""
    content, calls, finish = chat_parts(client, stream, CALL_ID, **kw)
    assert "<tool" not in (content or ""), f"a tag leaked into the content: {content!r}"
    return content, calls, finish


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
def test_a_llama3_json_call_cut_short_leaves_the_output_as_content(client, stream):
    """The llama3_json parser streamed a call's arguments as they came: cut short by max_tokens, the
    reply (streamed or not) held a call whose arguments were no JSON ('{"city": "Pa'). As the other
    parsers and vLLM's reading of a whole output, a call that cannot be read leaves it content."""
    for seed in range(3):
        content, calls, finish = chat_parts(client, stream, CALL_ID, model="llama", messages=ASK, tools=TOOLS,
                                            temperature=1.0, seed=seed, max_tokens=40,
                                            extra_body={"guided_regex": LLAMA_CALL})
        assert calls == [] and finish == "length", (calls, finish)
        assert content.startswith('{"name": "get_weather", "parameters": {"city": '), content
        assert not re.fullmatch(LLAMA_CALL, content), content


@STREAM
def test_auto_without_a_call_is_plain_content(client, stream):
    content, calls, finish = complete(client, stream, model="hermes", messages=ASK, tools=TOOLS, temperature=1.0,
                                      extra_body={"guided_regex": r"It is sunny(\.|!) <3"})
    assert re.fullmatch(r"It is sunny(\.|!) <3", content or ""), content
    assert calls == [] and finish == "stop"


@STREAM
def test_a_call_that_cannot_be_read_leaves_the_output_as_content(client, stream):
    """Issue 22's Hermes bug: a string that never closes swallowed </tool_call> and the text after
    it into a call's arguments. As vLLM, the call cannot be parsed, so the output is content."""
    broken = r'<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "Paris\}\}\n</tool_call>\nSorry\.'
    content, calls, finish = chat_parts(client, stream, CALL_ID, model="hermes", messages=ASK, tools=TOOLS,
                                        temperature=1.0, extra_body={"guided_regex": broken})
    assert re.fullmatch(broken, content or ""), content
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
def reference_prompt_ids():
    """The ids of a conversation rendered by transformers' apply_chat_template with Qwen2.5's
    template (arguments as objects, as vLLM passes them), encoded by the demo's tokenizer."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(DEMO_MODEL / "tokenizer.json"))
    template = (TEMPLATES / "qwen2_5.jinja").read_text()
    encoder = Tokenizer.from_file(str(DEMO_MODEL / "tokenizer.json"))

    def ids(messages: list[dict], tools: list[dict], add_generation_prompt: bool = True) -> list[int]:
        rendered = []
        for m in messages:
            m = dict(m)
            if m.get("tool_calls"):
                m["tool_calls"] = [{**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                                   for c in m["tool_calls"]]
            rendered.append({k: v for k, v in m.items() if v is not None})
        text = tokenizer.apply_chat_template(rendered, tools=tools, chat_template=template,
                                             add_generation_prompt=add_generation_prompt, tokenize=False)
        return encoder.encode(text, add_special_tokens=False).ids

    return ids


@STREAM
def test_a_tool_calling_conversation_round_trip(client, reference_prompt_ids, stream):
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
    assert r.usage.prompt_tokens == len(reference_prompt_ids(messages, tools))


# ---- bad input: 400 naming the problem, and the server keeps serving -------------------------

CALLED = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]}

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
    ({"messages": ASK + [CALLED, {"role": "tool", "tool_call_id": "call_9", "content": "18C"}]},
     "'tool_call_id' of 'call_9' not found in 'tool_calls' of previous message"),
    ({"messages": ASK + [{"role": "tool", "tool_call_id": "call_1", "content": "18C"}]},
     "messages with role 'tool' must be a response to a preceding message with 'tool_calls'"),
]


@STREAM
@pytest.mark.parametrize("kw,named", BAD, ids=[
    "auto-without-parser", "unknown-function", "required-without-tools", "empty-tools", "unknown-tool-type",
    "parameters-not-a-schema", "schema-does-not-compile", "required-and-response-format", "tool-without-id",
    "arguments-not-json", "tool-call-id-not-called", "tool-without-a-call"])
def test_bad_tool_requests_are_400_naming_the_problem(client, kw, named, stream):
    assert_chat_refused(client, named, stream, **{"model": "hermes", "messages": ASK, "max_tokens": 8, **kw})


@STREAM
def test_a_tool_message_that_answers_no_call_is_openais_400(server, stream):
    """OpenAI's rule, words and `param` (vLLM checks nothing here), streamed or not."""
    unknown = ASK + [CALLED, {"role": "tool", "tool_call_id": "call_9", "content": "18C"}]
    orphan = ASK + [{"role": "tool", "tool_call_id": "call_1", "content": "18C"}]
    for messages, param, named in ((unknown, "messages.[2].tool_call_id", "'call_9'"),
                                   (orphan, "messages.[1].role", "'call_1'")):
        status, body = post_json(server, "/v1/chat/completions",
                                 {"model": "hermes", "messages": messages, "tools": TOOLS, "stream": stream})
        assert status == 400, body
        error = body["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == 400, error
        assert error["param"] == param and named in error["message"], error
    # The answer to the call is fine, as is a second tool message answering another call of it.
    both = ASK + [{**CALLED, "tool_calls": CALLED["tool_calls"] + [{**CALLED["tool_calls"][0], "id": "call_2"}]},
                  {"role": "tool", "tool_call_id": "call_2", "content": "18C"},
                  {"role": "tool", "tool_call_id": "call_1", "content": "20C"}]
    status, body = post_json(server, "/v1/chat/completions",
                             {"model": "hermes", "messages": both, "tools": TOOLS, "max_tokens": 2})
    assert status == 200, body


# ---- vLLM's /tokenize with tools: the prompt of chat completions -----------------------------

@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_tokenize_with_tools_is_the_chat_completions_prompt(client, server, reference_prompt_ids,
                                                            add_generation_prompt):
    messages = ASK + [CALLED, {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]
    status, r = post_json(server, "/tokenize", {"model": "hermes", "messages": messages, "tools": TOOLS,
                                                "add_generation_prompt": add_generation_prompt})
    assert status == 200, r
    assert r["tokens"] == reference_prompt_ids(messages, TOOLS, add_generation_prompt)
    assert r["count"] == len(r["tokens"]) and r["max_model_len"] == CONTEXT
    if add_generation_prompt:
        chat = client.chat.completions.create(model="hermes", messages=messages, tools=TOOLS, max_tokens=1)
        assert chat.usage.prompt_tokens == r["count"]
    status, bare = post_json(server, "/tokenize", {"model": "hermes", "messages": messages,
                                                   "add_generation_prompt": add_generation_prompt})
    assert status == 200 and bare["count"] < r["count"], bare  # the tools are in the prompt


def test_tokenize_and_chat_completions_render_template_kwargs_in_the_clients_order(client, server):
    """Chat completions sent chat_template_kwargs with their members sorted (the body as nlohmann::json
    holds it) unless the request also had tools or a constraint; /tokenize sent them in the client's
    order, as vLLM (a Python dict) renders them. Both now read the body alike."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    meta = {"zebra_crossing_zone": 1, "alpha": [True, None]}
    text = PreTrainedTokenizerFast(tokenizer_file=str(DEMO_MODEL / "tokenizer.json")).apply_chat_template(
        ASK, chat_template=KWARGS_TEMPLATE, tokenize=False, meta=meta)
    assert text.startswith('zebra_crossing_zone {"zebra_crossing_zone": 1, "alpha": [true, null]}'), text
    want = Tokenizer.from_file(str(DEMO_MODEL / "tokenizer.json")).encode(text, add_special_tokens=False).ids
    status, r = post_json(server, "/tokenize", {"model": "kwargs", "messages": ASK,
                                                "chat_template_kwargs": {"meta": meta}})
    assert status == 200, r
    assert r["tokens"] == want
    chat = client.chat.completions.create(model="kwargs", messages=ASK, max_tokens=1,
                                          extra_body={"chat_template_kwargs": {"meta": meta}})
    assert chat.usage.prompt_tokens == len(want)


@pytest.mark.parametrize("body,status_code,named", [
    ({"tools": [{"type": "retrieval"}]}, 400, "'tools[0].type' must be \"function\""),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]}, 400,
     "'tools[0].function.parameters' must be a JSON Schema object"),
    ({"tools": []}, 400, "'tools' must not be an empty list"),
    ({"chat_template_kwargs": [1]}, 400, "'chat_template_kwargs' must be an object"),
    ({"prompt": "Hi", "messages": None, "tools": TOOLS}, 400, "'tools' needs 'messages', not 'prompt'"),
    ({"tools": TOOLS, "tool_choice": "required"}, 501, "field 'tool_choice' is not supported"),
], ids=["tool-type", "parameters", "empty-tools", "kwargs", "tools-with-a-prompt", "tool-choice"])
def test_tokenize_refuses_bad_tools_naming_them(server, body, status_code, named):
    request = {"model": "hermes", "messages": ASK, **body}
    request = {k: v for k, v in request.items() if v is not None}
    status, r = post_json(server, "/tokenize", request)
    assert status == status_code, r
    assert named in r["error"]["message"], r


# ---- Triton's routes are not OpenAI's: no tool parsing there ---------------------------------

def test_triton_generate_returns_the_raw_text(server):
    sampling = {"guided_regex": HERMES_CALL, "temperature": 1.0, "max_tokens": 200}
    r = requests.post(f"http://{server.http_url}/v2/models/hermes/generate",
                      json={"text_input": "Weather?", "sampling_parameters": json.dumps(sampling),
                            "exclude_input_in_output": True}, timeout=60)
    assert r.status_code == 200, r.text
    assert re.fullmatch(HERMES_CALL, r.json()["text_output"]), r.json()
