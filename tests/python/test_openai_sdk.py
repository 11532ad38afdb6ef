"""The official OpenAI Python SDK (`openai`, tests/requirements.txt) against the real server
serving the demo LLM `sluice-demo`: every request goes through the SDK's own request building,
SSE parsing, response models and error mapping, as a user's client would.

Greedy references are tests/fixtures/demo_greedy.json (transformers' continuation of the demo
model); token ids are cross-checked with Hugging Face's `tokenizers` on the model's
tokenizer.json. What Sluice refuses (501) or rejects (400, 404) must surface as the SDK's
exception types, and the server must keep serving afterwards.

Run: SLUICE_BINARY_DIR=build .venv/bin/python -m pytest -q tests/python/test_openai_sdk.py
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from tokenizers import Tokenizer

from conftest import EXAMPLES, SOURCE_DIR, post_json

MODEL = "sluice-demo"
PROMPT = "Once upon a time"  # the fixture's prompt
OTHER_PROMPT = "Life is"
EOS_PROMPT = "The secret of life is"  # greedy: EOS after 14 tokens
CHAT = [{"role": "user", "content": "Tell me a fortune."}]  # the fixture's chat


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads((SOURCE_DIR / "tests" / "fixtures" / "demo_greedy.json").read_text())


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(EXAMPLES / "sluice-demo" / "1" / "model" / "tokenizer.json"))


def greedy(client: openai.OpenAI, prompt, max_tokens: int = 16, **kw) -> openai.types.Completion:
    return client.completions.create(model=MODEL, prompt=prompt, max_tokens=max_tokens, temperature=0, **kw)


def chat_greedy(client: openai.OpenAI, max_tokens: int = 16, **kw) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=max_tokens, temperature=0, **kw)


def assert_usage_consistent(usage) -> None:
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def assert_still_serves(client: openai.OpenAI, fx: dict) -> None:
    """After an error, the next request is served normally."""
    r = greedy(client, PROMPT, max_tokens=4)
    assert fx["output_text"].startswith(r.choices[0].text) and r.choices[0].text
    assert r.usage.completion_tokens == 4


class Collected:
    """A stream read to its end: per choice index, the text, finish reasons and chunks seen."""

    def __init__(self, chunks: list, chat: bool):
        self.chunks = chunks
        self.text: dict[int, str] = {}
        self.finish: dict[int, list[str]] = {}
        self.roles: dict[int, list[str]] = {}
        self.usage_chunks = [c for c in chunks if c.usage is not None]
        for chunk in chunks:
            for c in chunk.choices:
                piece = (c.delta.content or "") if chat else c.text
                self.text[c.index] = self.text.get(c.index, "") + piece
                if c.finish_reason is not None:
                    self.finish.setdefault(c.index, []).append(c.finish_reason)
                if chat and c.delta.role is not None:
                    self.roles.setdefault(c.index, []).append(c.delta.role)

    @property
    def usage(self):
        assert len(self.usage_chunks) == 1, "exactly one usage chunk"
        return self.usage_chunks[0].usage

    def assert_well_formed(self, n: int, obj: str, id_prefix: str) -> None:
        assert self.chunks, "the stream had chunks"
        assert len({c.id for c in self.chunks}) == 1 and self.chunks[0].id.startswith(id_prefix)
        assert all(c.object == obj and c.model == MODEL for c in self.chunks)
        assert sorted(self.text) == list(range(n)), "every choice index streamed"
        for i in range(n):
            assert len(self.finish.get(i, [])) == 1, f"choice {i}: exactly one finish_reason"
        finished: set[int] = set()
        for chunk in self.chunks:
            for c in chunk.choices:
                assert c.index not in finished, f"choice {c.index}: a chunk after its finish_reason"
                if c.finish_reason is not None:
                    finished.add(c.index)


def stream(client: openai.OpenAI, chat: bool, **kw) -> Collected:
    create = client.chat.completions.create if chat else client.completions.create
    return Collected(list(create(model=MODEL, stream=True, **kw)), chat)


def completion_logprobs(r: Collected | openai.types.Completion) -> tuple[str, list[str], list[int]]:
    """The text, tokens and text offsets of choice 0, concatenated over a stream's chunks."""
    if isinstance(r, openai.types.Completion):
        c = r.choices[0]
        return c.text, c.logprobs.tokens, c.logprobs.text_offset
    tokens, offsets = [], []
    for chunk in r.chunks:
        for c in chunk.choices:
            if c.logprobs is not None:
                tokens += c.logprobs.tokens
                offsets += c.logprobs.text_offset
    return r.text[0], tokens, offsets


