"""Structured output (issue 22's APIs) through the real clients against the demo LLM: OpenAI's
response_format (json_object, json_schema) and the SDK's `chat.completions.parse` with a
pydantic model, vLLM's guided_* and structured_outputs (sent as the SDK's extra_body), and
Triton's generate endpoint with guided_choice in sampling_parameters.

The demo model (4 M parameters, trained on fortunes) knows nothing of JSON: whatever it
outputs at temperature 1 is the grammar's doing. The schemas here bound their documents
(enums, consts, maxLength, maxItems), so every output completes within max_tokens and must
parse and validate (PyPI `jsonschema`); regex and choice outputs must match whole. A bad
schema, regex or grammar is a 400 naming the problem, streamed or not, and the server keeps
serving; a document cut by max_tokens ends with finish_reason "length".

Run: SLUICE_BINARY_DIR=build .venv/bin/python -m pytest -q tests/python/test_structured_output.py
"""

from __future__ import annotations

import json
import queue
import re
from typing import Literal

import jsonschema
import numpy as np
import openai
import pydantic
import pytest
import requests
import tritonclient.grpc as grpcclient

from conftest import assert_chat_refused

MODEL = "sluice-demo"
CHAT = [{"role": "user", "content": "Tell me a fortune."}]
PROMPT = "Once upon a time"
SAMPLES = 8  # outputs per schema, regex and choice list at temperature 1

SCHEMAS = {
    "flat": {
        "type": "object",
        "properties": {
            "mood": {"type": "string", "enum": ["good", "bad", "odd"]},
            "lucky": {"type": "boolean"},
            "word": {"type": "string", "maxLength": 12},
        },
        "required": ["mood", "lucky", "word"],
        "additionalProperties": False,
    },
    "nested": {
        "type": "object",
        "properties": {
            "fortune": {
                "type": "object",
                "properties": {
                    "number": {"enum": [1, 2, 3, 7, 42]},
                    "kind": {"const": "cookie"},
                    "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 6}]},
                },
                "required": ["number", "kind", "note"],
                "additionalProperties": False,
            },
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 1, "maxItems": 3},
        },
        "required": ["fortune", "tags"],
        "additionalProperties": False,
    },
    "refs": {
        "$defs": {"pair": {"type": "array", "prefixItems": [{"type": "boolean"}, {"enum": ["x", "y"]}],
                           "items": False}},
        "type": "object",
        "properties": {"first": {"$ref": "#/$defs/pair"}, "second": {"$ref": "#/$defs/pair"},
                       "maybe": {"type": "string", "minLength": 1, "maxLength": 4}},
        "required": ["first", "second"],
        "additionalProperties": False,
    },
}

REGEXES = [r"[a-z]{1,8}( [a-z]{1,8}){0,3}", r"\d{3}-\d{4}", r"(yes|no)!?"]
CHOICES = ["yes", "no", "ask again later", "Outlook not so good"]


def schema_format(name: str, schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def assert_still_serves(client: openai.OpenAI) -> None:
    r = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4, temperature=0)
    assert r.choices[0].text and r.usage.completion_tokens == 4


def stream_text(client: openai.OpenAI, **kw) -> tuple[str, str]:
    """A chat stream read to its end: its text and its one finish_reason."""
    text, finish = "", []
    for chunk in client.chat.completions.create(model=MODEL, stream=True, **kw):
        for c in chunk.choices:
            text += c.delta.content or ""
            if c.finish_reason is not None:
                finish.append(c.finish_reason)
    assert len(finish) == 1
    return text, finish[0]


