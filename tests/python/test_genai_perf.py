"""Triton's genai-perf (PyPI genai-perf, driving .venv/bin/perf_analyzer) against Sluice, unchanged.

The demo LLM through the OpenAI API (chat and completions, streamed; completions also not
streamed), through Triton's vLLM contract over gRPC (`--endpoint-type kserve --backend vllm`,
what older genai-perf spelled `--service-kind triton --backend vllm`) and through Triton's HTTP
generate extension (`--endpoint-type generate`), with the demo's own tokenizer folder
(offline) and small synthetic prompts. Assertions come from genai-perf's
JSON export (request count, token counts, throughput, TTFT) and from the perf_analyzer export
it leaves beside it (every request answered, no error in any response). Everything genai-perf
writes goes under the test's temporary directory (its working directory and --artifact-dir).

Regression found by genai-perf: Sluice's HTTP server left Nagle's algorithm on, so on a kept-alive
connection every SSE event waited for the client's delayed ACK (40 ms) and a stream's tokens
arrived together at its end (TTFT equal to the request latency, ITL ~0).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, VENV_BIN

TOKENIZER = EXAMPLES / "sluice-demo" / "1" / "model"
INPUT_TOKENS, OUTPUT_TOKENS, REQUESTS, CONCURRENCY = 24, 12, 8, 2


def genai_perf(tmp_path: Path, url: str, *args: str, timeout: float = 180) -> tuple[dict, list[dict]]:
    """Runs `genai-perf profile` on the demo model; returns its JSON export and the requests of
    perf_analyzer's export."""
    exe = VENV_BIN / "genai-perf"
    assert exe.exists() and (VENV_BIN / "perf_analyzer").exists(), "run scripts/setup.sh"
    artifacts = tmp_path / "artifacts"
    cmd = [
        str(exe), "profile", "-m", "sluice-demo", "-u", url, "--tokenizer", str(TOKENIZER),
        "--synthetic-input-tokens-mean", str(INPUT_TOKENS), "--synthetic-input-tokens-stddev", "0",
        "--output-tokens-mean", str(OUTPUT_TOKENS), "--output-tokens-stddev", "0",
        "--concurrency", str(CONCURRENCY), "--request-count", str(REQUESTS), "--warmup-request-count", "2",
        "--random-seed", "7", "--artifact-dir", str(artifacts), *args,
    ]
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", NO_PROXY="127.0.0.1,localhost")
    p = subprocess.run(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"{' '.join(cmd)}\nexit {p.returncode}:\n{p.stdout[-6000:]}"
    (report,) = artifacts.glob("*/profile_export_genai_perf.json")
    experiments = json.loads((report.parent / "profile_export.json").read_text())["experiments"]
    assert len(experiments) == 1
    return json.loads(report.read_text()), experiments[0]["requests"]


def check_report(report: dict, streaming: bool) -> None:
    assert report["request_count"]["avg"] == REQUESTS, report["request_count"]
    assert report["request_throughput"]["avg"] > 0
    assert report["output_token_throughput"]["avg"] > 0
    assert abs(report["input_sequence_length"]["avg"] - INPUT_TOKENS) <= 1, report["input_sequence_length"]
    # genai-perf counts output tokens by re-tokenizing the text: within a token or two of the
    # OUTPUT_TOKENS that ignore_eos / min_tokens make the server generate (greedy where the
    # endpoint lets genai-perf set a temperature, so that the texts are the same every run).
    osl = report["output_sequence_length"]
    assert osl["min"] >= OUTPUT_TOKENS - 3 and osl["max"] <= OUTPUT_TOKENS + 3, osl
    assert report["request_latency"]["min"] > 0
    if streaming:
        ttft = report["time_to_first_token"]
        assert 0 < ttft["avg"] <= report["request_latency"]["avg"], (ttft, report["request_latency"])
        assert report["inter_token_latency"]["avg"] > 0


def sse_events(response: str) -> list[str]:
    return [line[len("data: "):] for line in response.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("endpoint,streaming", [("chat", True), ("completions", True), ("completions", False)])
def test_openai_endpoints(server, tmp_path, endpoint, streaming):
    report, requests = genai_perf(
        tmp_path, server.http_url, "--endpoint-type", endpoint, *(["--streaming"] if streaming else []),
        "--extra-inputs", "ignore_eos:true", "--extra-inputs", f"min_tokens:{OUTPUT_TOKENS}",
        "--extra-inputs", "temperature:0")
    check_report(report, streaming)
    assert len(requests) == REQUESTS
    for r in requests:
        assert r["response_outputs"], r
        events = [e for out in r["response_outputs"] for e in (sse_events(out["response"]) if streaming
                                                              else [out["response"]])]
        if streaming:
            assert events[-1] == "[DONE]", events
            chunks = [json.loads(e) for e in events[:-1]]
            assert not any("error" in c for c in chunks), chunks  # an in-band error event
            assert chunks[-1]["choices"][0]["finish_reason"] == "length", chunks[-1]
        else:
            (body,) = [json.loads(e) for e in events]
            assert body["usage"]["completion_tokens"] == OUTPUT_TOKENS, body["usage"]


def test_triton_vllm_contract_over_grpc(server, tmp_path):
    # genai-perf sends sampling_parameters {"max_tokens": "12", "min_tokens": "12"} (numbers as
    # strings, which Triton's vLLM backend converts) and exclude_input_in_output: true.
    report, requests = genai_perf(tmp_path, server.grpc_url, "--endpoint-type", "kserve", "--backend", "vllm",
                                  "--streaming", "--output-tokens-mean-deterministic")
    check_report(report, streaming=True)
    assert len(requests) == REQUESTS
    for r in requests:
        assert json.loads(r["request_inputs"]["sampling_parameters"]) == {
            "max_tokens": str(OUTPUT_TOKENS), "min_tokens": str(OUTPUT_TOKENS)}
        assert r["request_inputs"]["stream"] is True
        # One delta per generated token (as Triton's vLLM backend: a token that ends inside a
        # UTF-8 character gives an empty delta).
        assert len(r["response_outputs"]) == OUTPUT_TOKENS, r
        assert "".join(out["text_output"] for out in r["response_outputs"]).strip()


def test_triton_generate_endpoint(server, tmp_path):
    # `--endpoint-type generate` posts {"text_input": [...], "max_tokens": N, <extra inputs>}
    # to /v2/models/sluice-demo/generate: keys naming inputs fill them, the rest become request
    # parameters. Without exclude_input_in_output the vLLM contract returns the prompt too.
    report, requests = genai_perf(
        tmp_path, server.http_url, "--endpoint-type", "generate", "--extra-inputs", "exclude_input_in_output:true",
        "--extra-inputs", "return_num_output_tokens:true", "--extra-inputs", "ignore_eos:true",
        "--extra-inputs", f"min_tokens:{OUTPUT_TOKENS}", "--extra-inputs", "temperature:0")
    check_report(report, streaming=False)
    assert len(requests) == REQUESTS
    for r in requests:
        (out,) = r["response_outputs"]
        body = json.loads(out["response"])
        assert "error" not in body, body
        assert body["model_name"] == "sluice-demo" and body["text_output"], body
        assert body["num_output_tokens"] == OUTPUT_TOKENS, body


def test_sse_events_on_a_kept_alive_connection_are_sent_at_once(server):
    """Regression: without TCP_NODELAY, from the second request of a connection on, each SSE
    event waited for the client's delayed ACK (>= 40 ms), so the first event came >= 40 ms late.
    The client here writes each request in one segment with TCP_NODELAY, as libcurl does."""
    host, port = server.http_url.split(":")
    body = json.dumps({"model": "sluice-demo", "prompt": "Once upon a time", "max_tokens": 8, "stream": True,
                       "ignore_eos": True}).encode()
    request = (f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    first_event_ms = []
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(6):
            start = time.monotonic()
            s.sendall(request)
            received, first = b"", None
            while not received.endswith(b"0\r\n\r\n"):  # the chunked reply's last chunk
                chunk = s.recv(65536)
                assert chunk, received
                received += chunk
                if first is None and b"data: {" in received:
                    first = (time.monotonic() - start) * 1000
            assert b"data: [DONE]" in received, received
            first_event_ms.append(first)
    # The first request of a connection never showed the delay; the later ones always did.
    assert statistics.median(first_event_ms[1:]) < 30, first_event_ms