# ---- models ----------------------------------------------------------------------------------

def test_models_list_names_the_llm_and_only_llms(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert MODEL in ids
    assert "identity" not in ids and "repeat" not in ids, "non-LLM models are not OpenAI models"
    assert len(ids) == len(set(ids))
    assert all(m.object == "model" for m in models.data)


def test_models_retrieve_returns_the_model_card(client):
    # Issue 20: GET /v1/models/{id} was a 404 in Triton's error shape.
    m = client.models.retrieve(MODEL)
    assert m.id == MODEL and m.object == "model" and isinstance(m.created, int) and m.owned_by
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("no-such-model")
    assert e.value.status_code == 404 and "no-such-model" in e.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("identity")  # not a language model


def test_unknown_v1_path_is_an_openai_error(client):
    # The SDK parses OpenAI's {"error": {"message", ...}}; an unknown route answers in it too.
    with pytest.raises(openai.NotFoundError) as e:
        client.get("/no/such/route", cast_to=object)
    assert e.value.status_code == 404 and "/v1/no/such/route" in e.value.message
    assert isinstance(e.value.body, dict) and e.value.body.get("type")


# ---- vLLM's /tokenize and /detokenize against Hugging Face's tokenizer ------------------------

@pytest.mark.parametrize("text", [PROMPT, "Héllo, wörld! 你好 🙂\n\tTabs   and  spaces", "<|im_start|>user\nhi<|im_end|>"])
@pytest.mark.parametrize("add_special_tokens", [True, False])
def test_tokenize_equals_hugging_face(server, tokenizer, text, add_special_tokens):
    status, r = post_json(server, "/tokenize", {"model": MODEL, "prompt": text,
                                                "add_special_tokens": add_special_tokens})
    assert status == 200, r
    want = tokenizer.encode(text, add_special_tokens=add_special_tokens).ids
    assert r["tokens"] == want and r["count"] == len(want) and r["max_model_len"] == 512
    status, back = post_json(server, "/detokenize", {"model": MODEL, "tokens": r["tokens"]})
    assert status == 200, back
    assert back["prompt"] == tokenizer.decode(want, skip_special_tokens=False)


def test_tokenize_chat_equals_transformers_template(server, fx):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(EXAMPLES / "sluice-demo" / "1" / "model"))
    for generation_prompt in (True, False):
        status, r = post_json(server, "/tokenize", {"model": MODEL, "messages": fx["chat"]["messages"],
                                                    "add_generation_prompt": generation_prompt})
        assert status == 200, r
        want = hf.apply_chat_template(fx["chat"]["messages"], tokenize=True,
                                      add_generation_prompt=generation_prompt)
        if not isinstance(want, list):  # newer transformers return a BatchEncoding
            want = want["input_ids"]
        assert r["tokens"] == want
        if generation_prompt:
            assert r["tokens"] == fx["chat"]["prompt_ids"]


# ---- greedy text: the transformers reference, streamed == non-streamed -----------------------

def test_greedy_completion_equals_transformers(client, fx):
    r = greedy(client, PROMPT, max_tokens=fx["max_new_tokens"])
    assert r.object == "text_completion" and r.model == MODEL and r.id.startswith("cmpl")
    assert [c.index for c in r.choices] == [0]
    assert r.choices[0].text == fx["output_text"]
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == len(fx["prompt_ids"])
    assert r.usage.completion_tokens == len(fx["output_ids"])
    assert_usage_consistent(r.usage)