# ---- json_schema and json_object ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_json_schema_outputs_at_temperature_1_validate(client, name):
    schema = SCHEMAS[name]
    r = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=1.0, max_tokens=120,
                                       n=SAMPLES, seed=22, response_format=schema_format(name, schema))
    assert len(r.choices) == SAMPLES
    for c in r.choices:
        assert c.finish_reason == "stop", c.message.content
        doc = json.loads(c.message.content)
        jsonschema.validate(doc, schema)
        # Properties come in the schema's order (OpenAI's strict mode's).
        assert list(doc) == [k for k in schema["properties"] if k in doc], c.message.content
    # Sampled, not forced: the choices differ (the enums leave room).
    assert len({c.message.content for c in r.choices}) > 1


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_guided_json_on_completions_validates(client, name):
    schema = SCHEMAS[name]
    r = client.completions.create(model=MODEL, prompt=PROMPT, temperature=1.0, max_tokens=120, n=4, seed=7,
                                  extra_body={"guided_json": schema})
    for c in r.choices:
        assert c.finish_reason == "stop", c.text
        jsonschema.validate(json.loads(c.text), schema)


def test_structured_outputs_object_takes_a_schema_as_text(client):
    schema = SCHEMAS["flat"]
    r = client.completions.create(model=MODEL, prompt=PROMPT, temperature=1.0, max_tokens=120, seed=3,
                                  extra_body={"structured_outputs": {"json": json.dumps(schema)}})
    jsonschema.validate(json.loads(r.choices[0].text), schema)


def test_streamed_json_schema_output_validates(client):
    for name, schema in SCHEMAS.items():
        for seed in range(3):
            text, finish = stream_text(client, messages=CHAT, temperature=1.0, max_tokens=120, seed=seed,
                                       response_format=schema_format(name, schema))
            assert finish == "stop", text
            jsonschema.validate(json.loads(text), schema)


def test_json_object_output_is_an_object_when_it_stops(client):
    r = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=1.0, max_tokens=200, n=4, seed=5,
                                       response_format={"type": "json_object"})
    for c in r.choices:
        text = c.message.content
        assert text.startswith("{"), text
        if c.finish_reason == "stop":
            assert isinstance(json.loads(text), dict), text
        else:
            assert c.finish_reason == "length"


class Fortune(pydantic.BaseModel):
    mood: Literal["good", "bad", "odd"]
    lucky: bool
    word: str = pydantic.Field(max_length=10)


class Reading(pydantic.BaseModel):
    fortune: Fortune
    stars: list[Literal["sun", "moon"]] = pydantic.Field(max_length=2)


def test_sdk_parse_returns_the_pydantic_object(client):
    for seed in range(3):
        r = client.chat.completions.parse(model=MODEL, messages=CHAT, temperature=1.0, max_tokens=150, seed=seed,
                                          response_format=Reading)
        parsed = r.choices[0].message.parsed
        assert isinstance(parsed, Reading), r.choices[0].message.content
        assert isinstance(parsed.fortune, Fortune)
        assert len(parsed.fortune.word) <= 10 and len(parsed.stars) <= 2


def test_a_document_cut_by_max_tokens_ends_with_length(client):
    r = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=1.0, max_tokens=3,
                                       response_format=schema_format("flat", SCHEMAS["flat"]))
    c = r.choices[0]
    assert c.finish_reason == "length"
    assert c.message.content.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(c.message.content)
    _, finish = stream_text(client, messages=CHAT, temperature=1.0, max_tokens=3,
                            response_format=schema_format("flat", SCHEMAS["flat"]))
    assert finish == "length"
    # The SDK's parse() says so instead of parsing half a document.
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model=MODEL, messages=CHAT, max_tokens=3, response_format=Fortune)


# ---- regex and choice ---------------------------------------------------------------------

@pytest.mark.parametrize("pattern", REGEXES)
def test_guided_regex_outputs_match_whole(client, pattern):
    r = client.completions.create(model=MODEL, prompt=PROMPT, temperature=1.0, max_tokens=60, n=SAMPLES, seed=11,
                                  extra_body={"guided_regex": pattern})
    for c in r.choices:
        assert c.finish_reason == "stop", c.text
        assert re.fullmatch(pattern, c.text), c.text
    text, finish = stream_text(client, messages=CHAT, temperature=1.0, max_tokens=60,
                               extra_body={"structured_outputs": {"regex": pattern}})
    assert finish == "stop" and re.fullmatch(pattern, text), text


