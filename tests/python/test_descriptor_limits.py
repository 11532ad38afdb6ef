"""Descriptor exhaustion (issue 19, items 1 and 3): idle HTTP connections are capped so they
cannot take the descriptors the gRPC listener needs, and an accept that fails for want of a
descriptor is retried after a pause instead of spinning a core. Loopback only, bounded."""

from __future__ import annotations

import socket
import time

import grpc
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

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


def test_accept_waits_instead_of_spinning_when_descriptors_run_out(start_server):
    # gRPC connections (uncapped) take every descriptor; HTTP's accept then fails with EMFILE.
    server = start_server(repository_args(), max_open_files=160)
    channels = []
    try:
        for i in range(200):
            ch = grpc.insecure_channel(server.grpc_url, options=[("grpc.use_local_subchannel_pool", 1),
                                                                 ("sluice.test.channel", i)])
            try:
                grpc.channel_ready_future(ch).result(timeout=1)
            except grpc.FutureTimeoutError:
                ch.close()
                break
            channels.append(ch)
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
