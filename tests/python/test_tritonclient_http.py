"""Triton's own HTTP client (tritonclient.http, pinned in tests/requirements.txt) against Sluice.

What a Triton user's script does must work unchanged: health and metadata, the model
configuration as Triton renders it, the repository extension (index, load with a config
override and files, unload), KServe v2 inference with JSON and binary tensors (BYTES included),
compressed requests, request ids and parameters, async_infer, errors as InferenceServerException
with Triton's HTTP status, cancellation by disconnect, and statistics. Decoupled models are
refused by /infer (tritonclient.http has no streaming; the gRPC tests cover it).
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import time

import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient
from tritonclient.utils import InferenceServerException

from conftest import EXAMPLES


@pytest.fixture(scope="module")
def client(server):
    c = httpclient.InferenceServerClient(server.http_url, concurrency=4)
    yield c
    c.close()


def identity_inputs(ints, strings, binary: bool) -> list[httpclient.InferInput]:
    a = np.asarray(ints, dtype=np.int32)
    b = np.asarray(strings, dtype=np.object_)
    in0 = httpclient.InferInput("INPUT0", list(a.shape), "INT32")
    in0.set_data_from_numpy(a, binary_data=binary)
    in1 = httpclient.InferInput("INPUT1", list(b.shape), "BYTES")
    in1.set_data_from_numpy(b, binary_data=binary)
    return [in0, in1]


def assert_error(excinfo, status: str, *fragments: str) -> None:
    e = excinfo.value
    assert e.status() == status, f"status {e.status()!r}, message {e.message()!r}"
    for f in fragments:
        assert f in e.message(), f"{f!r} not in {e.message()!r}"


def settled_stats(client, model: str) -> dict:
    """The model's statistics once no request is pending. A reply reaches the client just
    before the server counts it (as in Triton), so a count read at once may lag by one."""
    deadline = time.monotonic() + 10
    while True:
        (s,) = client.get_inference_statistics(model)["model_stats"]
        if s["inflight_request_count"] == 0 or time.monotonic() > deadline:
            return s
        time.sleep(0.02)


def identity_success_count(client) -> int:
    return settled_stats(client, "identity")["inference_stats"]["success"]["count"]


# ---- health, metadata, configuration, repository ----


def test_server_live_ready_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    md = client.get_server_metadata()
    assert md["name"] and md["version"]
    for ext in ("binary_tensor_data", "model_repository", "statistics"):
        assert ext in md["extensions"]


def test_model_ready_and_metadata(client):
    for model in ("identity", "repeat", "sluice-demo"):
        assert client.is_model_ready(model)
    assert client.is_model_ready("identity", "1")
    assert not client.is_model_ready("identity", "7")
    assert not client.is_model_ready("nope")

    md = client.get_model_metadata("identity")
    assert md["name"] == "identity"
    assert md["versions"] == ["1"]
    assert md["inputs"] == [
        {"name": "INPUT0", "datatype": "INT32", "shape": [-1]},
        {"name": "INPUT1", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in md["outputs"]] == ["OUTPUT0", "OUTPUT1"]
    assert client.get_model_metadata("identity", "1")["name"] == "identity"

    llm = client.get_model_metadata("sluice-demo")
    names = {t["name"]: t for t in llm["inputs"]}
    assert names["text_input"]["datatype"] == "BYTES"
    assert names["sampling_parameters"]["datatype"] == "BYTES"
    assert names["stream"]["datatype"] == "BOOL"
    assert "text_output" in [t["name"] for t in llm["outputs"]]

    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("nope")
    assert_error(e, "404", "nope")


def test_model_config_is_triton_json(client):
    # Triton renders int64 fields (dims) as JSON numbers and prints default-valued scalars
    # (max_batch_size 0); perf_analyzer and user scripts read them as such.
    config = client.get_model_config("identity")
    assert config["name"] == "identity"
    assert config["backend"] == "identity"
    assert config["max_batch_size"] == 0
    assert config["input"][0]["name"] == "INPUT0"
    assert config["input"][0]["data_type"] == "TYPE_INT32"
    assert config["input"][0]["dims"] == [-1]
    assert config["output"][1]["data_type"] == "TYPE_STRING"
    assert config["instance_group"][0]["kind"] == "KIND_CPU"

    llm = client.get_model_config("sluice-demo")
    assert llm["backend"] == "vllm"
    assert llm["model_transaction_policy"]["decoupled"] is True
    inputs = {i["name"]: i for i in llm["input"]}
    assert inputs["text_input"]["dims"] == [1]
    assert inputs["stream"]["optional"] is True

    with pytest.raises(InferenceServerException) as e:
        client.get_model_config("nope")
    assert_error(e, "404", "nope")


def test_repository_index(client):
    index = {m["name"]: m for m in client.get_model_repository_index()}
    for model in ("identity", "repeat", "sluice-demo"):
        assert index[model]["state"] == "READY", index[model]
        assert index[model]["version"] == "1"


# ---- inference on identity ----


@pytest.mark.parametrize("binary_in", [False, True], ids=["json_in", "binary_in"])
@pytest.mark.parametrize("binary_out", [False, True], ids=["json_out", "binary_out"])
def test_identity_round_trip(client, binary_in, binary_out):
    ints = [1, -2, 2147483647, -2147483648]
    strings = [b"hello", "wörld ✓ 日本".encode(), b"", b"tab\tnewline\n"]
    outputs = [
        httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary_out),
        httpclient.InferRequestedOutput("OUTPUT1", binary_data=binary_out),
    ]
    result = client.infer("identity", identity_inputs(ints, strings, binary_in), outputs=outputs,
                          request_id="req-42")
    response = result.get_response()
    assert response["id"] == "req-42"
    assert response["model_name"] == "identity"
    assert response["model_version"] == "1"
    for out in response["outputs"]:
        # Binary outputs come after the JSON header; JSON outputs carry "data".
        assert ("data" in out) != binary_out, out
        if binary_out:
            assert out["parameters"]["binary_data_size"] > 0
    out0 = result.as_numpy("OUTPUT0")
    assert out0.dtype == np.int32
    np.testing.assert_array_equal(out0, np.asarray(ints, dtype=np.int32))
    # The client gives binary BYTES elements as bytes, JSON ones as the str it parsed.
    want = strings if binary_out else [b.decode() for b in strings]
    assert list(result.as_numpy("OUTPUT1")) == want


def test_binary_data_output_is_the_default_without_requested_outputs(client):
    # With no `outputs`, tritonclient sets the request parameter binary_data_output=true.
    result = client.infer("identity", identity_inputs([7, 8], [b"a", b"b"], binary=False))
    response = result.get_response()
    assert {o["name"] for o in response["outputs"]} == {"OUTPUT0", "OUTPUT1"}
    assert all("data" not in o and "binary_data_size" in o["parameters"] for o in response["outputs"])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), [7, 8])
    assert list(result.as_numpy("OUTPUT1")) == [b"a", b"b"]


def test_binary_bytes_that_are_not_utf8(client):
    blobs = [b"\x00\x01\xff\xfe", b"", b"\x80" * 1000]
    result = client.infer("identity", identity_inputs([1, 2, 3], blobs, binary=True))
    assert list(result.as_numpy("OUTPUT1")) == blobs


def test_empty_tensors(client):
    result = client.infer("identity", identity_inputs(np.zeros([0], np.int32), np.zeros([0], np.object_), True))
    assert result.as_numpy("OUTPUT0").shape == (0,)
    assert result.as_numpy("OUTPUT1").shape == (0,)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_request_and_response(client, algorithm):
    # request_compression_algorithm: the whole body (JSON and binary tensors) is sent with
    # Content-Encoding; Triton decodes it before parsing. A response may come back plain.
    strings = [b"compressed \xe2\x9c\x93", b"", b"x" * 5000]
    for binary in (False, True):
        result = client.infer("identity", identity_inputs(list(range(3)), strings, binary),
                              request_compression_algorithm=algorithm,
                              response_compression_algorithm=algorithm)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), [0, 1, 2])
        assert list(result.as_numpy("OUTPUT1")) == strings


def test_content_encoding_errors(server, client):
    # Not through tritonclient (it only sends valid bodies): what Sluice answers otherwise.
    body = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1], "data": [1]},
                                  {"name": "INPUT1", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}).encode()

    def post(data: bytes, encoding: str):
        conn = http.client.HTTPConnection(server.http_url, timeout=30)
        try:
            conn.request("POST", "/v2/models/identity/infer", body=data, headers={"Content-Encoding": encoding})
            r = conn.getresponse()
            return r.status, r.getheader("Accept-Encoding"), json.loads(r.read() or b"{}")
        finally:
            conn.close()

    assert post(gzip.compress(body), "GZIP")[0] == 200
    status, accept, reply = post(body, "br")
    assert (status, accept) == (415, "gzip, deflate") and "br" in reply["error"]
    status, _, reply = post(gzip.compress(body)[:-6], "gzip")
    assert status == 400 and "truncated" in reply["error"]
    status, _, reply = post(b"not compressed at all", "deflate")
    assert status == 400 and "deflate" in reply["error"]
    # A small body that decodes past the limit (64 MiB) is refused, not inflated in full.
    status, _, reply = post(gzip.compress(b" " * ((64 << 20) + 1)), "gzip")
    assert status == 400 and "limit" in reply["error"]
    assert client.is_server_live()


def test_unsupported_extensions_answer_501_naming_them(server, client):
    # Shared memory and tracing are Triton's paths that Sluice does not implement: 501 with the
    # extension named, as over gRPC, never a 404 that reads as a wrong URL.
    calls = [
        (client.get_system_shared_memory_status, "system shared memory"),
        (lambda: client.register_system_shared_memory("r", "/r", 64), "system shared memory"),
        (client.unregister_system_shared_memory, "system shared memory"),
        (client.get_cuda_shared_memory_status, "CUDA shared memory"),
        (lambda: client.get_trace_settings(), "tracing"),
        (lambda: client.update_trace_settings("identity", {"trace_rate": "1"}), "tracing"),
    ]
    for call, what in calls:
        with pytest.raises(InferenceServerException) as excinfo:
            call()
        assert what + " is not supported" in excinfo.value.message(), excinfo.value.message()
    conn = http.client.HTTPConnection(server.http_url, timeout=30)
    try:
        conn.request("GET", "/v2/cudasharedmemory/region/r/status")
        assert conn.getresponse().status == 501
    finally:
        conn.close()
    assert client.is_server_live() and client.is_model_ready("identity")


def test_requests_past_the_limits_are_the_clients_error(client):
    # An id over 4 KiB or more than 1,024 parameters is the client's error (400), never
    # UNAVAILABLE (which clients and load balancers retry, or eject the server for).
    inputs = identity_inputs([1], [b"a"], binary=True)
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", inputs, request_id="x" * 5000)
    assert_error(e, "400", "request id", "4096")
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", inputs, parameters={f"p{i}": i for i in range(1100)})
    assert_error(e, "400", "1100 parameters", "1024")
    assert client.infer("identity", inputs, request_id="y" * 4096).get_response() is not None  # at the limit: served


def test_requested_output_subset(client):
    for name, absent in (("OUTPUT0", "OUTPUT1"), ("OUTPUT1", "OUTPUT0")):
        result = client.infer("identity", identity_inputs([5], [b"five"], binary=False),
                              outputs=[httpclient.InferRequestedOutput(name, binary_data=False)])
        assert [o["name"] for o in result.get_response()["outputs"]] == [name]
        assert result.as_numpy(absent) is None
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", identity_inputs([5], [b"five"], binary=False),
                     outputs=[httpclient.InferRequestedOutput("OUTPUT9")])
    assert_error(e, "400", "OUTPUT9")


def test_request_parameters_and_version(client):
    result = client.infer("identity", identity_inputs([3], [b"x"], binary=True), model_version="1",
                          request_id="with-params",
                          parameters={"custom_str": "v", "custom_int": 5, "custom_bool": True,
                                      "custom_float": 0.5})
    assert result.get_response()["id"] == "with-params"
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), [3])
    # Reserved names are refused by the client itself, before anything is sent.
    with pytest.raises(InferenceServerException, match="reserved"):
        client.infer("identity", identity_inputs([3], [b"x"], binary=True),
                     parameters={"binary_data_output": True})
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", identity_inputs([3], [b"x"], binary=True), model_version="7")
    assert_error(e, "404", "identity")


def test_async_infer(client):
    pending = [(i, client.async_infer("identity", identity_inputs([i, -i], [str(i).encode(), b"z"], binary=i % 2 == 0),
                                      request_id=f"async-{i}"))
               for i in range(12)]
    for i, handle in pending:
        result = handle.get_result(timeout=30)
        assert result.get_response()["id"] == f"async-{i}"
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), [i, -i])
        assert list(result.as_numpy("OUTPUT1")) == [str(i).encode(), b"z"]


# ---- errors: InferenceServerException with Triton's status; the server keeps serving ----


def test_errors_are_inference_server_exceptions(client):
    good = identity_inputs([1], [b"a"], binary=False)
    with pytest.raises(InferenceServerException) as e:
        client.infer("nope", good)
    assert_error(e, "404", "nope")

    wrong_dtype = httpclient.InferInput("INPUT0", [1], "FP32")
    wrong_dtype.set_data_from_numpy(np.asarray([1.5], np.float32), binary_data=False)
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", [wrong_dtype, good[1]])
    assert_error(e, "400", "INPUT0", "FP32", "INT32")

    wrong_shape = httpclient.InferInput("INPUT0", [1, 2], "INT32")
    wrong_shape.set_data_from_numpy(np.asarray([[1, 2]], np.int32), binary_data=True)
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", [wrong_shape, good[1]])
    assert_error(e, "400", "INPUT0", "[1,2]")

    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", [good[0]])
    assert_error(e, "400", "INPUT1")

    unknown = httpclient.InferInput("INPUT7", [1], "INT32")
    unknown.set_data_from_numpy(np.asarray([1], np.int32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("identity", [*good, unknown])
    assert_error(e, "400", "INPUT7")

    # Decoupled models have no single response: /infer refuses them.
    text = httpclient.InferInput("text_input", [1], "BYTES")
    text.set_data_from_numpy(np.asarray([b"Hello"], np.object_))
    with pytest.raises(InferenceServerException) as e:
        client.infer("sluice-demo", [text])
    assert "decoupled" in e.value.message()

    # Still serving.
    assert client.is_server_live() and client.is_server_ready()
    result = client.infer("identity", identity_inputs([9], [b"ok"], binary=True))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), [9])


# ---- statistics ----


def test_statistics_count_requests(client):
    before = identity_success_count(client)
    for i in range(5):
        client.infer("identity", identity_inputs([i], [b"s"], binary=True))
    with pytest.raises(InferenceServerException):
        client.infer("identity", identity_inputs([1], [b"a"], binary=False)[:1])
    assert identity_success_count(client) == before + 5

    stats = client.get_inference_statistics("identity", "1")["model_stats"]
    assert len(stats) == 1 and stats[0]["name"] == "identity" and stats[0]["version"] == "1"
    s = settled_stats(client, "identity")
    assert s["inference_count"] >= 5
    assert s["execution_count"] >= 5
    assert s["last_inference"] > 0
    assert s["inference_stats"]["success"]["ns"] > 0
    every = {m["name"] for m in client.get_inference_statistics()["model_stats"]}
    assert {"identity", "repeat", "sluice-demo"} <= every
    with pytest.raises(InferenceServerException) as e:
        client.get_inference_statistics("nope")
    assert_error(e, "404", "nope")


def test_statistics_count_failures_in_fail_only(server, client):
    # Triton's inference_count / execution_count are of successful requests; a request the
    # backend refuses counts in inference_stats.fail and nowhere else.
    def generate(sampling: dict) -> int:
        conn = http.client.HTTPConnection(server.http_url, timeout=30)
        try:
            body = {"text_input": "hi", "sampling_parameters": json.dumps(sampling)}
            conn.request("POST", "/v2/models/sluice-demo/generate", body=json.dumps(body))
            return conn.getresponse().status
        finally:
            conn.close()

    before = settled_stats(client, "sluice-demo")
    assert generate({"temperature": -1}) == 400
    assert generate({"max_tokens": 2}) == 200
    after = settled_stats(client, "sluice-demo")
    assert after["inference_stats"]["fail"]["count"] == before["inference_stats"]["fail"]["count"] + 1
    assert after["inference_stats"]["success"]["count"] == before["inference_stats"]["success"]["count"] + 1
    assert after["inference_count"] == before["inference_count"] + 1
    assert after["execution_count"] == before["execution_count"] + 1


# ---- load / unload (explicit mode), on a server of its own ----

REPEAT_CONFIG = {
    # Triton's client sends the override as a JSON string of the ModelConfig.
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
    "parameters": {"origin": {"string_value": "override"}},
}


def repeat_inputs(values, delays):
    a = httpclient.InferInput("IN", [len(values)], "INT32")
    a.set_data_from_numpy(np.asarray(values, np.int32))
    d = httpclient.InferInput("DELAY", [len(delays)], "UINT32")
    d.set_data_from_numpy(np.asarray(delays, np.uint32))
    return [a, d]


def test_load_unload_and_config_override(start_server):
    s = start_server(["--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
                      "--load-model", "identity", "--cpu-threads", "2"])
    c = httpclient.InferenceServerClient(s.http_url)
    index = {m["name"]: m for m in c.get_model_repository_index()}
    assert index["identity"]["state"] == "READY"
    # On disk, never loaded: listed without a version or state READY.
    assert "version" not in index["repeat"] and index["repeat"]["state"] != "READY"
    assert [m["name"] for m in c.get_model_repository_index()] == sorted(index)

    c.unload_model("identity")
    assert not c.is_model_ready("identity")
    entry = {m["name"]: m for m in c.get_model_repository_index()}["identity"]
    assert entry["state"] == "UNAVAILABLE" and entry["reason"] == "unloaded"
    with pytest.raises(InferenceServerException) as e:
        c.infer("identity", identity_inputs([1], [b"a"], binary=True))
    assert "identity" in e.value.message()
    c.load_model("identity")
    assert c.is_model_ready("identity")
    np.testing.assert_array_equal(
        c.infer("identity", identity_inputs([4], [b"x"], binary=True)).as_numpy("OUTPUT0"), [4])

    # The decoupled repeat model, loaded with a config override that makes it a plain model.
    c.load_model("repeat", config=json.dumps(REPEAT_CONFIG))
    assert c.is_model_ready("repeat")
    config = c.get_model_config("repeat")
    assert config["parameters"]["origin"]["string_value"] == "override"
    assert config["model_transaction_policy"].get("decoupled", False) is False
    result = c.infer("repeat", repeat_inputs([41], [0]))
    np.testing.assert_array_equal(result.as_numpy("OUT"), [41])
    # With file overrides too (the client base64-encodes them): served from those files.
    c.load_model("repeat", config=json.dumps({**REPEAT_CONFIG, "parameters": {"origin": {"string_value": "files"}}}),
                 files={"file:1/weights.bin": b"\x00\xffbinary"})
    assert c.get_model_config("repeat")["parameters"]["origin"]["string_value"] == "files"
    np.testing.assert_array_equal(c.infer("repeat", repeat_inputs([42], [0])).as_numpy("OUT"), [42])
    # Reloaded from disk without the override: decoupled again, /infer refuses it.
    c.load_model("repeat")
    assert c.get_model_config("repeat")["model_transaction_policy"]["decoupled"] is True
    with pytest.raises(InferenceServerException) as e:
        c.infer("repeat", repeat_inputs([41], [0]))
    assert "decoupled" in e.value.message()

    with pytest.raises(InferenceServerException) as e:
        c.load_model("nope")
    assert_error(e, "400", "nope")
    with pytest.raises(InferenceServerException) as e:
        c.load_model("repeat", config="{not json")
    assert_error(e, "400", "repeat")
    assert c.is_model_ready("repeat"), "a failed reload keeps the old version serving"
    with pytest.raises(InferenceServerException) as e:
        c.load_model("repeat", config=json.dumps({**REPEAT_CONFIG, "no_such_field": 1}))
    assert_error(e, "400", "no_such_field")
    c.close()


def test_disconnect_cancels_the_request_and_the_server_stays_healthy(start_server):
    # tritonclient.http has no cancel; its asyncio client's task cancel closes the
    # connection, which Sluice takes as a cancellation (as Triton does).
    s = start_server(["--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
                      "--cpu-threads", "2"])
    c = httpclient.InferenceServerClient(s.http_url)
    c.load_model("repeat", config=json.dumps(REPEAT_CONFIG))

    def pending() -> int:
        return c.get_inference_statistics("repeat")["model_stats"][0]["inflight_request_count"]

    async def run() -> None:
        async with aiohttpclient.InferenceServerClient(s.http_url) as ac:
            inputs = [aiohttpclient.InferInput("IN", [1], "INT32"), aiohttpclient.InferInput("DELAY", [1], "UINT32")]
            inputs[0].set_data_from_numpy(np.asarray([1], np.int32))
            inputs[1].set_data_from_numpy(np.asarray([30000], np.uint32))
            task = asyncio.ensure_future(ac.infer("repeat", inputs))
            deadline = time.monotonic() + 10
            while pending() != 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert pending() == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(run())
    # The server cancels the request at once (not after its 30 s): counted as cancelled.
    start = time.monotonic()
    st = settled_stats(c, "repeat")
    assert time.monotonic() - start < 5 and st["inflight_request_count"] == 0, st
    assert st["inference_stats"]["cancel"]["count"] == 1, st
    assert st["inference_stats"]["success"]["count"] == 0, st
    # Healthy: a later request succeeds and is counted.
    np.testing.assert_array_equal(c.infer("repeat", repeat_inputs([5], [0])).as_numpy("OUT"), [5])
    assert settled_stats(c, "repeat")["inference_stats"]["success"]["count"] == 1
    c.close()
