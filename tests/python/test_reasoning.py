"""Reasoning models (issue 22) through the OpenAI SDK: model.json's `reasoning_parser` splits a chat
output's <think>...</think> into message.reasoning (and reasoning_content, vLLM's older name) and the
rest into content, streamed (delta.reasoning) or not, as vLLM's OpenAI server does; Triton's
generate endpoint and OpenAI completions keep the raw text.

The test models are the demo model (examples/sluice-demo, 4 M parameters, no <think> token: every
tag is split across several tokens) served twice from a temporary repository:
  - `think`: Qwen3's chat template (tests/fixtures/chat_templates/qwen3.jinja), reasoning_parser
    qwen3 and structured_outputs_config.enable_in_reasoning, so that a guided regex forces the
    think format on a model that has never seen it: `<think>\\n...\\n</think>\\n\\n...`;
  - `r1`: DeepSeek-R1's way, its template opening `<think>\\n` itself, reasoning_parser deepseek_r1,
    structured output after the reasoning (vLLM's default). The demo never closes its think, so
    its whole output is reasoning and a response_format waits for a </think> that never comes.

Run: SLUICE_BINARY_DIR=build .venv/bin/python -m pytest -q tests/python/test_reasoning.py
"""

from __future__ import annotations

import json
import re

import openai
import pytest
import requests

from conftest import EXAMPLES, SOURCE_DIR, SluiceServer, assert_chat_refused, write_demo_model

CHAT = [{"role": "user", "content": "Tell me a fortune."}]
WORDS = r"[a-z]{1,10}( [a-z]{1,10}){0,3}"
THINK = rf"<think>\n{WORDS}\n</think>\n\n{WORDS}"  # the whole raw output of `think`


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("reasoning_repo")
    qwen3 = (SOURCE_DIR / "tests/fixtures/chat_templates/qwen3.jinja").read_text()
    chatml = json.loads((EXAMPLES / "sluice-demo/1/model/tokenizer_config.json").read_text())["chat_template"]
    r1 = chatml.replace("'<|im_start|>assistant\n'", "'<|im_start|>assistant\n<think>\n'")
    assert r1 != chatml
    write_demo_model(repo, "think", qwen3,
                     {"reasoning_parser": "qwen3", "structured_outputs_config": {"enable_in_reasoning": True}})
    write_demo_model(repo, "r1", r1, {"reasoning_parser": "deepseek_r1"})
    s = SluiceServer(["--model-repository", str(repo), "--model-control-mode", "explicit",
                      "--load-model", "think", "--load-model", "r1", "--cpu-threads", "2"])
    yield s
    s.stop()


def think(client: openai.OpenAI, seed: int, **kw):
    return client.chat.completions.create(model="think", messages=CHAT, temperature=1.0, max_tokens=80, seed=seed,
                                          extra_body={"guided_regex": THINK, **kw.pop("extra_body", {})}, **kw)


def streamed(client: openai.OpenAI, **kw) -> tuple[str, str, str | None, list]:
    """A chat stream read to its end: its reasoning, its content, its finish_reason, its deltas."""
    reasoning, content, finish, deltas = "", "", None, []
    for chunk in client.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            d = c.delta.model_dump()
            deltas.append(d)
            assert d.get("reasoning") == d.get("reasoning_content")
            reasoning += d.get("reasoning") or ""
            content += d.get("content") or ""
            if c.finish_reason is not None:
                assert finish is None
                finish = c.finish_reason
    return reasoning, content, finish, deltas


def test_the_think_section_is_the_reasoning_the_rest_the_content(client):
    for seed in range(4):
        c = think(client, seed).choices[0]
        assert c.finish_reason == "stop"
        m = c.message.model_dump()
        assert m["reasoning"] == m["reasoning_content"], m
        raw = f"<think>{m['reasoning']}</think>{m['content']}"
        assert re.fullmatch(THINK, raw), m
        assert m["reasoning"].startswith("\n") and m["content"].startswith("\n\n"), m


def test_the_stream_splits_as_the_whole_output(client):
    for seed in range(4):
        whole = think(client, seed).choices[0].message.model_dump()
        reasoning, content, finish, deltas = streamed(client, model="think", messages=CHAT, temperature=1.0,
                                                      max_tokens=80, seed=seed, extra_body={"guided_regex": THINK})
        assert finish == "stop"
        assert (reasoning, content) == (whole["reasoning"], whole["content"])
        # The tags came in pieces; none of their bytes reached a delta.
        assert len(deltas) > 8
        for d in deltas:
            for text in (d.get("reasoning") or "", d.get("content") or ""):
                assert "<" not in text and ">" not in text, deltas


def test_enable_thinking_false_reaches_the_template_and_leaves_only_content(client):
    on = think(client, 1)
    off = client.chat.completions.create(model="think", messages=CHAT, temperature=1.0, max_tokens=40, seed=1,
                                         extra_body={"guided_regex": WORDS,
                                                     "chat_template_kwargs": {"enable_thinking": False}})
    # Qwen3's template wrote its empty think block into the prompt.
    assert off.usage.prompt_tokens > on.usage.prompt_tokens
    m = off.choices[0].message.model_dump()
    assert re.fullmatch(WORDS, m["content"]), m
    assert m.get("reasoning") is None and m.get("reasoning_content") is None, m
    reasoning, content, finish, _ = streamed(client, model="think", messages=CHAT, temperature=1.0, max_tokens=40,
                                             seed=1, extra_body={"guided_regex": WORDS,
                                                                 "chat_template_kwargs": {"enable_thinking": False}})
    assert (reasoning, content, finish) == ("", m["content"], "stop")


