"""Authentication and browser-facing safety through the real server (issue 19, item 6).

- --api-key (and $VLLM_API_KEY / $SLUICE_API_KEY): every HTTP route (KServe, generate,
  repository, logging, statistics, shared memory, trace, OpenAI) and every gRPC RPC x {no key,
  wrong key, right key}: 401 with `WWW-Authenticate: Bearer` / UNAUTHENTICATED, except health
  (open unless --api-key-exclude-health false); the right key reaches the handler; the key
  never appears in the log; the server keeps serving after each refusal; tritonclient and
  the OpenAI routes work with the key.
- Triton's --http-restricted-api / --grpc-restricted-protocol: 403 / PERMISSION_DENIED with
  Triton's message without the `key: value` header.
- Browser rules: the CORS simple request of the issue (text/plain POST with Origin to
  /v2/repository/models/repeat/unload) is refused on every POST route; --allowed-origins CORS
  on /v1/*: preflight, Access-Control-Allow-Origin.

The HTTP table below lists every route the server registers;
tests/unit/frontend/access_test.cc runs the same matrix over Router::Routes() enumerated
programmatically (a new route cannot escape it), and the gRPC table here is enumerated from the
service descriptor.
"""

from __future__ import annotations

import http.client
import json

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.service_pb2 as service_pb2
import tritonclient.http as httpclient

from conftest import EXAMPLES

KEY = "t0p-s3cret-api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def small_args(*extra: str) -> list[str]:
    return ["--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
            "--load-model", "identity", "--load-model", "repeat", *extra]


def http_routes() -> list[tuple[str, str]]:
    routes = [("GET", "/v2/health/live"), ("GET", "/v2/health/ready"), ("GET", "/v2"),
              ("GET", "/v2/models/stats")]
    for prefix in ("/v2/models/identity", "/v2/models/identity/versions/1"):
        routes += [("GET", prefix), ("GET", prefix + "/ready"), ("GET", prefix + "/config"),
                   ("GET", prefix + "/stats"), ("POST", prefix + "/infer"),
                   ("POST", prefix + "/generate"), ("POST", prefix + "/generate_stream")]
    for kind in ("system", "cuda"):
        root = f"/v2/{kind}sharedmemory"
        routes += [("GET", root + "/status"), ("GET", root + "/region/r/status"),
                   ("POST", root + "/region/r/register"), ("POST", root + "/region/r/unregister"),
                   ("POST", root + "/unregister")]
    for method in ("GET", "POST"):
        routes += [(method, "/v2/trace/setting"), (method, "/v2/models/identity/trace/setting"),
                   (method, "/v2/logging")]
    routes += [("POST", "/v2/repository/index"), ("POST", "/v2/repository/models/nosuch/load"),
               ("POST", "/v2/repository/models/nosuch/unload"),
               ("GET", "/v1/models"), ("POST", "/v1/completions"), ("POST", "/v1/chat/completions"),
               ("GET", "/v1/models/identity"), ("GET", "/v1/models/org/identity"), ("GET", "/health"),
               ("GET", "/version"), ("POST", "/tokenize"), ("POST", "/detokenize")]
    return routes


HEALTH = {"/v2/health/live", "/v2/health/ready", "/v2/models/identity/ready",
          "/v2/models/identity/versions/1/ready", "/health"}
GRPC_HEALTH = {"ServerLive", "ServerReady", "ModelReady"}
GRPC_METHODS = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods


