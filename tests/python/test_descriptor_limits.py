"""Descriptor exhaustion (issue 19, items 1 and 3): idle HTTP connections are capped so they
cannot take the descriptors the gRPC listener needs, an accept that fails for want of a
descriptor is retried after a pause instead of spinning a core, and liveness says when a
listener stopped accepting for good. Loopback only, bounded."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import grpc
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import EXAMPLES


def repository_args(*extra: str) -> list[str]:
    return ["--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
            "--load-model", "identity", *extra]


def open_idle(port: int, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        out.append(s)
    return out


def http_works(server) -> bool:
    try:
        return httpclient.InferenceServerClient(server.http_url, connection_timeout=3,
                                                network_timeout=3).is_server_live()
    except Exception:  # noqa: BLE001 - a refused or reset connection is the answer
        return False


def test_idle_http_connections_cannot_starve_grpc(start_server):
    server = start_server(repository_args("--http-max-connections", "64"), max_open_files=512)
    grpc_client = grpcclient.InferenceServerClient(server.grpc_url)
    idle = open_idle(server.ports["http"], 600)
    try:
        time.sleep(0.5)
        assert grpc_client.is_server_live(client_timeout=5)
        assert grpc_client.is_model_ready("identity", client_timeout=5)
        # The cap holds while they are open: a new HTTP client is refused, not queued forever.
        assert not http_works(server)
        before = server.cpu_seconds()
        time.sleep(1.0)
        assert server.cpu_seconds() - before < 0.3, "the server spins while at its connection cap"
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while not http_works(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http_works(server)
    assert grpc_client.is_server_live(client_timeout=5)


def fill_with_grpc_connections(url: str, most: int = 200) -> list[grpc.Channel]:
    """Opens gRPC connections (uncapped) until the server has no descriptor for another."""
    channels = []
    for i in range(most):
        ch = grpc.insecure_channel(url, options=[("grpc.use_local_subchannel_pool", 1), ("sluice.test.channel", i)])
        try:
            grpc.channel_ready_future(ch).result(timeout=1)
        except grpc.FutureTimeoutError:
            ch.close()
            break
        channels.append(ch)
    return channels


def test_accept_waits_instead_of_spinning_when_descriptors_run_out(start_server):
    # gRPC connections take every descriptor; HTTP's accept then fails with EMFILE.
    server = start_server(repository_args(), max_open_files=160)
    channels = []
    try:
        channels = fill_with_grpc_connections(server.grpc_url)
        pending = open_idle(server.ports["http"], 8)  # queued in the backlog: accept fails
        try:
            time.sleep(0.3)
            before = server.cpu_seconds()
            time.sleep(1.0)
            used = server.cpu_seconds() - before
            assert used < 0.3, f"{used:.2f} s of CPU in 1 s: the HTTP accept loop spins on EMFILE"
        finally:
            for s in pending:
                s.close()
    finally:
        for ch in channels:
            ch.close()
    # Descriptors back: HTTP serves again (the retried accept picks connections up).
    deadline = time.monotonic() + 10
    while not http_works(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http_works(server)


def http_live_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_liveness_tells_whether_the_grpc_listener_still_accepts(start_server):
    # Item 1: after one accept4() EMFILE, Debian's gRPC 1.51 never accepts again, and
    # /v2/health/live said 200 regardless. Exhaust descriptors with gRPC connections, give them
    # back, and check that liveness (which probes every listener) matches what a new gRPC
    # client sees. (On this gRPC the listener stays dead: live must say so.)
    server = start_server(repository_args("--listener-check-interval-ms", "200"), max_open_files=160)
    channels = fill_with_grpc_connections(server.grpc_url)
    time.sleep(1.0)  # the probes fail meanwhile: no descriptor for them either
    for ch in channels:
        ch.close()

    def grpc_answers() -> bool:
        try:
            return grpcclient.InferenceServerClient(server.grpc_url).is_server_live(client_timeout=2)
        except InferenceServerException:
            return False

    time.sleep(2.0)  # a few probe periods with the descriptors back
    answers = grpc_answers()
    deadline = time.monotonic() + 5
    status = http_live_status(server.ports["http"])
    while (status == 200) != answers and time.monotonic() < deadline:
        time.sleep(0.2)
        status = http_live_status(server.ports["http"])
    assert (status == 200) == answers, f"gRPC {'answers' if answers else 'is dead'} but live says {status}"
    assert status in (200, 400), status  # HTTP itself answers again