def test_streamed_greedy_completion_equals_non_streamed(client, fx):
    s = stream(client, chat=False, prompt=PROMPT, max_tokens=fx["max_new_tokens"], temperature=0)
    s.assert_well_formed(1, "text_completion", "cmpl")
    assert s.text[0] == greedy(client, PROMPT, max_tokens=fx["max_new_tokens"]).choices[0].text
    assert s.text[0] == fx["output_text"]
    assert s.finish[0] == ["length"]
    assert not s.usage_chunks, "no usage chunk unless stream_options.include_usage"


def test_greedy_chat_equals_transformers(client, fx):
    r = chat_greedy(client, max_tokens=len(fx["chat"]["output_ids"]))
    assert r.object == "chat.completion" and r.model == MODEL and r.id.startswith("chatcmpl")
    assert [c.index for c in r.choices] == [0]
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == fx["chat"]["output_text"]
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == len(fx["chat"]["prompt_ids"])
    assert r.usage.completion_tokens == len(fx["chat"]["output_ids"])
    assert_usage_consistent(r.usage)


def test_streamed_greedy_chat_equals_non_streamed(client, fx):
    n = len(fx["chat"]["output_ids"])
    s = stream(client, chat=True, messages=CHAT, max_tokens=n, temperature=0)
    s.assert_well_formed(1, "chat.completion.chunk", "chatcmpl")
    assert s.roles[0] == ["assistant"], "the role comes once, first"
    assert s.chunks[0].choices[0].delta.role == "assistant"
    assert s.text[0] == chat_greedy(client, max_tokens=n).choices[0].message.content
    assert s.text[0] == fx["chat"]["output_text"]
    assert s.finish[0] == ["length"]


def test_chat_stream_helper_accumulates_the_non_streamed_reply(client, fx):
    # The SDK's own accumulator (client.chat.completions.stream) checks the chunks' shape. It
    # refuses a reply cut by max_tokens (LengthFinishReasonError), so a stop string ends this one.
    text = fx["chat"]["output_text"]
    with client.chat.completions.stream(model=MODEL, messages=CHAT, max_tokens=32, temperature=0,
                                        stop="matter") as s:
        deltas = "".join(e.delta for e in s if e.type == "content.delta")
        final = s.get_final_completion()
    assert deltas == text[:text.find("matter")]
    assert final.choices[0].message.content == deltas
    assert final.choices[0].finish_reason == "stop"


def test_chat_max_completion_tokens_caps_the_reply(client):
    r = client.chat.completions.create(model=MODEL, messages=CHAT, max_completion_tokens=5, temperature=0)
    assert r.usage.completion_tokens == 5
    assert r.choices[0].finish_reason == "length"
    assert chat_greedy(client, max_tokens=12).choices[0].message.content.startswith(r.choices[0].message.content)


# ---- stream_options.include_usage ------------------------------------------------------------

@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_include_usage_sends_one_final_usage_chunk_matching_non_streamed(client, chat):
    kw = {"messages": CHAT} if chat else {"prompt": PROMPT}
    s = stream(client, chat, max_tokens=12, temperature=0, stream_options={"include_usage": True}, **kw)
    s.assert_well_formed(1, "chat.completion.chunk" if chat else "text_completion",
                         "chatcmpl" if chat else "cmpl")
    last = s.chunks[-1]
    assert last.usage is not None and last.choices == [], "the usage chunk is last, with no choices"
    assert all(c.usage is None for c in s.chunks[:-1])
    assert_usage_consistent(s.usage)
    assert s.usage.completion_tokens == 12  # finish_reason 'length' at max_tokens
    assert s.finish[0] == ["length"]
    full = (client.chat.completions.create(model=MODEL, max_tokens=12, temperature=0, **kw) if chat
            else client.completions.create(model=MODEL, max_tokens=12, temperature=0, **kw))
    assert s.usage.model_dump() == full.usage.model_dump()