def request(url: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    conn = http.client.HTTPConnection(url, timeout=30)
    headers = dict(headers or {})
    if method == "POST":
        body = b"{}" if body is None else body
        headers.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def grpc_call(url: str, method, metadata=()) -> grpc.StatusCode:
    """Calls `method` (a descriptor) with an empty request; the status code it ends with."""
    path = f"/inference.GRPCInferenceService/{method.name}"
    with grpc.insecure_channel(url) as channel:
        try:
            if method.client_streaming:
                for _ in channel.stream_stream(path)(iter([]), metadata=metadata, timeout=20):
                    pass
            else:
                channel.unary_unary(path)(b"", metadata=metadata, timeout=20)
        except grpc.RpcError as e:
            return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def assert_serving(s) -> None:
    """A real inference still works with the key, over HTTP and gRPC."""
    c = httpclient.InferenceServerClient(s.http_url)
    a = np.asarray([1, 2, 3], dtype=np.int32)
    b = np.asarray(["x", "y", "z"], dtype=np.object_)
    inputs = [httpclient.InferInput("INPUT0", [3], "INT32"), httpclient.InferInput("INPUT1", [3], "BYTES")]
    inputs[0].set_data_from_numpy(a, binary_data=True)
    inputs[1].set_data_from_numpy(b, binary_data=True)
    result = c.infer("identity", inputs, headers=AUTH)
    assert result.as_numpy("OUTPUT0").tolist() == [1, 2, 3]
    c.close()
    g = grpcclient.InferenceServerClient(s.grpc_url)
    ginputs = [grpcclient.InferInput("INPUT0", [3], "INT32"), grpcclient.InferInput("INPUT1", [3], "BYTES")]
    ginputs[0].set_data_from_numpy(a)
    ginputs[1].set_data_from_numpy(b)
    assert g.infer("identity", ginputs, headers={"authorization": f"Bearer {KEY}"}).as_numpy("OUTPUT0").tolist() == [1, 2, 3]
    g.close()


@pytest.fixture(scope="module")
def keyed(request):
    from conftest import SluiceServer
    s = SluiceServer(small_args("--api-key", KEY, "--allowed-origins", '["https://ui.example"]'))
    yield s
    s.stop()


def test_http_every_route_no_wrong_right_key(keyed):
    for method, path in http_routes():
        for label, headers in (("none", {}), ("wrong", {"Authorization": "Bearer wrong"}),
                               ("not bearer", {"Authorization": KEY}), ("right", AUTH)):
            status, hdrs, body = request(keyed.http_url, method, path, headers)
            where = f"{method} {path} key={label}: {status} {body[:200]!r}"
            if label == "right" or path in HEALTH:
                assert status not in (401, 403), where
            else:
                assert status == 401, where
                assert hdrs.get("www-authenticate") == "Bearer", where
                error = json.loads(body)["error"]
                # OpenAI's error shape on vLLM's routes (issue 20), Triton's elsewhere.
                openai_route = path.startswith("/v1/") or path in ("/tokenize", "/detokenize")
                assert isinstance(error, dict) == openai_route, where
                assert "API key" in (error["message"] if openai_route else error), where
    assert_serving(keyed)
    assert KEY not in keyed.log()


def test_grpc_every_rpc_no_wrong_right_key(keyed):
    assert len(GRPC_METHODS) >= 20
    for method in GRPC_METHODS:
        for label, metadata in (("none", ()), ("wrong", (("authorization", "Bearer wrong"),)),
                                ("right", (("authorization", f"Bearer {KEY}"),))):
            code, details = grpc_call(keyed.grpc_url, method, metadata)
            where = f"{method.name} key={label}: {code} {details}"
            if label == "right" or method.name in GRPC_HEALTH:
                assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), where
            else:
                assert code == grpc.StatusCode.UNAUTHENTICATED, where
                assert "API key" in details, where
    # grpc.health.v1 stays served while health is exempt.
    with grpc.insecure_channel(keyed.grpc_url) as channel:
        channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
    assert_serving(keyed)
    assert KEY not in keyed.log()