def test_include_reasoning_false_leaves_the_reasoning_out(client):
    m = think(client, 2, extra_body={"include_reasoning": False}).choices[0].message.model_dump()
    assert m.get("reasoning") is None and re.fullmatch(r"\n\n" + WORDS, m["content"]), m


def test_r1_output_starts_inside_the_reasoning(client):
    c = client.chat.completions.create(model="r1", messages=CHAT, temperature=1.0, max_tokens=12, seed=3).choices[0]
    m = c.message.model_dump()
    assert c.finish_reason == "length"
    assert m["reasoning"] and m["content"] is None, m
    reasoning, content, finish, _ = streamed(client, model="r1", messages=CHAT, temperature=1.0, max_tokens=12, seed=3)
    assert (reasoning, content, finish) == (m["reasoning"], "", "length")


def test_r1_structured_output_waits_for_the_end_of_the_reasoning(client, server):
    # The grammar would make the first byte '{'; the reasoning is free text, the answer never came.
    c = client.chat.completions.create(model="r1", messages=CHAT, temperature=1.0, max_tokens=16, seed=5,
                                       response_format={"type": "json_object"}).choices[0]
    m = c.message.model_dump()
    assert c.finish_reason == "length" and m["content"] is None, m
    assert not m["reasoning"].lstrip().startswith("{"), m
    # As vLLM's engine, for every request to the model: completions and Triton's generate too
    # (their text is not split).
    r = client.completions.create(model="r1", prompt="Once upon a time", temperature=1.0, max_tokens=16, seed=5,
                                  extra_body={"guided_regex": "[0-9]+"})
    assert r.choices[0].finish_reason == "length" and not r.choices[0].text.isdigit(), r.choices[0].text
    sampling = {"guided_regex": "[0-9]+", "temperature": 1.0, "max_tokens": 16, "seed": 5}
    g = requests.post(f"http://{server.http_url}/v2/models/r1/generate", timeout=60,
                      json={"text_input": "Once upon a time", "sampling_parameters": json.dumps(sampling),
                            "exclude_input_in_output": True})
    assert g.status_code == 200 and not g.json()["text_output"].isdigit(), g.text
    # A prompt that closed the reasoning: the grammar holds from the first token.
    r = client.completions.create(model="r1", prompt="<think>\nDone.\n</think>\n\n", temperature=1.0,
                                  max_tokens=16, seed=5, extra_body={"guided_regex": "[0-9]{1,4}"})
    assert re.fullmatch("[0-9]{1,4}", r.choices[0].text), r.choices[0].text


def test_completions_and_triton_generate_keep_the_raw_text(client, server):
    r = client.completions.create(model="think", prompt="Once upon a time", temperature=1.0, max_tokens=80, seed=1,
                                  extra_body={"guided_regex": THINK})
    assert re.fullmatch(THINK, r.choices[0].text), r.choices[0].text
    sampling = {"guided_regex": THINK, "temperature": 1.0, "max_tokens": 80, "seed": 1}
    g = requests.post(f"http://{server.http_url}/v2/models/think/generate", timeout=60,
                      json={"text_input": "Once upon a time", "sampling_parameters": json.dumps(sampling),
                            "exclude_input_in_output": True})
    assert g.status_code == 200, g.text
    assert re.fullmatch(THINK, g.json()["text_output"]), g.json()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kwargs,named", [
    ("enable_thinking", "'chat_template_kwargs' must be an object"),
    ({"messages": []}, "'chat_template_kwargs' must not set 'messages'"),
    ({"add_generation_prompt": False}, "must not set 'add_generation_prompt'"),
])
def test_bad_chat_template_kwargs_are_400s_naming_them(client, kwargs, named, stream):
    assert_chat_refused(client, named, stream, model="think", messages=CHAT, max_tokens=4,
                        extra_body={"chat_template_kwargs": kwargs})


# ---- reasoning, then a tool call: the reasoning parser first, the tool parser on what it leaves ----

WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
CALL = r'<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "[a-z]{1,10}"\}\}\n</tool_call>'
THINK_THEN_CALL = rf"<think>\n{WORDS}\n</think>\n\n{CALL}"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_reasoning_then_a_tool_call(client, stream):
    """Qwen3's template with tools: its <tool_call> makes the Hermes parser the model's; the think
    section goes to the reasoning, the call after it to tool_calls, nothing of either to content."""
    for seed in range(3):
        kw = dict(model="think", messages=CHAT, tools=WEATHER, temperature=1.0, max_tokens=120, seed=seed,
                  extra_body={"guided_regex": THINK_THEN_CALL})
        if not stream:
            c = client.chat.completions.create(**kw).choices[0]
            m = c.message.model_dump()
            reasoning, content, finish = m["reasoning"], m["content"], c.finish_reason
            calls = [(t["function"]["name"], t["function"]["arguments"]) for t in m["tool_calls"] or []]
        else:
            reasoning, content, finish, calls = "", "", None, []
            for chunk in client.chat.completions.create(stream=True, **kw):
                for ch in chunk.choices:
                    d = ch.delta.model_dump()
                    reasoning += d.get("reasoning") or ""
                    content += d.get("content") or ""
                    for piece in d.get("tool_calls") or []:
                        if piece["index"] == len(calls):
                            calls.append((piece["function"]["name"], ""))
                        else:
                            calls[-1] = (calls[-1][0], calls[-1][1] + piece["function"]["arguments"])
                    if ch.finish_reason is not None:
                        finish = ch.finish_reason
        assert finish == "tool_calls", (reasoning, content, calls)
        assert re.fullmatch(rf"\n{WORDS}\n", reasoning), reasoning
        assert "<" not in (content or "") and (content or "").strip() == "", content
        assert len(calls) == 1 and calls[0][0] == "get_weather", calls
        assert re.fullmatch(r"[a-z]{1,10}", json.loads(calls[0][1])["city"]), calls