# ---- n ---------------------------------------------------------------------------------------

def test_chat_n_two_seeded_choices_differ_and_reproduce(client, fx):
    def ask():
        return client.chat.completions.create(model=MODEL, messages=CHAT, n=2, max_tokens=24, temperature=0.8,
                                              seed=7, logprobs=True)
    r = ask()
    assert [c.index for c in r.choices] == [0, 1]
    for c in r.choices:
        assert c.message.role == "assistant" and c.message.content
        assert c.finish_reason in ("stop", "length")
    texts = [c.message.content for c in r.choices]
    assert texts[0] != texts[1], "a seeded request samples its choices with different seeds"
    assert [c.message.content for c in ask().choices] == texts, "and reproduces them"
    assert r.usage.prompt_tokens == len(fx["chat"]["prompt_ids"]), "the prompt counts once for n choices"
    assert r.usage.completion_tokens == sum(len(c.logprobs.content) for c in r.choices)
    assert_usage_consistent(r.usage)


def test_completions_n_two_of_two_prompts_orders_choices_by_prompt(client):
    a, b = greedy(client, PROMPT, max_tokens=8), greedy(client, OTHER_PROMPT, max_tokens=8)
    r = greedy(client, [PROMPT, OTHER_PROMPT], max_tokens=8, n=2)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert [c.text for c in r.choices] == [a.choices[0].text] * 2 + [b.choices[0].text] * 2
    assert a.choices[0].text != b.choices[0].text
    assert r.usage.prompt_tokens == a.usage.prompt_tokens + b.usage.prompt_tokens
    assert r.usage.completion_tokens == 2 * (a.usage.completion_tokens + b.usage.completion_tokens)


def test_streamed_chat_n_two_streams_both_choices(client):
    s = stream(client, chat=True, messages=CHAT, n=2, max_tokens=8, temperature=0,
               stream_options={"include_usage": True})
    s.assert_well_formed(2, "chat.completion.chunk", "chatcmpl")
    expected = chat_greedy(client, max_tokens=8).choices[0].message.content
    assert s.text == {0: expected, 1: expected}
    assert s.roles == {0: ["assistant"], 1: ["assistant"]}
    assert s.usage.completion_tokens == 16


# ---- logprobs --------------------------------------------------------------------------------

def test_completion_logprobs_object(client):
    r = greedy(client, PROMPT, max_tokens=12, logprobs=2)
    c = r.choices[0]
    lp = c.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset)
    assert len(lp.tokens) == r.usage.completion_tokens == 12
    assert "".join(lp.tokens) == c.text
    offset = 0
    for token, logprob, top, off in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, lp.text_offset):
        assert off == offset
        offset += len(token)
        assert logprob <= 0
        assert 1 <= len(top) <= 2 and all(v <= 0 for v in top.values())
        # Greedy: the chosen token is the most likely one.
        assert top[token] == pytest.approx(logprob) and logprob == pytest.approx(max(top.values()))


def test_streamed_completion_logprobs_equal_non_streamed(client):
    full = greedy(client, PROMPT, max_tokens=12, logprobs=2).choices[0].logprobs
    s = stream(client, chat=False, prompt=PROMPT, max_tokens=12, temperature=0, logprobs=2)
    tokens, logprobs, tops, offsets = [], [], [], []
    for chunk in s.chunks:
        for c in chunk.choices:
            if c.logprobs is not None:
                tokens += c.logprobs.tokens
                logprobs += c.logprobs.token_logprobs
                tops += c.logprobs.top_logprobs
                offsets += c.logprobs.text_offset
    assert tokens == full.tokens
    assert logprobs == pytest.approx(full.token_logprobs)
    assert offsets == full.text_offset
    assert [sorted(t) for t in tops] == [sorted(t) for t in full.top_logprobs]