def test_guided_choice_outputs_are_one_of_the_choices(client):
    r = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=1.0, max_tokens=20, n=SAMPLES,
                                       seed=13, extra_body={"guided_choice": CHOICES})
    assert all(c.message.content in CHOICES and c.finish_reason == "stop" for c in r.choices), r.choices
    r = client.completions.create(model=MODEL, prompt=PROMPT, temperature=1.0, max_tokens=20, n=SAMPLES, seed=17,
                                  extra_body={"structured_outputs": {"choice": CHOICES}})
    assert all(c.text in CHOICES for c in r.choices), [c.text for c in r.choices]
    text, finish = stream_text(client, messages=CHAT, temperature=1.0, max_tokens=20,
                               extra_body={"guided_choice": CHOICES})
    assert text in CHOICES and finish == "stop"


def test_guided_grammar_output_is_a_sentence_of_it(client):
    grammar = 'root ::= "The " animal " says " sound "."\nanimal ::= "cat" | "dog"\nsound ::= "meow" | "woof"'
    r = client.completions.create(model=MODEL, prompt=PROMPT, temperature=1.0, max_tokens=30, n=4, seed=19,
                                  extra_body={"guided_grammar": grammar})
    for c in r.choices:
        assert re.fullmatch(r"The (cat|dog) says (meow|woof)\.", c.text), c.text


# ---- issue 22's leftovers: OpenAPI's nullable beside enum, big integers ----------------------

# OpenAPI's `nullable` beside `enum` (OpenAI's and vLLM's clients send it): null only where the
# enum lists it (OpenAPI 3.0.3: nullable adds null to the types, the enum still decides;
# llguidance and xgrammar ignore nullable). Integers beyond uint64 in an enum keep their digits
# (they were written as doubles, 1.2345678901234568e+29).
OPENAPI = {
    "type": "object",
    "properties": {
        "mood": {"type": "string", "enum": ["good", "bad"], "nullable": True},
        "maybe": {"type": "string", "enum": ["x", None], "nullable": True},
        "big": {"enum": [123456789012345678901234567890, -98765432109876543210987654321]},
    },
    "required": ["mood", "maybe", "big"],
    "additionalProperties": False,
}
# The same in JSON Schema, which has no nullable: null among the types.
OPENAPI_AS_JSON_SCHEMA = {**OPENAPI, "properties": {
    "mood": {"type": ["string", "null"], "enum": ["good", "bad"]},
    "maybe": {"type": ["string", "null"], "enum": ["x", None]},
    "big": OPENAPI["properties"]["big"]}}


def test_nullable_enum_and_big_integers_on_every_surface(client, server):
    outputs = []
    r = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=1.0, max_tokens=120, n=SAMPLES,
                                       seed=5, response_format=schema_format("openapi", OPENAPI))
    outputs += [c.message.content for c in r.choices if c.finish_reason == "stop"]
    r = client.completions.create(model=MODEL, prompt=PROMPT, temperature=1.0, max_tokens=120, n=4, seed=6,
                                  extra_body={"guided_json": OPENAPI})
    outputs += [c.text for c in r.choices if c.finish_reason == "stop"]
    sampling = {"guided_json": OPENAPI, "temperature": 1.0, "max_tokens": 120, "seed": 2}
    t = requests.post(f"http://{server.http_url}/v2/models/{MODEL}/generate",
                      json={"text_input": PROMPT, "sampling_parameters": json.dumps(sampling),
                            "exclude_input_in_output": True}, timeout=60)
    assert t.status_code == 200, t.text
    outputs.append(t.json()["text_output"])
    assert len(outputs) == SAMPLES + 5, outputs
    for text in outputs:
        doc = json.loads(text)  # Python reads the integers exactly
        jsonschema.validate(doc, OPENAPI_AS_JSON_SCHEMA)
        assert isinstance(doc["big"], int), text
    # Sampled, not forced: the listed null and both integers come out.
    assert {json.dumps(json.loads(t)["maybe"]) for t in outputs} == {'"x"', "null"}, outputs
    assert len({json.loads(t)["big"] for t in outputs}) == 2, outputs


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kw,named", [
    ({"response_format": schema_format("bad", {"type": "object", "properties": {"a": {"type": "integer", "not": {}}}})},
     "'not'"),
    ({"response_format": schema_format("bad", {"type": "strin"})}, "strin"),
    ({"extra_body": {"guided_json": "{not json"}}, "JSON"),
    ({"extra_body": {"guided_regex": "(a"}}, "regex"),
    ({"extra_body": {"guided_grammar": "root ::= missing"}}, "missing"),
    ({"extra_body": {"guided_choice": []}}, "guided_choice"),
    ({"extra_body": {"guided_regex": "a", "guided_choice": ["a"]}}, "guided_choice"),
    ({"extra_body": {"structured_outputs": {"regexp": "a"}}}, "regexp"),
], ids=["unsupported-keyword", "bad-type", "not-json", "regex", "grammar", "no-choices", "two", "unknown-key"])
def test_a_bad_constraint_is_400_naming_it_and_the_server_keeps_serving(client, kw, named, stream):
    assert_chat_refused(client, named, stream, model=MODEL, messages=CHAT, max_tokens=8, **kw)


