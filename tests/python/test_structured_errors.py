"""A constraint the engine cannot compile is a 400 whose message names the problem (the schema keyword,
the pattern) and nothing internal: before issue 22's fix it began "request '17': ...", the stub's
handle of the request (STYLE.md 8). Checked on the raw HTTP bodies of both OpenAI endpoints,
streamed or not, and of Triton's generate endpoint. A number no double holds (1e400) is a 400 naming
where it is and what it is, wherever the schema travels, and the server serves on.

Run: SLUICE_BINARY_DIR=build .venv/bin/python -m pytest -q tests/python/test_structured_errors.py
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import post_json

MODEL = "sluice-demo"
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer", "not": {"const": 3}}}}
MESSAGE = "structured output (json_schema): JSON schema at #/properties/a: keyword 'not' is not supported"


def assert_clean(message: str) -> None:
    assert "request '" not in message and not re.search(r"\b\d{2,}\b", message), message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
def test_an_uncompilable_schema_is_a_400_naming_the_keyword(server, chat, stream):
    body = {"model": MODEL, "max_tokens": 8, "stream": stream,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}}
    if chat:
        body["messages"] = [{"role": "user", "content": "hi"}]
    else:
        body["prompt"] = "Once"
    status, reply = post_json(server, f"/v1/{'chat/completions' if chat else 'completions'}", body)
    assert status == 400, reply
    error = reply["error"]
    assert error["message"] == MESSAGE, error
    assert error["type"] == "invalid_request_error" and error["code"] == 400, error
    assert error["param"] is None, error  # a schema is no single field
    assert_clean(error["message"])


def test_an_uncompilable_pattern_on_triton_generate_names_it(server):
    sampling = {"guided_regex": "(a", "max_tokens": 4}
    status, reply = post_json(server, f"/v2/models/{MODEL}/generate",
                              {"text_input": "Once", "sampling_parameters": json.dumps(sampling)})
    assert status == 400, reply
    message = reply["error"]
    assert message.startswith("structured output (regex): "), message
    assert_clean(message)


BEYOND = " is beyond the range of a double (magnitude up to 1.8e308)"


def assert_serving(server):
    status, reply = post_json(server, "/v1/completions", {"model": MODEL, "prompt": "Once", "max_tokens": 2})
    assert status == 200, reply


@pytest.mark.parametrize("stream", ["false", "true"], ids=["plain", "stream"])
@pytest.mark.parametrize("keyword,literal", [("const", "1e400"), ("minimum", "-1e400"), ("maxLength", "1E+999"),
                                             ("enum", "[1, 1%s]" % ("0" * 400))])
def test_a_number_beyond_a_double_in_a_schema_is_a_400_naming_it(server, stream, keyword, literal):
    """The body as a client writes it (Python's json would write Infinity): nlohmann refused it as
    "malformed JSON: ... number overflow parsing '1e400'", naming neither the keyword nor the field."""
    body = ('{"model": "%s", "max_tokens": 4, "stream": %s, "messages": [{"role": "user", "content": "hi"}], '
            '"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"%s": %s}}}}'
            % (MODEL, stream, keyword, literal))
    status, reply = post_json(server, "/v1/chat/completions", body)
    assert status == 400, reply
    at = f"/response_format/json_schema/schema/{keyword}"
    number = literal
    if keyword == "enum":
        at, number = at + "/1", "1" + "0" * 23 + "... (401 characters)"
    assert reply["error"]["message"] == f"number {number} at '{at}'{BEYOND}", reply
    assert reply["error"]["type"] == "invalid_request_error" and reply["error"]["code"] == 400, reply
    assert_serving(server)


def test_a_number_beyond_a_double_in_a_schema_string_names_it(server):
    """guided_json as a JSON text: the engine's compiler reads it and says where the number is."""
    body = {"model": MODEL, "prompt": "Once", "max_tokens": 4,
            "guided_json": '{"type": "object", "properties": {"n": {"const": -1e400}}}'}
    status, reply = post_json(server, "/v1/completions", body)
    assert status == 400, reply
    assert reply["error"]["message"] == (
        "structured output (json_schema): JSON schema: number -1e400 at '/properties/n/const'" + BEYOND), reply
    assert_serving(server)


def test_a_number_beyond_a_double_on_triton_generate_names_it(server):
    sampling = '{"max_tokens": 4, "guided_json": {"enum": [1, 1e400]}}'
    status, reply = post_json(server, f"/v2/models/{MODEL}/generate",
                              {"text_input": "Once", "sampling_parameters": sampling})
    assert status == 400, reply
    assert reply["error"] == f"sampling_parameters: number 1e400 at '/guided_json/enum/1'{BEYOND}", reply
    assert_serving(server)