ECHO_CASES = {
    "ascii": (PROMPT, {}),
    "non-ascii-prompt": ("Caf\u00e9 na\u00efve \u20ac", {}),
    "non-ascii-output": (PROMPT, {"logit_bias": {"130": 100}}),  # byte 0xC3 alone: U+FFFD each
}


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("case", list(ECHO_CASES))
def test_echo_logprobs_text_offsets_index_the_returned_text(client, case, streamed):
    # text_offset is where each token starts in the text the client gets (the echoed prompt
    # first), in characters as the client's string counts them, streamed or not.
    prompt, extra = ECHO_CASES[case]
    kw = dict(prompt=prompt, max_tokens=4, temperature=0, logprobs=1, echo=True, **extra)
    if streamed:
        r = stream(client, chat=False, **kw)
        r.assert_well_formed(1, "text_completion", "cmpl")
    else:
        r = client.completions.create(model=MODEL, **kw)
    text, tokens, offsets = completion_logprobs(r)
    assert text.startswith(prompt) and len(tokens) == 4
    assert "".join(tokens) == text[len(prompt):]
    assert offsets[0] == len(prompt)
    for token, offset in zip(tokens, offsets):
        assert text[offset:offset + len(token)] == token


def test_chat_logprobs_with_top_logprobs(client):
    r = chat_greedy(client, max_tokens=12, logprobs=True, top_logprobs=2)
    c = r.choices[0]
    content = c.logprobs.content
    assert len(content) == r.usage.completion_tokens == 12
    assert "".join(t.token for t in content) == c.message.content
    for t in content:
        assert t.logprob <= 0
        assert t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 2
        assert t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob
        # Greedy: the chosen token is the first of the top ones.
        assert t.top_logprobs[0].token == t.token and t.top_logprobs[0].logprob == pytest.approx(t.logprob)


def test_streamed_chat_logprobs_equal_non_streamed(client):
    full = chat_greedy(client, max_tokens=8, logprobs=True, top_logprobs=2).choices[0].logprobs.content
    s = stream(client, chat=True, messages=CHAT, max_tokens=8, temperature=0, logprobs=True, top_logprobs=2)
    streamed = [t for chunk in s.chunks for c in chunk.choices if c.logprobs is not None
                for t in c.logprobs.content]
    assert [t.model_dump() for t in streamed] == [t.model_dump() for t in full]
    assert "".join(t.token for t in streamed) == s.text[0]


def test_chat_logprobs_without_top_logprobs_has_no_alternatives(client):
    r = chat_greedy(client, max_tokens=4, logprobs=True)
    content = r.choices[0].logprobs.content
    assert len(content) == 4 and all(t.top_logprobs == [] for t in content)
    assert chat_greedy(client, max_tokens=4).choices[0].logprobs is None, "none unless asked"


def test_chat_top_logprobs_without_logprobs_is_refused(client, fx):
    with pytest.raises(openai.BadRequestError) as e:
        chat_greedy(client, max_tokens=4, top_logprobs=2)
    assert e.value.status_code == 400 and "top_logprobs" in e.value.message
    assert_still_serves(client, fx)


# ---- stop strings ----------------------------------------------------------------------------

@pytest.mark.parametrize("stop,cut_at", [
    ("mathematician", "mathematician"),  # spans two tokens: ' mathemat' + 'ician'
    ("athem", "athem"),                  # inside one token
    (["no such words", "training"], "training"),  # a list: the one that occurs
], ids=["two-tokens", "inside-a-token", "list"])
def test_stop_string_cuts_the_text_never_half_emitted(client, fx, stop, cut_at):
    expected = fx["output_text"][:fx["output_text"].index(cut_at)]
    r = greedy(client, PROMPT, max_tokens=32, stop=stop)
    assert r.choices[0].text == expected
    assert r.choices[0].finish_reason == "stop"
    s = stream(client, chat=False, prompt=PROMPT, max_tokens=32, temperature=0, stop=stop)
    s.assert_well_formed(1, "text_completion", "cmpl")
    assert s.text[0] == expected, "the stream never emits the start of a stop string"
    assert s.finish[0] == ["stop"]


