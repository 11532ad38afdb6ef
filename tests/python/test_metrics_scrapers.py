"""/metrics against the consumers that read it in production (issue 20): a real Prometheus server
scrapes Sluice with two LLM models loaded (the demo model under two names), and answers every PromQL
query of vLLM's Grafana dashboard and the Gateway API Inference Extension endpoint picker's gauges for
both models; `promtool check metrics` parses the page; prometheus_client's parser types every counter;
and a Go-strict reading (one HELP/TYPE per family, TYPE before samples, a family's samples together,
histograms consistent) passes. Also: the same page on the HTTP port (as vLLM serves it), and Triton's
queue duration, pending count and first-response histogram measured as Triton defines them.

Prometheus and promtool are Debian's `prometheus` package (scripts/setup.sh).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import EXAMPLES, SluiceServer

MODELS = ("llm-a", "llm-b")

# Every query of vLLM's Grafana dashboard (vllm-project/vllm,
# examples/online_serving/prometheus_grafana/grafana.json), with its variables filled in:
# $model_name per model, $__rate_interval as Grafana would for a short scrape interval.
DASHBOARD_QUERIES = [
    'histogram_quantile(0.99, sum by(le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.95, sum by(le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.9, sum by(le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.5, sum by(le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="$m"}[$r])))',
    'rate(vllm:e2e_request_latency_seconds_sum{model_name="$m"}[$r])\n/\n'
    'rate(vllm:e2e_request_latency_seconds_count{model_name="$m"}[$r])',
    'rate(vllm:prompt_tokens_total{model_name="$m"}[$r])',
    'rate(vllm:generation_tokens_total{model_name="$m"}[$r])',
    'histogram_quantile(0.99, sum by(le) (rate(vllm:time_per_output_token_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.95, sum by(le) (rate(vllm:time_per_output_token_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.9, sum by(le) (rate(vllm:time_per_output_token_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.5, sum by(le) (rate(vllm:time_per_output_token_seconds_bucket{model_name="$m"}[$r])))',
    'rate(vllm:time_per_output_token_seconds_sum{model_name="$m"}[$r])\n/\n'
    'rate(vllm:time_per_output_token_seconds_count{model_name="$m"}[$r])',
    'vllm:num_requests_running{model_name="$m"}',
    'vllm:num_requests_waiting{model_name="$m"}',
    'histogram_quantile(0.99, sum by(le) (rate(vllm:time_to_first_token_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.95, sum by(le) (rate(vllm:time_to_first_token_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.9, sum by(le) (rate(vllm:time_to_first_token_seconds_bucket{model_name="$m"}[$r])))',
    'histogram_quantile(0.5, sum by(le) (rate(vllm:time_to_first_token_seconds_bucket{model_name="$m"}[$r])))',
    'rate(vllm:time_to_first_token_seconds_sum{model_name="$m"}[$r])\n/\n'
    'rate(vllm:time_to_first_token_seconds_count{model_name="$m"}[$r])',
    'vllm:gpu_cache_usage_perc{model_name="$m"}',
    'sum by(le) (increase(vllm:request_prompt_tokens_bucket{model_name="$m"}[$r]))',
    'sum by(le) (increase(vllm:request_generation_tokens_bucket{model_name="$m"}[$r]))',
    'sum by(finished_reason) (increase(vllm:request_success_total{model_name="$m"}[$r]))',
    'rate(vllm:request_queue_time_seconds_sum{model_name="$m"}[$r])',
    'rate(vllm:request_prefill_time_seconds_sum{model_name="$m"}[$r])',
    'rate(vllm:request_decode_time_seconds_sum{model_name="$m"}[$r])',
    'rate(vllm:request_max_num_generation_tokens_sum{model_name="$m"}[$r])',
]
# The dashboard's model_name variable: label_values({__name__=~"vllm:.*"},model_name).
DASHBOARD_VARIABLE_MATCH = '{__name__=~"vllm:.*"}'

# What the endpoint picker (gateway-api-inference-extension) reads from a vLLM server: the queue,
# the KV cache usage (kv_cache_usage_perc now, gpu_cache_usage_perc before), the LoRA info gauge.
PICKER_QUERIES = [
    'vllm:num_requests_waiting{model_name="$m"}',
    'vllm:kv_cache_usage_perc{model_name="$m"}',
    'vllm:gpu_cache_usage_perc{model_name="$m"}',
    'vllm:lora_requests_info{model_name="$m"}',
]

# promtool's lint complains about names that Triton and vLLM fixed long ago; Sluice keeps their
# names because dashboards and pickers query them. Only these lint kinds are accepted.
ACCEPTED_LINT = [
    (re.compile(r"^vllm:"), "should not contain ':'"),
    (re.compile(r"^nv_"), 'should have "_total" suffix'),
    (re.compile(r"^nv_"), "should not contain abbreviated units"),
    (re.compile(r"^nv_"), "should not include type"),
    (re.compile(r"^nv_"), 'should not have "_count" suffix'),
    (re.compile(r"^nv_"), "use base unit"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10) -> tuple[int, str, dict]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode(), dict(r.headers)


def complete(server: SluiceServer, model: str, max_tokens: int, stream: bool = False) -> None:
    body = json.dumps({"model": model, "prompt": "Once upon a time", "max_tokens": max_tokens,
                       "ignore_eos": True, "stream": stream}).encode()
    req = urllib.request.Request(f"http://{server.http_url}/v1/completions", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        r.read()


def make_repository(root: Path) -> Path:
    """The demo model twice, under two names."""
    repo = root / "repo"
    for name in MODELS:
        shutil.copytree(EXAMPLES / "sluice-demo" / "1", repo / name / "1")
        config = (EXAMPLES / "sluice-demo" / "config.pbtxt").read_text()
        (repo / name / "config.pbtxt").write_text(config.replace('name: "sluice-demo"', f'name: "{name}"'))
    return repo


@pytest.fixture(scope="module")
def sluice(tmp_path_factory, request):
    repo = make_repository(tmp_path_factory.mktemp("metrics"))
    args = ["--model-repository", str(repo), "--model-control-mode", "explicit", "--cpu-threads", "2"]
    for name in MODELS:
        args += ["--load-model", name]
    s = SluiceServer(args)
    for name in MODELS:  # traffic for every series: a few requests each, streamed and not
        for i in range(3):
            complete(s, name, 8 + i, stream=i % 2 == 1)
    time.sleep(1.2)  # the stubs' metrics come with their heartbeats
    yield s
    s.stop()
    if getattr(request.session, "testsfailed", 0):
        print("---- sluice log (end) ----\n" + s.log()[-6000:])


@pytest.fixture(scope="module")
def page(sluice) -> str:
    status, text, headers = get(f"http://{sluice.metrics_url}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return text


def parse_strict(text: str) -> dict[str, str]:
    """Reads the page as Go's text parser does, and stricter; returns family -> type. Fails on a second
    HELP or TYPE for a family, a sample before its family's TYPE, a family whose samples are split by
    another family, a duplicate series, and inconsistent histograms (buckets not cumulative, no +Inf
    bucket, _count different from +Inf, a series without _sum or _count)."""
    types: dict[str, str] = {}
    helps: set[str] = set()
    finished: set[str] = set()
    current = None
    series: set[str] = set()
    hist: dict[str, dict] = {}
    sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
    for n, line in enumerate(text.splitlines(), 1):
        where = f"line {n}: {line}"
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, "second HELP, " + where
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name not in types, "second TYPE, " + where
            assert name not in finished and name != current, "TYPE after samples, " + where
            types[name] = typ
        elif line.startswith("#") or not line:
            continue
        else:
            m = sample_re.match(line)
            assert m, "bad sample, " + where
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                base = name[: -len(suffix)]
                if name.endswith(suffix) and types.get(base) == "histogram":
                    family = base
            assert family in types, "sample before its TYPE, " + where
            if family != current:
                assert family not in finished, "family split by another, " + where
                if current:
                    finished.add(current)
                current = family
            assert name + labels not in series, "duplicate series, " + where
            series.add(name + labels)
            if types[family] == "histogram":
                key_labels = re.sub(r',?le="[^"]*"', "", labels).replace("{,", "{").replace("{}", "")
                h = hist.setdefault(family + key_labels, {"buckets": [], "sum": None, "count": None})
                if name.endswith("_bucket"):
                    h["buckets"].append((re.search(r'le="([^"]*)"', labels).group(1), float(value)))
                elif name.endswith("_sum"):
                    h["sum"] = float(value)
                else:
                    h["count"] = float(value)
    for key, h in hist.items():
        counts = [c for _, c in h["buckets"]]
        assert counts == sorted(counts), f"{key}: buckets not cumulative"
        assert h["buckets"] and h["buckets"][-1][0] == "+Inf", f"{key}: no +Inf bucket"
        assert h["sum"] is not None and h["count"] is not None, f"{key}: _sum or _count missing"
        assert h["count"] == counts[-1], f"{key}: _count {h['count']} != +Inf bucket {counts[-1]}"
    return types


def test_the_strict_reader_can_fail():
    for bad in ['# TYPE a gauge\na 1\n# TYPE a gauge\n',
                '# TYPE a counter\na_total 1\n',
                '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n',
                '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
                '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n']:
        with pytest.raises(AssertionError):
            parse_strict(bad)


def test_page_reads_as_go_reads_it(page):
    types = parse_strict(page)
    for family in ("vllm:num_requests_running", "vllm:prompt_tokens_total", "vllm:time_to_first_token_seconds",
                   "nv_inference_request_success", "nv_inference_first_response_histogram_ms"):
        assert family in types, family
    # Both models under one family each.
    for model in MODELS:
        assert f'vllm:num_requests_running{{model_name="{model}",engine="0"}}' in page


def test_promtool_parses_the_page(page):
    run = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True)
    out = (run.stdout + run.stderr).strip()
    assert run.returncode in (0, 3), out  # 1: the page did not parse; 3: lint findings only
    assert "error" not in out.lower(), out
    for line in out.splitlines():
        assert any(name.match(line) and words in line for name, words in ACCEPTED_LINT), line


def test_python_parser_types_every_counter(page):
    families = list(text_string_to_metric_families(page))
    by_name = {f.name: f for f in families}
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", page, re.M))
    assert not [f.name for f in families if f.type in ("unknown", "untyped")]
    for name, typ in declared.items():
        parsed = name[: -len("_total")] if typ == "counter" and name.endswith("_total") else name
        assert parsed in by_name, name
        assert by_name[parsed].type == typ, (name, by_name[parsed].type)
        assert by_name[parsed].samples or typ != "counter" or name.startswith("nv_gpu"), name
    for counter in ("vllm:prompt_tokens", "vllm:generation_tokens", "vllm:request_success",
                    "vllm:num_preemptions", "vllm:prefix_cache_queries", "vllm:prefix_cache_hits"):
        assert by_name[counter].type == "counter", counter
        models = {s.labels["model_name"] for s in by_name[counter].samples}
        assert models == set(MODELS), (counter, models)


def test_http_port_serves_the_same_page(sluice, page):
    status, text, headers = get(f"http://{sluice.http_url}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert re.findall(r"^# (?:HELP|TYPE) .*$", text, re.M) == re.findall(r"^# (?:HELP|TYPE) .*$", page, re.M)
    series = lambda t: [line.rsplit(" ", 1)[0] for line in t.splitlines() if line and not line.startswith("#")]
    assert series(text) == series(page)


def test_http_port_metrics_take_the_api_key_metrics_port_stays_open(start_server):
    """On the HTTP port /metrics is a route like the others (category statistics): with --api-key it
    takes the key; the metrics port stays open for scrapers, as Triton's."""
    s = start_server(["--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
                      "--load-model", "identity", "--api-key", "sesame"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(f"http://{s.http_url}/metrics")
    assert refused.value.code == 401
    req = urllib.request.Request(f"http://{s.http_url}/metrics", headers={"Authorization": "Bearer sesame"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and b"# TYPE nv_inference_count counter" in r.read()
    status, text, _ = get(f"http://{s.metrics_url}/metrics")
    assert status == 200 and "# TYPE nv_inference_count counter" in text


def test_triton_queue_and_first_response_are_measured(page):
    for model in MODELS:
        labels = f'{{model="{model}",version="1"}}'
        queue = float(re.search(rf"^nv_inference_queue_duration_us{re.escape(labels)} (\S+)$", page, re.M).group(1))
        assert queue > 0, model  # stayed 0 before (issue 20)
        first = re.search(rf"^nv_inference_first_response_histogram_ms_count{re.escape(labels)} (\S+)$", page, re.M)
        assert first and float(first.group(1)) == 3, model
        pending = re.search(rf"^nv_inference_pending_request_count{re.escape(labels)} (\S+)$", page, re.M)
        assert pending and float(pending.group(1)) == 0, model


def test_a_running_request_is_not_pending(sluice):
    """Triton's pending count is of requests waiting, not running: once a stream has its first token,
    its request is running (the engine reports the start before any token), so nothing is pending.
    Before, a running request counted as pending."""
    body = json.dumps({"model": MODELS[0], "prompt": "Once", "max_tokens": 400, "ignore_eos": True,
                       "stream": True}).encode()
    req = urllib.request.Request(f"http://{sluice.http_url}/v1/completions", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.readline().startswith(b"data: ")  # the first token: the request runs
        _, text, _ = get(f"http://{sluice.metrics_url}/metrics")
        r.read()
    labels = f'{{model="{MODELS[0]}",version="1"}}'
    pending = re.search(rf"^nv_inference_pending_request_count{re.escape(labels)} (\S+)$", text, re.M)
    assert pending and float(pending.group(1)) == 0, text


class Prometheus:
    """Debian's `prometheus` on a free loopback port, scraping `target` every second."""

    def __init__(self, workdir: Path, targets: list[str]):
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: sluice\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.log = []
        threading.Thread(target=lambda: self.log.extend(self.proc.stdout), daemon=True).start()

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        _, text, _ = get(url)
        body = json.loads(text)
        assert body["status"] == "success", body
        return body["data"]

    def wait_scraped(self, scrapes: int, timeout: float = 60) -> None:
        """Until every target was scraped healthy at least `scrapes` times; a scrape error fails."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, b"".join(self.log).decode()[-3000:]
            assert time.monotonic() < deadline, b"".join(self.log).decode()[-3000:]
            try:
                targets = self.api("targets")["activeTargets"]
                counts = [self.api("query", query=f'count_over_time(up{{instance="{t["labels"]["instance"]}"}}[5m])')
                          ["result"] for t in targets]
            except OSError:  # not listening yet
                time.sleep(0.3)
                continue
            errors = [t["lastError"] for t in targets if t["lastError"]]
            assert not errors, errors
            if (targets and all(t["health"] == "up" for t in targets)
                    and all(c and float(c[0]["value"][1]) >= scrapes for c in counts)):
                return
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def prometheus(sluice, tmp_path_factory):
    if shutil.which("prometheus") is None:
        pytest.fail("Debian's prometheus is not installed: run scripts/setup.sh")
    p = Prometheus(tmp_path_factory.mktemp("prometheus"), [sluice.metrics_url, sluice.http_url])
    p.wait_scraped(2)
    for model in MODELS:  # traffic between scrapes, so that rate() and increase() have something
        for i in range(2):
            complete(sluice, model, 6 + i)
    time.sleep(1.2)  # heartbeats carry the new values
    p.wait_scraped(6)
    yield p
    p.stop()


def test_prometheus_scrapes_both_ports_healthy(prometheus):
    targets = prometheus.api("targets")["activeTargets"]
    assert len(targets) == 2
    for t in targets:
        assert t["health"] == "up" and t["lastError"] == "", t


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("query", DASHBOARD_QUERIES + PICKER_QUERIES)
def test_dashboard_and_picker_queries_return_series(prometheus, query, model):
    promql = query.replace("$m", model).replace("$r", "1m")
    result = prometheus.api("query", query=promql)["result"]
    assert result, f"no series for {promql}"


def test_dashboard_model_variable_lists_both_models(prometheus):
    values = prometheus.api("label/model_name/values", **{"match[]": DASHBOARD_VARIABLE_MATCH})
    assert set(MODELS) <= set(values), values
