"""Triton's own gRPC client (tritonclient.grpc, pinned in tests/requirements.txt) against Sluice.

Health and metadata, the model configuration (protobuf and as_json), the repository extension
(index, load with a config and file override, unload), ModelInfer with BYTES and numeric
tensors, requested outputs, ids and parameters, async_infer and its cancel, errors as
InferenceServerException with gRPC's status, statistics, and the decoupled path through
ModelStreamInfer: the repeat model's responses in order with triton_final_response, and the
demo LLM under the vLLM contract (text_input, stream, sampling_parameters as a tensor or as
request parameters) whose streamed chunks join to the non-streamed greedy text.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aioclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import BINARY_DIR, EXAMPLES, SOURCE_DIR

GREEDY = json.loads((SOURCE_DIR / "tests" / "fixtures" / "demo_greedy.json").read_text())


@pytest.fixture(scope="module")
def client(server):
    c = grpcclient.InferenceServerClient(server.grpc_url)
    yield c
    c.close()


class Collector:
    """A start_stream callback that queues (result, error) pairs."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue()

    def __call__(self, result, error):
        self.q.put((result, error))

    def get(self, timeout: float = 20.0):
        return self.q.get(timeout=timeout)

    def none_within(self, seconds: float) -> bool:
        try:
            item = self.q.get(timeout=seconds)
        except queue.Empty:
            return True
        self.q.put(item)
        return False


def identity_inputs(ints, strings) -> list[grpcclient.InferInput]:
    a = np.asarray(ints, dtype=np.int32)
    b = np.asarray(strings, dtype=np.object_)
    in0 = grpcclient.InferInput("INPUT0", list(a.shape), "INT32")
    in0.set_data_from_numpy(a)
    in1 = grpcclient.InferInput("INPUT1", list(b.shape), "BYTES")
    in1.set_data_from_numpy(b)
    return [in0, in1]


def repeat_inputs(values, delays=None, wait=None) -> list[grpcclient.InferInput]:
    inputs = [grpcclient.InferInput("IN", [len(values)], "INT32")]
    inputs[0].set_data_from_numpy(np.asarray(values, np.int32))
    if delays is not None:
        inputs.append(grpcclient.InferInput("DELAY", [len(delays)], "UINT32"))
        inputs[-1].set_data_from_numpy(np.asarray(delays, np.uint32))
    if wait is not None:
        inputs.append(grpcclient.InferInput("WAIT", [1], "UINT32"))
        inputs[-1].set_data_from_numpy(np.asarray([wait], np.uint32))
    return inputs


def llm_inputs(prompt: str, stream: bool, sampling: dict | None = None) -> list[grpcclient.InferInput]:
    """As Triton's vLLM backend sample client builds them (samples/client.py)."""
    inputs = [grpcclient.InferInput("text_input", [1], "BYTES"), grpcclient.InferInput("stream", [1], "BOOL")]
    inputs[0].set_data_from_numpy(np.asarray([prompt.encode()], np.object_))
    inputs[1].set_data_from_numpy(np.asarray([stream], bool))
    if sampling is not None:
        inputs.append(grpcclient.InferInput("sampling_parameters", [1], "BYTES"))
        inputs[-1].set_data_from_numpy(np.asarray([json.dumps(sampling).encode()], np.object_))
    return inputs


def is_final(result) -> bool:
    return result.get_response().parameters["triton_final_response"].bool_param


def assert_error(excinfo, status: str, *fragments: str) -> None:
    e = excinfo.value
    assert e.status() == status, f"status {e.status()!r}, message {e.message()!r}"
    for f in fragments:
        assert f in e.message(), f"{f!r} not in {e.message()!r}"


def stats_of(client, model: str):
    (s,) = client.get_inference_statistics(model).model_stats
    return s