def test_stop_string_in_chat(client, fx):
    text = fx["chat"]["output_text"]
    r = chat_greedy(client, max_tokens=32, stop="matter")
    assert r.choices[0].message.content == text[:text.find("matter")]
    assert r.choices[0].finish_reason == "stop"


def test_include_stop_str_in_output_keeps_the_stop_string(client, fx):
    text = fx["output_text"]
    r = greedy(client, PROMPT, max_tokens=32, stop="mathematician",
               extra_body={"include_stop_str_in_output": True})
    assert r.choices[0].text == text[:text.find("mathematician") + len("mathematician")]
    assert r.choices[0].finish_reason == "stop"


# ---- seed ------------------------------------------------------------------------------------

def test_same_seed_reproduces_the_model_cards_sample(client, fx):
    sample = next(s for s in fx["openai_seeded_samples"]["completions"] if s["prompt"] == PROMPT)
    texts = [client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=sample["max_tokens"],
                                       temperature=sample["temperature"], seed=sample["seed"]).choices[0].text
             for _ in range(2)]
    assert texts == [sample["text"]] * 2
    assert sample["text"] != fx["output_text"][:len(sample["text"])], "sampled, not greedy"


def test_different_seeds_sample_differently(client):
    def sample(seed):
        return client.completions.create(model=MODEL, prompt=OTHER_PROMPT, max_tokens=12, temperature=1.0,
                                         seed=seed).choices[0].text
    base = sample(0)
    others = [sample(seed) for seed in (1, 2, 3, 4)]
    assert any(t != base for t in others), f"seeds 0-4 all gave {base!r}"


# ---- batches and token-id prompts ------------------------------------------------------------

def test_batch_of_prompts_gives_each_its_greedy_text(client, fx):
    other = greedy(client, OTHER_PROMPT, max_tokens=32).choices[0].text
    r = greedy(client, [PROMPT, OTHER_PROMPT, PROMPT], max_tokens=32)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert [c.text for c in r.choices] == [fx["output_text"], other, fx["output_text"]]


def test_token_id_prompt_equals_the_text_prompt(client, fx, tokenizer):
    assert tokenizer.encode(PROMPT).ids == fx["prompt_ids"]
    r = greedy(client, fx["prompt_ids"], max_tokens=32)
    assert r.choices[0].text == fx["output_text"]
    assert r.usage.prompt_tokens == len(fx["prompt_ids"])


def test_batch_of_token_id_prompts_equals_the_text_prompts(client, tokenizer):
    ids = [tokenizer.encode(PROMPT).ids, tokenizer.encode(OTHER_PROMPT).ids]
    by_ids = greedy(client, ids, max_tokens=16)
    by_text = greedy(client, [PROMPT, OTHER_PROMPT], max_tokens=16)
    assert [c.index for c in by_ids.choices] == [0, 1]
    assert [c.text for c in by_ids.choices] == [c.text for c in by_text.choices]
    assert by_ids.usage.model_dump() == by_text.usage.model_dump()


# ---- logit_bias ------------------------------------------------------------------------------

def test_logit_bias_plus_100_forces_a_token(client, tokenizer):
    forced = tokenizer.decode([300])
    r = greedy(client, PROMPT, max_tokens=3, logit_bias={"300": 100}, logprobs=0)
    assert r.choices[0].logprobs.tokens == [forced] * 3
    assert r.choices[0].text == forced * 3


def test_logit_bias_minus_100_bans_the_greedy_token(client, fx, tokenizer):
    first = fx["output_ids"][0]
    r = greedy(client, PROMPT, max_tokens=1, logit_bias={str(first): -100}, logprobs=0)
    assert r.choices[0].logprobs.tokens != [tokenizer.decode([first])]
    assert not r.choices[0].text.startswith(tokenizer.decode([first]))


def test_chat_logit_bias_forces_a_token(client, tokenizer):
    r = chat_greedy(client, max_tokens=3, logit_bias={"300": 100})
    assert r.choices[0].message.content == tokenizer.decode([300]) * 3


# ---- vLLM's extensions, through extra_body ---------------------------------------------------