def test_what_cannot_be_honoured_is_501(client):
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=8,
                                       response_format={"type": "structural_tag"})
    assert e.value.status_code == 501
    assert_still_serves(client)


# ---- Triton's generate endpoint -----------------------------------------------------------

def test_triton_generate_with_guided_choice(server):
    url = f"http://{server.http_url}/v2/models/{MODEL}/generate"
    seen = set()
    for seed in range(6):
        sampling = {"guided_choice": CHOICES, "temperature": 1.0, "max_tokens": 20, "seed": seed}
        r = requests.post(url, json={"text_input": PROMPT, "sampling_parameters": json.dumps(sampling),
                                     "exclude_input_in_output": True, "return_finish_reason": True}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["text_output"] in CHOICES, body
        assert body["finish_reason"] in ("stop", ["stop"]), body
        seen.add(body["text_output"])
    assert len(seen) > 1, seen
    bad = requests.post(url, json={"text_input": PROMPT, "sampling_parameters": json.dumps(
        {"guided_regex": "(a", "max_tokens": 4})}, timeout=60)
    assert bad.status_code == 400 and "regex" in bad.text, bad.text
    # guided_json in sampling_parameters, the schema as an object.
    sampling = {"guided_json": SCHEMAS["flat"], "temperature": 1.0, "max_tokens": 120, "seed": 1}
    r = requests.post(url, json={"text_input": PROMPT, "sampling_parameters": json.dumps(sampling),
                                 "exclude_input_in_output": True}, timeout=60)
    assert r.status_code == 200, r.text
    jsonschema.validate(json.loads(r.json()["text_output"]), SCHEMAS["flat"])


def test_triton_grpc_stream_with_guided_regex(server):
    pattern = r"\d{3}-\d{4}"
    got: queue.Queue = queue.Queue()
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        client.start_stream(callback=lambda result, error: got.put((result, error)))
        try:
            for seed in range(3):
                inputs = [grpcclient.InferInput("text_input", [1], "BYTES"),
                          grpcclient.InferInput("stream", [1], "BOOL"),
                          grpcclient.InferInput("sampling_parameters", [1], "BYTES")]
                sampling = {"guided_regex": pattern, "temperature": 1.0, "max_tokens": 30, "seed": seed}
                inputs[0].set_data_from_numpy(np.asarray([PROMPT.encode()], np.object_))
                inputs[1].set_data_from_numpy(np.asarray([True], bool))
                inputs[2].set_data_from_numpy(np.asarray([json.dumps(sampling).encode()], np.object_))
                client.async_stream_infer(MODEL, inputs, request_id=f"regex-{seed}")
                text = ""
                while True:
                    result, error = got.get(timeout=60)
                    assert error is None, error
                    out = result.as_numpy("text_output")
                    text += "".join(t.decode() for t in out) if out is not None else ""
                    if result.get_response().parameters["triton_final_response"].bool_param:
                        break
                assert re.fullmatch(pattern, text), text
        finally:
            client.stop_stream()