def test_openai_routes_with_key_and_cors(keyed):
    status, hdrs, body = request(keyed.http_url, "GET", "/v1/models", AUTH)
    assert status == 200 and "data" in json.loads(body)
    # Preflight: no key needed; allowed origin -> 204 + CORS headers; another -> 403.
    status, hdrs, _ = request(keyed.http_url, "OPTIONS", "/v1/chat/completions",
                              {"Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
                               "Access-Control-Request-Headers": "authorization,content-type"})
    assert status == 204
    assert hdrs["access-control-allow-origin"] == "https://ui.example"
    assert "POST" in hdrs["access-control-allow-methods"]
    assert hdrs["access-control-allow-headers"] == "authorization,content-type"
    status, hdrs, _ = request(keyed.http_url, "OPTIONS", "/v1/chat/completions",
                              {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "access-control-allow-origin" not in hdrs
    status, hdrs, _ = request(keyed.http_url, "GET", "/v1/models", {**AUTH, "Origin": "https://ui.example"})
    assert status == 200 and hdrs["access-control-allow-origin"] == "https://ui.example"
    # The allowed origin still cannot send a CORS simple request, a disallowed one nothing.
    for origin, ctype in (("https://ui.example", "text/plain"), ("http://evil.example", "application/json")):
        status, _, _ = request(keyed.http_url, "POST", "/v1/chat/completions",
                               {**AUTH, "Origin": origin, "Content-Type": ctype})
        assert status == 403, (origin, ctype)


def test_env_key_and_health_not_excluded(start_server, monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    s = start_server(small_args("--api-key-exclude-health", "false"))
    for path in sorted(HEALTH):
        assert request(s.http_url, "GET", path)[0] == 401, path
        assert request(s.http_url, "GET", path, AUTH)[0] == 200, path
    for method in GRPC_METHODS:
        if method.name in GRPC_HEALTH:
            assert grpc_call(s.grpc_url, method)[0] == grpc.StatusCode.UNAUTHENTICATED
            assert grpc_call(s.grpc_url, method, (("authorization", f"Bearer {KEY}"),))[0] == grpc.StatusCode.OK
    # grpc.health.v1 cannot check a key: not served then.
    with grpc.insecure_channel(s.grpc_url) as channel, pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert_serving(s)
    assert KEY not in s.log()


def test_restricted_api_and_protocol(start_server):
    s = start_server(small_args("--http-restricted-api", "model-repository,logging:Admin-Key=adm",
                                "--http-restricted-api", "statistics:stats-key=st",
                                "--grpc-restricted-protocol", "model-repository:admin-key=adm"))
    status, _, body = request(s.http_url, "POST", "/v2/repository/index")
    assert status == 403
    assert json.loads(body)["error"] == "This API is restricted, expecting header 'admin-key'"
    assert request(s.http_url, "POST", "/v2/repository/index", {"Admin-Key": "nope"})[0] == 403
    assert request(s.http_url, "POST", "/v2/repository/index", {"Admin-Key": "adm"})[0] == 200
    assert request(s.http_url, "GET", "/v2/logging")[0] == 403
    assert request(s.http_url, "GET", "/v2/logging", {"admin-key": "adm"})[0] == 200
    assert request(s.http_url, "GET", "/v2/models/stats")[0] == 403
    assert request(s.http_url, "GET", "/v2/models/stats", {"stats-key": "st"})[0] == 200
    assert request(s.http_url, "GET", "/v2/models/identity")[0] == 200  # metadata unrestricted
    by_name = {m.name: m for m in GRPC_METHODS}
    code, details = grpc_call(s.grpc_url, by_name["RepositoryIndex"])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == "This protocol is restricted, expecting header 'admin-key'"
    assert grpc_call(s.grpc_url, by_name["RepositoryIndex"], (("admin-key", "adm"),))[0] == grpc.StatusCode.OK
    assert grpc_call(s.grpc_url, by_name["ModelStatistics"])[0] == grpc.StatusCode.OK  # HTTP-only restriction
    g = grpcclient.InferenceServerClient(s.grpc_url)
    assert g.is_server_live()
    with pytest.raises(Exception, match="restricted"):
        g.get_model_repository_index()
    assert len(g.get_model_repository_index(headers={"admin-key": "adm"}).models) >= 2
    g.close()


def test_bad_restriction_is_refused_at_start(start_server):
    with pytest.raises(RuntimeError, match="unknown API category 'bogus'"):
        start_server(small_args("--http-restricted-api", "bogus:k=v"), timeout=15)
    with pytest.raises(RuntimeError, match="multiple config groups"):
        start_server(small_args("--grpc-restricted-protocol", "logging:a=1",
                                "--grpc-restricted-protocol", "trace,logging:b=2"), timeout=15)


def test_browser_simple_requests_refused_on_every_post(start_server):
    s = start_server(small_args())  # defaults: no key, no allowed origin
    # The reproduction: a page on another origin unloading a model.
    status, _, body = request(s.http_url, "POST", "/v2/repository/models/repeat/unload",
                              {"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert status == 403 and "evil.example" in json.loads(body)["error"]
    assert request(s.http_url, "GET", "/v2/models/repeat/ready")[0] == 200
    for method, path in http_routes():
        if method != "POST":
            continue
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "application/json"):
            for origin in ("http://evil.example", "null"):
                status, _, body = request(s.http_url, "POST", path, {"Origin": origin, "Content-Type": ctype})
                assert status == 403, (path, ctype, origin, body)
    # Clients that are not browsers send no Origin: curl -d (form-urlencoded) keeps working.
    status, _, body = request(s.http_url, "POST", "/v2/repository/index",
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    assert request(s.http_url, "GET", "/v2/models/repeat/ready", {"Origin": "http://evil.example"})[0] == 200
    assert request(s.http_url, "GET", "/v2/health/live")[0] == 200


def test_real_clients_with_the_key(keyed, tmp_path):
    """perf_analyzer (-H) over HTTP and gRPC, and the OpenAI SDK (api_key=), with the key."""
    import subprocess

    import openai

    from conftest import VENV_BIN
    for protocol, url in (("http", keyed.http_url), ("grpc", keyed.grpc_url)):
        base = [str(VENV_BIN / "perf_analyzer"), "-m", "identity", "-u", url, "-i", protocol,
                "--shape", "INPUT0:4", "--shape", "INPUT1:4", "--request-count", "8"]
        name = "authorization" if protocol == "grpc" else "Authorization"  # gRPC metadata is lower-case
        ok = subprocess.run([*base, "-H", f"{name}: Bearer {KEY}"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        assert ok.returncode == 0, ok.stdout[-3000:]
        refused = subprocess.run(base, cwd=tmp_path, text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=120)
        assert refused.returncode != 0, refused.stdout[-3000:]
    client = openai.OpenAI(base_url=f"http://{keyed.http_url}/v1", api_key=KEY)
    client.models.list()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"http://{keyed.http_url}/v1", api_key="wrong").models.list()
    assert KEY not in keyed.log()