def test_top_k_one_samples_greedily(client):
    r = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=16, temperature=1.0, seed=3,
                                  extra_body={"top_k": 1})
    assert r.choices[0].text == greedy(client, PROMPT, max_tokens=16).choices[0].text


def test_stop_token_ids_end_the_text_before_the_token(client, fx):
    at = 13  # ' group': its first occurrence in the greedy output
    stop_id = fx["output_ids"][at]
    assert fx["output_ids"].index(stop_id) == at
    prefix = greedy(client, PROMPT, max_tokens=at).choices[0].text
    r = greedy(client, PROMPT, max_tokens=32, extra_body={"stop_token_ids": [stop_id]})
    assert r.choices[0].text == prefix
    assert r.choices[0].finish_reason == "stop"


def test_ignore_eos_with_min_tokens_fills_max_tokens(client):
    natural = greedy(client, EOS_PROMPT, max_tokens=40)
    assert natural.choices[0].finish_reason == "stop" and natural.usage.completion_tokens < 20, \
        "the prompt ends at EOS early"
    held = greedy(client, EOS_PROMPT, max_tokens=40, extra_body={"min_tokens": 24})
    assert held.usage.completion_tokens >= 24, "min_tokens holds EOS back"
    r = greedy(client, EOS_PROMPT, max_tokens=24, extra_body={"ignore_eos": True, "min_tokens": 24})
    assert r.usage.completion_tokens == 24 and r.choices[0].finish_reason == "length"
    assert r.choices[0].text.startswith(natural.choices[0].text)


# ---- errors: the SDK's exception types, and the server serves on -----------------------------

@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_unknown_model_is_not_found(client, fx, chat, streamed):
    with pytest.raises(openai.NotFoundError) as e:
        if chat:
            client.chat.completions.create(model="no-such-model", messages=CHAT, stream=streamed)
        else:
            client.completions.create(model="no-such-model", prompt="x", stream=streamed)
    assert e.value.status_code == 404 and "no-such-model" in e.value.message
    assert_still_serves(client, fx)


def test_non_llm_model_is_not_found(client, fx):
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="identity", prompt="x")
    assert_still_serves(client, fx)


BAD_VALUES = [
    ("completions", "temperature", {"temperature": 3.0}),
    ("completions", "top_p", {"top_p": 0}),
    ("completions", "n", {"n": 0}),
    ("completions", "max_tokens", {"max_tokens": 0}),
    ("completions", "logprobs", {"logprobs": 21}),
    ("completions", "logit_bias", {"logit_bias": {"not-a-token": 1}}),
    ("completions", "logit_bias", {"logit_bias": {"300": 101}}),
    ("completions", "stop", {"stop": ["a", "b", "c", "d", "e"]}),
    ("completions", "prompt", {"prompt": []}),
    ("completions", "top_k", {"extra_body": {"top_k": -2}}),
    ("completions", "min_tokens", {"max_tokens": 4, "extra_body": {"min_tokens": 8}}),
    ("chat", "messages", {"messages": []}),
    ("chat", "frequency_penalty", {"frequency_penalty": 2.5}),
    ("chat", "top_logprobs", {"logprobs": True, "top_logprobs": 21}),
    ("chat", "stream_options", {"stream_options": {"include_usage": True}}),  # without stream
]


@pytest.mark.parametrize("api,field,kw", BAD_VALUES, ids=[f"{a}-{f}" for a, f, _ in BAD_VALUES])
def test_bad_value_is_bad_request_naming_the_field(client, fx, api, field, kw):
    args = {"model": MODEL, "max_tokens": 4, **kw}
    with pytest.raises(openai.BadRequestError) as e:
        if api == "chat":
            client.chat.completions.create(**{"messages": CHAT, **args})
        else:
            client.completions.create(**{"prompt": PROMPT, **args})
    assert e.value.status_code == 400
    assert field in e.value.message, e.value.message
    assert e.value.body["message"] in e.value.message  # OpenAI's error shape: {"error": {"message": ...}}
    assert_still_serves(client, fx)