def http_stats(server_or_url, model: str) -> dict:
    """The model's statistics over HTTP, where Sluice also reports cancellations and pending
    requests (gRPC's InferStatistics has no field for them)."""
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.http_url
    c = httpclient.InferenceServerClient(url)
    try:
        (s,) = c.get_inference_statistics(model)["model_stats"]
        return s
    finally:
        c.close()


def settled(server_or_url, model: str) -> dict:
    """http_stats once no request of the model is pending. A response reaches the client just
    before the server counts its request (as in Triton), so a count read at once may lag."""
    deadline = time.monotonic() + 10
    while True:
        s = http_stats(server_or_url, model)
        if s["inflight_request_count"] == 0 or time.monotonic() > deadline:
            return s
        time.sleep(0.02)


def wait_for(predicate, timeout: float = 10.0):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` passes (the
    last value is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def stream_llm(client, inputs, request_id: str, parameters=None, timeout: float = 20.0):
    """Runs one request on a fresh stream; returns its responses (all, up to the final one)."""
    got = Collector()
    client.start_stream(callback=got)
    try:
        client.async_stream_infer("sluice-demo", inputs, request_id=request_id, parameters=parameters,
                                  outputs=[grpcclient.InferRequestedOutput("text_output")])
        results = []
        while True:
            result, error = got.get(timeout)
            assert error is None, error
            assert result.get_response().id == request_id
            results.append(result)
            if is_final(result):
                return results
    finally:
        client.stop_stream()


# ---- health, metadata, configuration, repository ----


def test_server_live_ready_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    md = client.get_server_metadata()
    assert md.name and md.version
    assert {"model_repository", "model_configuration", "statistics"} <= set(md.extensions)
    assert client.get_server_metadata(as_json=True)["name"] == md.name


def test_server_metadata_reports_one_extension_list_over_grpc_and_http(client, server):
    # Triton reports the same extensions on both protocols; a client may ask either.
    grpc_md = client.get_server_metadata()
    http_md = httpclient.InferenceServerClient(server.http_url).get_server_metadata()
    assert list(grpc_md.extensions) == http_md["extensions"]
    assert (grpc_md.name, grpc_md.version) == (http_md["name"], http_md["version"])
    # The version `sluice --version` prints and vLLM's /version reports (issue 20).
    printed = subprocess.run([str(BINARY_DIR / "src" / "server" / "sluice"), "--version"], capture_output=True, text=True, check=True).stdout
    assert printed == f"sluice {grpc_md.version}\n"
    with urllib.request.urlopen(f"http://{server.http_url}/version", timeout=30) as r:
        assert json.loads(r.read())["version"] == grpc_md.version
    assert {"binary_tensor_data", "model_repository", "parameters", "statistics", "logging"} <= set(
        grpc_md.extensions)


def test_model_ready_metadata_and_config(client):
    for model in ("identity", "repeat", "sluice-demo"):
        assert client.is_model_ready(model)
    assert client.is_model_ready("identity", "1")
    assert not client.is_model_ready("identity", "7")
    assert not client.is_model_ready("nope")

    md = client.get_model_metadata("identity")
    assert md.name == "identity" and list(md.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [
        ("INPUT0", "INT32", [-1]), ("INPUT1", "BYTES", [-1])]
    assert client.get_model_metadata("identity", as_json=True)["outputs"][1] == {
        "name": "OUTPUT1", "datatype": "BYTES", "shape": ["-1"]}
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("nope")
    assert_error(e, "StatusCode.NOT_FOUND", "nope")

    config = client.get_model_config("identity").config
    assert config.name == "identity" and config.backend == "identity"
    assert list(config.input[0].dims) == [-1]
    assert config.input[1].data_type == grpcclient.model_config_pb2.TYPE_STRING
    # as_json: the client's own MessageToJson of the same message (int64 as strings).
    as_json = client.get_model_config("sluice-demo", as_json=True)["config"]
    assert as_json["backend"] == "vllm"
    assert as_json["model_transaction_policy"]["decoupled"] is True
    inputs = {i["name"]: i for i in as_json["input"]}
    assert inputs["text_input"]["data_type"] == "TYPE_STRING"
    assert inputs["text_input"]["dims"] == ["1"]
    assert inputs["sampling_parameters"]["optional"] is True
    assert "text_output" in {o["name"] for o in as_json["output"]}
    with pytest.raises(InferenceServerException) as e:
        client.get_model_config("nope")
    assert_error(e, "StatusCode.NOT_FOUND", "nope")


def test_repository_index(client):
    index = {m.name: m for m in client.get_model_repository_index().models}
    for model in ("identity", "repeat", "sluice-demo"):
        assert index[model].state == "READY" and index[model].version == "1"
    as_json = client.get_model_repository_index(as_json=True)
    assert {m["name"] for m in as_json["models"]} >= {"identity", "repeat", "sluice-demo"}


# ---- ModelInfer on identity ----


def test_identity_round_trip(client):
    ints = [0, -1, 2147483647, -2147483648]
    strings = [b"hello", "wörld ✓ 日本".encode(), b"", b"\x00\xff\xfe binary"]
    result = client.infer("identity", identity_inputs(ints, strings), request_id="g-1",
                          parameters={"custom_str": "v", "custom_int": 3, "custom_bool": False,
                                      "custom_float": 1.5})
    response = result.get_response()
    assert response.id == "g-1" and response.model_name == "identity" and response.model_version == "1"
    out0 = result.as_numpy("OUTPUT0")
    assert out0.dtype == np.int32
    np.testing.assert_array_equal(out0, ints)
    assert list(result.as_numpy("OUTPUT1")) == strings
    as_json = client.infer("identity", identity_inputs([1], [b"x"])).get_response(as_json=True)
    assert {o["name"] for o in as_json["outputs"]} == {"OUTPUT0", "OUTPUT1"}


def test_identity_many_elements_and_empty(client):
    a = np.arange(6, dtype=np.int32)
    result = client.infer("identity", identity_inputs(a, [b""] * 3))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a)
    assert list(result.as_numpy("OUTPUT1")) == [b"", b"", b""]
    empty = client.infer("identity", identity_inputs(np.zeros([0], np.int32), np.zeros([0], np.object_)))
    assert empty.as_numpy("OUTPUT0").shape == (0,)
    assert empty.as_numpy("OUTPUT1").shape == (0,)


def test_requests_past_the_limits_are_the_clients_error(client):
    # An id over 4 KiB or more than 1,024 parameters is the client's error (StatusCode.INVALID_ARGUMENT), never
    # UNAVAILABLE (which clients and load balancers retry, or eject the server for).
    inputs = identity_inputs([1], [b"a"])
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", inputs, request_id="x" * 5000)
    assert_error(e, "StatusCode.INVALID_ARGUMENT", "request id", "4096")
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", inputs, parameters={f"p{i}": i for i in range(1100)})
    assert_error(e, "StatusCode.INVALID_ARGUMENT", "1100 parameters", "1024")
    assert client.infer("identity", inputs, request_id="y" * 4096).get_response() is not None  # at the limit: served


def test_requested_output_subset(client):
    for name, absent in (("OUTPUT0", "OUTPUT1"), ("OUTPUT1", "OUTPUT0")):
        result = client.infer("identity", identity_inputs([5], [b"five"]),
                              outputs=[grpcclient.InferRequestedOutput(name)])
        assert [o.name for o in result.get_response().outputs] == [name]
        assert result.as_numpy(absent) is None
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", identity_inputs([5], [b"five"]),
                     outputs=[grpcclient.InferRequestedOutput("OUTPUT9")])
    assert_error(e, "StatusCode.INVALID_ARGUMENT", "OUTPUT9")


def test_async_infer(client):
    done: queue.Queue = queue.Queue()
    for i in range(10):
        client.async_infer("identity", identity_inputs([i], [str(i).encode()]),
                           callback=lambda result, error, i=i: done.put((i, result, error)),
                           request_id=f"a-{i}")
    seen = set()
    for _ in range(10):
        i, result, error = done.get(timeout=30)
        assert error is None, error
        assert result.get_response().id == f"a-{i}"
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), [i])
        assert list(result.as_numpy("OUTPUT1")) == [str(i).encode()]
        seen.add(i)
    assert seen == set(range(10))


# ---- errors ----


def test_errors_are_inference_server_exceptions(client):
    good = identity_inputs([1], [b"a"])
    with pytest.raises(InferenceServerException) as e:
        client.infer("nope", good)
    assert_error(e, "StatusCode.NOT_FOUND", "nope")

    wrong_dtype = grpcclient.InferInput("INPUT0", [1], "FP32")
    wrong_dtype.set_data_from_numpy(np.asarray([1.5], np.float32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", [wrong_dtype, good[1]])
    assert_error(e, "StatusCode.INVALID_ARGUMENT", "INPUT0", "FP32", "INT32")

    wrong_shape = grpcclient.InferInput("INPUT0", [1, 2], "INT32")
    wrong_shape.set_data_from_numpy(np.asarray([[1, 2]], np.int32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", [wrong_shape, good[1]])
    assert_error(e, "StatusCode.INVALID_ARGUMENT", "INPUT0")

    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", [good[0]])
    assert_error(e, "StatusCode.INVALID_ARGUMENT", "INPUT1")

    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", good, model_version="7")
    assert_error(e, "StatusCode.NOT_FOUND", "identity")

    # ModelInfer refuses decoupled models, with Triton's message.
    with pytest.raises(InferenceServerException) as e:
        client.infer("repeat", repeat_inputs([1]))
    assert_error(e, "StatusCode.UNIMPLEMENTED", "decoupled")

    assert client.is_server_live() and client.is_server_ready()
    np.testing.assert_array_equal(client.infer("identity", identity_inputs([2], [b"b"])).as_numpy("OUTPUT0"), [2])


# ---- decoupled: ModelStreamInfer ----


def test_stream_repeat_responses_in_order(client):
    got = Collector()
    client.start_stream(callback=got)
    try:
        values = [10, 20, 30, 40, 50]
        client.async_stream_infer("repeat", repeat_inputs(values, [0, 5, 5, 5, 5]), request_id="r-1")
        for i, v in enumerate(values):
            result, error = got.get()
            assert error is None, error
            assert result.get_response().id == "r-1"
            assert result.as_numpy("OUT")[0] == v
            assert result.as_numpy("IDX")[0] == i
            # Without enable_empty_final_response, the flag is present and false on each
            # response; the backend's separate final flag sends nothing more.
            assert not is_final(result)
        assert got.none_within(0.3)

        # With it: the same responses, then one empty response flagged final.
        client.async_stream_infer("repeat", repeat_inputs([7, 8, 9], [0, 0, 0]), request_id="r-2",
                                  enable_empty_final_response=True)
        for i, v in enumerate([7, 8, 9]):
            result, error = got.get()
            assert error is None, error
            assert result.as_numpy("OUT")[0] == v and not is_final(result)
        result, error = got.get()
        assert error is None, error
        assert is_final(result)
        assert result.get_response().id == "r-2"
        assert len(result.get_response().outputs) == 0
        assert got.none_within(0.2)

        # Several requests on one stream, interleaved by their delays, each in its own order.
        client.async_stream_infer("repeat", repeat_inputs([1, 2, 3], [0, 40, 40]), request_id="a",
                                  enable_empty_final_response=True)
        client.async_stream_infer("repeat", repeat_inputs([4, 5, 6], [20, 40, 40]), request_id="b",
                                  enable_empty_final_response=True)
        by_id: dict[str, list] = {"a": [], "b": []}
        finals = 0
        while finals < 2:
            result, error = got.get()
            assert error is None, error
            rid = result.get_response().id
            if is_final(result):
                finals += 1
                assert len(by_id[rid]) == 3
            else:
                by_id[rid].append(int(result.as_numpy("OUT")[0]))
        assert by_id == {"a": [1, 2, 3], "b": [4, 5, 6]}
    finally:
        client.stop_stream()


def test_stream_errors_arrive_in_band_and_the_stream_stays_open(client):
    got = Collector()
    client.start_stream(callback=got)
    try:
        client.async_stream_infer("nope", repeat_inputs([1]), request_id="bad-model")
        result, error = got.get()
        assert result is None and isinstance(error, InferenceServerException)
        assert "nope" in error.message()

        bad = grpcclient.InferInput("IN", [1], "FP32")
        bad.set_data_from_numpy(np.asarray([1.0], np.float32))
        client.async_stream_infer("repeat", [bad], request_id="bad-dtype")
        result, error = got.get()
        assert result is None and "IN" in error.message() and "FP32" in error.message()

        # The same stream still serves.
        client.async_stream_infer("repeat", repeat_inputs([3]), request_id="ok",
                                  enable_empty_final_response=True)
        result, error = got.get()
        assert error is None and result.as_numpy("OUT")[0] == 3
        result, error = got.get()
        assert error is None and is_final(result)
    finally:
        client.stop_stream()


def test_stream_llm_chunks_join_to_the_greedy_text(client):
    prompt, want = GREEDY["prompt"], GREEDY["output_text"]
    max_tokens = GREEDY["max_new_tokens"]
    # Non-streamed (stream false): one response, the prompt prepended, flagged final.
    (whole,) = stream_llm(client, llm_inputs(prompt, False, {"temperature": 0, "max_tokens": max_tokens}), "whole")
    assert whole.as_numpy("text_output")[0].decode() == prompt + want

    # Streamed, sampling_parameters as a tensor with string values as vLLM's sample client sends.
    chunks = stream_llm(client, llm_inputs(prompt, True, {"temperature": "0", "max_tokens": str(max_tokens)}),
                        "streamed")
    assert len(chunks) > 5
    assert all(not is_final(c) for c in chunks[:-1])
    text = "".join(c.as_numpy("text_output")[0].decode() for c in chunks)
    assert text == whole.as_numpy("text_output")[0].decode()[len(prompt):]
    assert text == want

    # Sampling parameters as request parameters (the vLLM backend reads them when the tensor
    # is absent), with exclude_input_in_output as an input tensor.
    inputs = llm_inputs(prompt, False)
    exclude = grpcclient.InferInput("exclude_input_in_output", [1], "BOOL")
    exclude.set_data_from_numpy(np.asarray([True], bool))
    (only,) = stream_llm(client, [*inputs, exclude], "params",
                         parameters={"temperature": 0, "max_tokens": max_tokens})
    assert only.as_numpy("text_output")[0].decode() == want

    # A short max_tokens as a string request parameter: a prefix of the greedy text.
    short = stream_llm(client, llm_inputs(prompt, True), "short", parameters={"temperature": "0", "max_tokens": "4"})
    joined = "".join(c.as_numpy("text_output")[0].decode() for c in short)
    assert joined and want.startswith(joined) and len(joined) < len(want)


def test_stream_num_output_tokens_counts_each_response_as_the_vllm_backend(client):
    # Triton's vLLM backend (docs/additional_outputs.md): num_output_tokens is the number of
    # tokens generated since the previous response, so a stream's responses add up to the total.
    max_tokens = 12
    inputs = llm_inputs("Once upon a time", True, {"temperature": 0, "max_tokens": max_tokens, "ignore_eos": True})
    for name in ("return_num_output_tokens", "return_num_input_tokens"):
        flag = grpcclient.InferInput(name, [1], "BOOL")
        flag.set_data_from_numpy(np.asarray([True], bool))
        inputs.append(flag)
    got = Collector()
    client.start_stream(callback=got)
    try:
        client.async_stream_infer("sluice-demo", inputs, request_id="counts")
        counts = []
        while True:
            result, error = got.get()
            assert error is None, error
            counts.append(int(result.as_numpy("num_output_tokens")[0]))
            assert int(result.as_numpy("num_input_tokens")[0]) > 0
            if is_final(result):
                break
    finally:
        client.stop_stream()
    assert sum(counts) == max_tokens, counts
    assert max(counts) <= 2, f"running totals instead of per-response counts: {counts}"


def test_aio_stream_infer_as_the_vllm_sample_client(server):
    # Triton's vLLM backend sample (samples/client.py): tritonclient.grpc.aio stream_infer fed
    # by an async generator of request dicts, sampling parameters as string values both in
    # the sampling_parameters tensor and as request parameters. The response iterator ends
    # when the requests are sent and every one has its final response.
    prompts = [GREEDY["prompt"], "The meaning of life"]
    sampling = {"temperature": "0", "top_p": "0.95", "max_tokens": str(GREEDY["max_new_tokens"])}

    async def requests():
        for i, prompt in enumerate(prompts):
            yield {"model_name": "sluice-demo", "inputs": llm_inputs(prompt, True, sampling),
                   "outputs": [aioclient.InferRequestedOutput("text_output")],
                   "request_id": str(i), "parameters": sampling}

    async def run() -> dict[str, list[str]]:
        texts: dict[str, list[str]] = {"0": [], "1": []}
        finals = {"0": 0, "1": 0}
        async with aioclient.InferenceServerClient(server.grpc_url) as c:
            async for result, error in c.stream_infer(inputs_iterator=requests(), stream_timeout=60):
                assert error is None, error
                rid = result.get_response().id
                assert finals[rid] == 0, "a response after the final one"
                texts[rid].append(result.as_numpy("text_output")[0].decode())
                finals[rid] += is_final(result)
        assert finals == {"0": 1, "1": 1}
        return texts

    texts = asyncio.run(asyncio.wait_for(run(), 60))
    assert "".join(texts["0"]) == GREEDY["output_text"]
    assert len(texts["1"]) > 1 and "".join(texts["1"])


def test_stream_llm_contract_errors(client):
    got = Collector()
    client.start_stream(callback=got)
    try:
        # Streaming with the prompt echoed is refused, as by Triton's vLLM backend.
        exclude = grpcclient.InferInput("exclude_input_in_output", [1], "BOOL")
        exclude.set_data_from_numpy(np.asarray([False], bool))
        client.async_stream_infer("sluice-demo", [*llm_inputs("Hi", True), exclude], request_id="e1")
        result, error = got.get()
        assert result is None and "exclude_input_in_output" in error.message()
        client.async_stream_infer("sluice-demo", llm_inputs("Hi", True, {"max_tokens": "many"}), request_id="e2")
        result, error = got.get()
        assert result is None and "max_tokens" in error.message()
    finally:
        client.stop_stream()


# ---- cancellation ----


def test_stop_stream_cancels_requests_and_the_server_stays_healthy(client, server):
    before = settled(server, "repeat")
    got = Collector()
    client.start_stream(callback=got)
    long_inputs = repeat_inputs(list(range(100)), [0] + [100] * 99)
    client.async_stream_infer("repeat", long_inputs, request_id="long-1")
    client.async_stream_infer("repeat", long_inputs, request_id="long-2")
    seen = {got.get()[0].get_response().id, got.get()[0].get_response().id}
    assert seen == {"long-1", "long-2"}
    assert wait_for(lambda: http_stats(server, "repeat")["inflight_request_count"] == 2)
    start = time.monotonic()
    client.stop_stream(cancel_requests=True)
    assert time.monotonic() - start < 5
    # The client reports its own cancellation through the callback.
    items = []
    while not got.q.empty():
        items.append(got.q.get())
    assert any(e is not None and "Locally cancelled" in e.message() for _, e in items), items

    # The server cancels both requests at once (not after their 10 s): nothing pending, two
    # cancellations, no success; and the repeat model serves a new stream.
    def cancelled():
        s = http_stats(server, "repeat")
        return s["inflight_request_count"] == 0 and s["inference_stats"]["cancel"]["count"] == \
            before["inference_stats"]["cancel"]["count"] + 2
    assert wait_for(cancelled, 5), http_stats(server, "repeat")
    after = http_stats(server, "repeat")["inference_stats"]
    assert after["success"]["count"] == before["inference_stats"]["success"]["count"]
    assert after["fail"]["count"] == before["inference_stats"]["fail"]["count"] + 2
    got = Collector()
    client.start_stream(callback=got)
    try:
        client.async_stream_infer("repeat", repeat_inputs([1, 2]), request_id="after",
                                  enable_empty_final_response=True)
        assert [got.get()[0].as_numpy("OUT")[0] for _ in range(2)] == [1, 2]
        assert is_final(got.get()[0])
    finally:
        client.stop_stream()
    assert settled(server, "repeat")["inference_stats"]["success"]["count"] == after["success"]["count"] + 1


def test_stop_stream_cancels_llm_generation(client, server):
    cancels = settled(server, "sluice-demo")["inference_stats"]["cancel"]["count"]
    got = Collector()
    client.start_stream(callback=got)
    client.async_stream_infer("sluice-demo", llm_inputs("Hello", True, {"max_tokens": 400, "min_tokens": 400,
                                                                        "temperature": 0}),
                              request_id="long-llm")
    result, error = got.get()
    assert error is None and not is_final(result)
    client.stop_stream(cancel_requests=True)

    def cancelled():
        s = http_stats(server, "sluice-demo")
        return s["inflight_request_count"] == 0 and s["inference_stats"]["cancel"]["count"] == cancels + 1
    assert wait_for(cancelled, 5), http_stats(server, "sluice-demo")
    # Healthy afterwards: a full greedy generation matches the fixture.
    chunks = stream_llm(client, llm_inputs(GREEDY["prompt"], True, {"temperature": 0,
                                                                     "max_tokens": GREEDY["max_new_tokens"]}),
                        "after-cancel")
    assert "".join(c.as_numpy("text_output")[0].decode() for c in chunks) == GREEDY["output_text"]


# ---- statistics ----


def test_statistics_count_requests(client, server):
    settled(server, "identity")
    before = stats_of(client, "identity")
    for i in range(4):
        client.infer("identity", identity_inputs([i], [b"s"]))
    with pytest.raises(InferenceServerException):
        client.infer("identity", identity_inputs([1], [b"a"])[:1])
    settled(server, "identity")
    after = stats_of(client, "identity")
    assert after.inference_stats.success.count == before.inference_stats.success.count + 4
    assert after.inference_count >= before.inference_count + 4
    assert after.execution_count >= before.execution_count + 4
    assert after.last_inference >= before.last_inference > 0
    assert after.inference_stats.success.ns > before.inference_stats.success.ns

    # Streams are counted too: one request of the repeat model, one success.
    settled(server, "repeat")
    r0 = stats_of(client, "repeat").inference_stats.success.count
    got = Collector()
    client.start_stream(callback=got)
    try:
        client.async_stream_infer("repeat", repeat_inputs([1, 2, 3]), enable_empty_final_response=True)
        for _ in range(4):
            assert got.get()[1] is None
    finally:
        client.stop_stream()
    settled(server, "repeat")
    assert stats_of(client, "repeat").inference_stats.success.count == r0 + 1

    as_json = client.get_inference_statistics(as_json=True)
    assert {"identity", "repeat", "sluice-demo"} <= {m["name"] for m in as_json["model_stats"]}
    with pytest.raises(InferenceServerException) as e:
        client.get_inference_statistics("nope")
    assert_error(e, "StatusCode.NOT_FOUND", "nope")


# ---- load / unload and async_infer cancel, on a server of their own ----

REPEAT_PLAIN = {
    "name": "repeat",
    "backend": "repeat",
    "max_batch_size": 0,
    "model_transaction_policy": {"decoupled": False},
    "input": [
        {"name": "IN", "data_type": "TYPE_INT32", "dims": [-1]},
        {"name": "DELAY", "data_type": "TYPE_UINT32", "dims": [-1], "optional": True},
    ],
    "output": [
        {"name": "OUT", "data_type": "TYPE_INT32", "dims": [1]},
        {"name": "IDX", "data_type": "TYPE_UINT32", "dims": [1]},
    ],
}


def test_load_unload_with_config_and_files(start_server):
    s = start_server(["--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
                      "--load-model", "identity", "--cpu-threads", "2"])
    c = grpcclient.InferenceServerClient(s.grpc_url)
    try:
        index = {m.name: m for m in c.get_model_repository_index().models}
        assert index["identity"].state == "READY"
        assert index["repeat"].version == "" and index["repeat"].state != "READY"

        c.unload_model("identity")
        assert not c.is_model_ready("identity")
        entry = {m.name: m for m in c.get_model_repository_index().models}["identity"]
        assert entry.state == "UNAVAILABLE" and entry.reason == "unloaded"
        c.load_model("identity")
        assert c.is_model_ready("identity")

        # Config override (a JSON string, as the client sends it) plus file overrides (bytes):
        # the model is served from the given files, under the given config.
        config = {**REPEAT_PLAIN, "parameters": {"origin": {"string_value": "grpc-override"}}}
        c.load_model("repeat", config=json.dumps(config), files={"file:1/weights.bin": b"\x00\x01binary\xff"})
        assert c.is_model_ready("repeat")
        got = c.get_model_config("repeat").config
        assert got.parameters["origin"].string_value == "grpc-override"
        assert not got.model_transaction_policy.decoupled
        result = c.infer("repeat", repeat_inputs([12], [0]))
        np.testing.assert_array_equal(result.as_numpy("OUT"), [12])

        with pytest.raises(InferenceServerException) as e:
            c.load_model("repeat", files={"file:1/weights.bin": b"x"})
        assert_error(e, "StatusCode.INVALID_ARGUMENT", "config")
        with pytest.raises(InferenceServerException) as e:
            c.load_model("nope")
        assert_error(e, "StatusCode.INVALID_ARGUMENT", "nope")
        assert c.is_model_ready("repeat")
        c.unload_model("repeat")
        assert not c.is_model_ready("repeat")
        c.unload_model("never-heard-of-it")  # Triton: unloading an unknown model succeeds
    finally:
        c.close()


def test_async_infer_cancel(start_server):
    s = start_server(["--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
                      "--cpu-threads", "2"])
    c = grpcclient.InferenceServerClient(s.grpc_url)
    try:
        c.load_model("repeat", config=json.dumps(REPEAT_PLAIN))
        done: queue.Queue = queue.Queue()
        ctx = c.async_infer("repeat", repeat_inputs([1], [30000]), callback=lambda result, error: done.put((result, error)))
        assert wait_for(lambda: http_stats(s, "repeat")["inflight_request_count"] == 1)
        ctx.cancel()
        result, error = done.get(timeout=5)
        assert result is None and "Locally cancelled" in error.message()
        # The server cancels the request at once (not after its 30 s).
        assert wait_for(lambda: http_stats(s, "repeat")["inference_stats"]["cancel"]["count"] == 1, 5)
        st = http_stats(s, "repeat")
        assert st["inflight_request_count"] == 0, st
        assert st["inference_stats"]["success"]["count"] == 0 and st["inference_stats"]["fail"]["count"] == 1, st
        # Healthy: a later request succeeds and is counted.
        np.testing.assert_array_equal(c.infer("repeat", repeat_inputs([6], [0])).as_numpy("OUT"), [6])
        settled(s, "repeat")
        assert stats_of(c, "repeat").inference_stats.success.count == 1
    finally:
        c.close()
