"""Triton's perf_analyzer (PyPI perf-analyzer, .venv/bin/perf_analyzer) against Sluice, unchanged.

What a Triton user runs: `identity` over HTTP (binary and JSON tensors) and over gRPC with
random inputs, and the demo LLM over gRPC ModelStreamInfer (--streaming; the model is
decoupled) with the vLLM contract's inputs from an --input-data file. Every run must exit 0
(perf_analyzer exits non-zero when a request fails), its -f CSV must hold one row with the
server-side columns (the statistics extension was read every window), and its
--profile-export-file must hold exactly the requested number of requests, each answered.

Regression found by perf_analyzer: Sluice counted a successful request in `success` and
`compute_infer` only. perf_analyzer picks the model version to report by the growth of its
`queue` count ("failed to find the requested model version" without -x) and aborts when the
compute_input / compute_infer / compute_output counts differ ("Server side statistics compute
counts must be the same"); Triton counts each successful request once in every phase.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SOURCE_DIR, VENV_BIN

PERF_ANALYZER = VENV_BIN / "perf_analyzer"
GREEDY = json.loads((SOURCE_DIR / "tests" / "fixtures" / "demo_greedy.json").read_text())
PHASES = ("success", "queue", "compute_input", "compute_infer", "compute_output")


@dataclass
class PaRun:
    output: str  # stdout and stderr
    rows: list[dict[str, str]]  # the -f CSV
    requests: list[dict]  # the profile export's one experiment


def perf_analyzer(tmp_path: Path, *args: str, timeout: float = 120) -> PaRun:
    """Runs perf_analyzer with -f and --profile-export-file in tmp_path; fails unless it exits 0."""
    assert PERF_ANALYZER.exists(), f"{PERF_ANALYZER} is missing: run scripts/setup.sh"
    csv_path, export_path = tmp_path / "pa.csv", tmp_path / "pa_export.json"
    cmd = [str(PERF_ANALYZER), *args, "-f", str(csv_path), "--profile-export-file", str(export_path)]
    p = subprocess.run(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"{' '.join(cmd)}\nexit {p.returncode}:\n{p.stdout[-4000:]}"
    assert "error" not in p.stdout.lower(), p.stdout[-4000:]
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    # BYTES tensors are written as their raw serialization (4-byte lengths included), which is
    # not always valid UTF-8.
    experiments = json.loads(export_path.read_bytes().decode("utf-8", "surrogateescape"))["experiments"]
    assert len(experiments) == 1, experiments
    return PaRun(p.stdout, rows, experiments[0]["requests"])


def stats(server, model: str) -> dict:
    with urllib.request.urlopen(f"http://{server.http_url}/v2/models/{model}/stats", timeout=10) as r:
        (s,) = json.loads(r.read())["model_stats"]
    return s["inference_stats"]


def check_summary(run: PaRun, concurrency: int, requests: int) -> dict[str, str]:
    """The CSV's one row and the text report agree with the load and carry server statistics."""
    assert len(run.rows) == 1, run.rows
    row = run.rows[0]
    assert int(row["Concurrency"]) == concurrency
    assert float(row["Inferences/Second"]) > 0, row
    # Present only when perf_analyzer read the statistics extension at both window ends.
    assert int(row["Server Compute Infer"]) > 0, row
    assert re.search(rf"Client:\s+Request count: {requests}\b", run.output), run.output
    server = re.search(r"Server:\s+Inference count: (\d+)\s+Execution count: (\d+)\s+"
                       r"Successful request count: (\d+)", run.output)
    assert server, run.output
    inference, execution, success = map(int, server.groups())
    assert 0 < success <= requests and inference == execution == success, server.group(0)
    assert len(run.requests) == requests
    return row


