"""A constraint the engine cannot compile is a 400 whose message names the problem (the schema keyword,
the pattern) and nothing internal: before issue 22's fix it began "request '17': ...", the stub's
handle of the request (STYLE.md 8). Checked on the raw HTTP bodies of both OpenAI endpoints,
streamed or not, and of Triton's generate endpoint.

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