UNSUPPORTED = [
    ("chat", "response_format", {"response_format": {"type": "structural_tag"}}),
    ("completions", "suffix", {"suffix": "The end."}),
    ("completions", "best_of", {"best_of": 2}),
    ("completions", "echo", {"prompt": [3281, 1317], "echo": True}),
    ("completions", "guided_whitespace_pattern", {"extra_body": {"guided_whitespace_pattern": " "}}),
]


@pytest.mark.parametrize("api,field,kw", UNSUPPORTED, ids=[f"{a}-{f}" for a, f, _ in UNSUPPORTED])
def test_unsupported_feature_is_501_naming_the_field(client, fx, api, field, kw):
    args = {"model": MODEL, "max_tokens": 4, **kw}
    with pytest.raises(openai.APIStatusError) as e:
        if api == "chat":
            client.chat.completions.create(**{"messages": CHAT, **args})
        else:
            client.completions.create(**{"prompt": PROMPT, **args})
    assert e.value.status_code == 501
    assert f"'{field}'" in e.value.message and "not supported" in e.value.message, e.value.message
    assert_still_serves(client, fx)


@pytest.mark.parametrize("kw", [
    {"prompt": [3281, 4096]},
    {"prompt": [[3281], [1 << 20]]},
    {"logit_bias": {"4096": 5}},
    {"extra_body": {"stop_token_ids": [5000]}},
], ids=["prompt", "prompt-batch", "logit_bias", "stop_token_ids"])
def test_out_of_vocabulary_token_id_is_bad_request(client, fx, kw):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(**{"model": MODEL, "prompt": PROMPT, "max_tokens": 4, **kw})
    assert e.value.status_code == 400
    bad = str(next(i for i in (1 << 20, 5000, 4096) if str(i) in json.dumps(kw)))
    assert bad in e.value.message, e.value.message
    assert_still_serves(client, fx)


def test_out_of_vocabulary_token_id_in_a_stream_is_bad_request(client, fx):
    # A stream's 200 goes out with its first chunk: the model's refusal of the prompt comes
    # before it, as the HTTP status (vLLM's answer too).
    with pytest.raises(openai.BadRequestError) as e:
        list(client.completions.create(model=MODEL, prompt=[3281, 4096], max_tokens=4, stream=True))
    assert e.value.status_code == 400
    assert "4096" in e.value.message
    assert_still_serves(client, fx)


# ---- the async client ------------------------------------------------------------------------

def test_async_client_runs_concurrent_streams_to_completion(base_url, client):
    prompts = [PROMPT, OTHER_PROMPT, "The best way to", "Love is"]
    expected = [greedy(client, p, max_tokens=16).choices[0].text for p in prompts]

    async def one(aclient: openai.AsyncOpenAI, prompt: str):
        chunks = [c async for c in await aclient.completions.create(
            model=MODEL, prompt=prompt, max_tokens=16, temperature=0, stream=True,
            stream_options={"include_usage": True})]
        return Collected(chunks, chat=False)

    async def main():
        async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60) as a:
            return await asyncio.gather(*(one(a, p) for p in prompts))

    for s, text in zip(asyncio.run(main()), expected):
        s.assert_well_formed(1, "text_completion", "cmpl")
        assert s.text[0] == text
        assert s.usage.completion_tokens == 16 and s.finish[0] == ["length"]


def test_async_chat_streams(base_url, client):
    expected = chat_greedy(client, max_tokens=10).choices[0].message.content

    async def one(aclient: openai.AsyncOpenAI):
        return Collected([c async for c in await aclient.chat.completions.create(
            model=MODEL, messages=CHAT, max_tokens=10, temperature=0, stream=True)], chat=True)

    async def main():
        async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60) as a:
            return await asyncio.gather(*(one(a) for _ in range(3)))

    for s in asyncio.run(main()):
        s.assert_well_formed(1, "chat.completion.chunk", "chatcmpl")
        assert s.text[0] == expected