@pytest.mark.parametrize("protocol,tensor_format", [("http", "binary"), ("http", "json"), ("grpc", "binary")])
def test_identity_echoes_every_request(server, tmp_path, protocol, tensor_format):
    url = server.http_url if protocol == "http" else server.grpc_url
    # perf_analyzer's JSON tensor writer sends only a tensor's first element ("shape":[16],
    # "data":[x]), which Triton refuses as well: one element per tensor in that format.
    n = 1 if tensor_format == "json" else None
    shapes = ["--shape", f"INPUT0:{n or 16}", "--shape", f"INPUT1:{n or 4}"]
    fmt = ["--input-tensor-format", tensor_format, "--output-tensor-format", tensor_format]
    if protocol == "grpc":
        fmt = []
    before = stats(server, "identity")
    run = perf_analyzer(tmp_path, "-m", "identity", "-u", url, "-i", protocol, *shapes, *fmt,
                        "--concurrency-range", "2", "--request-count", "100")
    after = stats(server, "identity")
    check_summary(run, concurrency=2, requests=100)
    for r in run.requests:
        assert len(r["response_timestamps"]) == 1, r
        (out,) = r["response_outputs"]
        assert out["OUTPUT0"] == r["request_inputs"]["INPUT0"]
        assert out["OUTPUT1"] == r["request_inputs"]["INPUT1"]
    assert after["success"]["count"] - before["success"]["count"] == 100
    assert after["fail"]["count"] == before["fail"]["count"]


def test_demo_llm_streams_through_model_stream_infer(server, tmp_path):
    max_tokens, requests = 16, 8
    sampling = {"max_tokens": max_tokens, "min_tokens": max_tokens, "ignore_eos": True, "temperature": 0}
    data = {"data": [{
        "text_input": [GREEDY["prompt"]],
        "stream": [True],
        "exclude_input_in_output": [True],
        "sampling_parameters": [json.dumps(sampling)],
    }]}
    (tmp_path / "input.json").write_text(json.dumps(data))
    run = perf_analyzer(tmp_path, "-m", "sluice-demo", "-u", server.grpc_url, "-i", "grpc", "--streaming",
                        "--async", "--input-data", str(tmp_path / "input.json"), "--concurrency-range", "2",
                        "--request-count", str(requests))
    assert "Detected decoupled model" in run.output
    row = check_summary(run, concurrency=2, requests=requests)
    assert float(row["Response Throughput"]) > float(row["Inferences/Second"]), row
    for r in run.requests:
        assert r["request_inputs"]["sampling_parameters"] == json.dumps(sampling)
        # One response per token (the demo's greedy text is ASCII: no bytes held back), each
        # carrying text; together the greedy continuation.
        assert len(r["response_timestamps"]) == max_tokens, r
        texts = [out["text_output"] for out in r["response_outputs"]]
        assert all(texts), texts
        assert GREEDY["output_text"].startswith("".join(texts)), texts
        assert r["response_timestamps"] == sorted(r["response_timestamps"])
        assert r["response_timestamps"][0] > r["timestamp"]


def test_statistics_count_each_success_in_every_phase(server, tmp_path):
    """Regression: without -x, perf_analyzer needs the queue count to grow and equal compute
    counts (Triton's invariant); the failure was "failed to find the requested model version".
    Runs last, so that both models have served requests."""
    perf_analyzer(tmp_path, "-m", "identity", "-u", server.grpc_url, "-i", "grpc", "--shape", "INPUT0:4",
                  "--shape", "INPUT1:1", "--concurrency-range", "1", "--request-count", "20")
    for model in ("identity", "sluice-demo"):
        s = stats(server, model)
        counts = {phase: s[phase]["count"] for phase in PHASES}
        assert counts["success"] > 0 and len(set(counts.values())) == 1, (model, counts)
    s = stats(server, "identity")
    assert s["success"]["count"] >= 20
    # Queue: arrival until the backend started the request (issue 20); the rest is compute.
    assert s["queue"]["ns"] + s["compute_infer"]["ns"] == s["success"]["ns"] > 0
    assert s["queue"]["ns"] > 0 and s["compute_infer"]["ns"] > 0
