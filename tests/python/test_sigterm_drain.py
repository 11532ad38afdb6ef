"""SIGTERM, as Kubernetes and systemd stop a server (DESIGN.md §2.7): /v2/health/ready turns 503 at
once (the pod leaves the Service) while /v2/health/live stays 200, new inference is refused with
503, the streams in flight (server-sent events of the demo LLM and of the repeat model, and a
gRPC ModelStreamInfer of the repeat model) run to their normal end, and the server exits 0 within --exit-timeout-secs + --model-kill-timeout-secs,
leaving no stub behind.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time

import numpy as np
import requests
import tritonclient.grpc as grpcclient

from conftest import SluiceServer, demo_args

EXIT_TIMEOUT_SECS = 20
KILL_TIMEOUT_SECS = 2
REPEAT_EVENTS = 12
REPEAT_DELAY_MS = 250  # the repeat stream lasts ~3 s: in flight whenever the signal lands


class SseStream(threading.Thread):
    """One POST answered with server-sent events, read to its end on a thread; each event's
    payload (the text after "data: ") with the monotonic time it arrived."""

    def __init__(self, url: str, body: dict):
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.status: int | None = None
        self.events: list[tuple[float, str]] = []
        self.first_event = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with requests.post(self.url, json=self.body, stream=True, timeout=60) as r:
                self.status = r.status_code
                for line in r.iter_lines():
                    if line.startswith(b"data: "):
                        self.events.append((time.monotonic(), line[6:].decode()))
                        self.first_event.set()
        except Exception as e:  # reported by the test, not swallowed
            self.error = e
        finally:
            self.first_event.set()

    @property
    def ended_at(self) -> float:
        return self.events[-1][0]


def repeat_grpc_inputs(values: list[int], delay_ms: int) -> list[grpcclient.InferInput]:
    inputs = [grpcclient.InferInput("IN", [len(values)], "INT32"),
              grpcclient.InferInput("DELAY", [len(values)], "UINT32")]
    inputs[0].set_data_from_numpy(np.asarray(values, np.int32))
    inputs[1].set_data_from_numpy(np.full(len(values), delay_ms, np.uint32))
    return inputs


def status_of(method: str, url: str, **kwargs) -> int:
    return requests.request(method, url, timeout=10, **kwargs).status_code


def test_sigterm_turns_ready_503_drains_streams_and_exits_0():
    server = SluiceServer(demo_args("--exit-timeout-secs", str(EXIT_TIMEOUT_SECS),
                                    "--model-kill-timeout-secs", str(KILL_TIMEOUT_SECS)))
    base = f"http://{server.http_url}"
    try:
        assert status_of("GET", f"{base}/v2/health/ready") == 200
        stubs = server.children()
        assert len(stubs) == 3, "one stub per model: sluice-demo, identity, repeat"

        repeat = SseStream(f"{base}/v2/models/repeat/generate_stream",
                           {"IN": list(range(REPEAT_EVENTS)), "DELAY": [REPEAT_DELAY_MS] * REPEAT_EVENTS})
        chat = SseStream(f"{base}/v1/chat/completions",
                         {"model": "sluice-demo", "stream": True, "max_tokens": 400, "ignore_eos": True,
                          "temperature": 0, "messages": [{"role": "user", "content": "Tell me a fortune."}]})
        grpc = grpcclient.InferenceServerClient(server.grpc_url)
        grpc_responses: queue.Queue = queue.Queue()
        grpc.start_stream(callback=lambda result, error: grpc_responses.put((result, error)))
        grpc.async_stream_infer("repeat", repeat_grpc_inputs(list(range(REPEAT_EVENTS)), REPEAT_DELAY_MS),
                                request_id="drain", enable_empty_final_response=True)
        repeat.start()
        assert repeat.first_event.wait(30) and repeat.error is None
        chat.start()
        assert chat.first_event.wait(30) and chat.error is None

        os.kill(server.pid, signal.SIGTERM)
        signalled = time.monotonic()

        # Readiness turns 503 while the streams are still in flight (the first probes may reach
        # the server before it has taken the signal: a few tries).
        ready_503_at = None
        for _ in range(100):
            if status_of("GET", f"{base}/v2/health/ready") == 503:
                ready_503_at = time.monotonic()
                break
            time.sleep(0.01)
        assert ready_503_at is not None, "/v2/health/ready never turned 503 after SIGTERM"
        assert repeat.is_alive(), "the repeat stream should still be in flight when readiness turns 503"
        # Still live (a liveness probe must not restart a draining pod), and new work is refused.
        assert status_of("GET", f"{base}/v2/health/live") == 200
        assert grpc.is_server_live() and not grpc.is_server_ready()
        refused = requests.post(f"{base}/v2/models/sluice-demo/generate", timeout=10,
                                json={"text_input": "Once upon a time", "max_tokens": 4})
        assert refused.status_code == 503, refused.text
        assert "shutting down" in refused.text

        repeat.join(30)
        chat.join(30)
        assert repeat.error is None and chat.error is None
        assert repeat.status == 200 and chat.status == 200

        # Both streams ran to their normal end, not to a cancellation.
        outs = [json.loads(payload) for _, payload in repeat.events]
        assert [o["OUT"] for o in outs] == list(range(REPEAT_EVENTS)), outs[-1]
        assert all("error" not in o for o in outs)
        assert sum(1 for t, _ in repeat.events if t > ready_503_at) > 0, "no repeat event after the signal"
        grpc_outs = []
        while True:
            result, error = grpc_responses.get(timeout=30)
            assert error is None, error
            if result.get_response().parameters["triton_final_response"].bool_param:
                break
            grpc_outs.append(int(result.as_numpy("OUT")[0]))
        assert grpc_outs == list(range(REPEAT_EVENTS))
        grpc.stop_stream()
        grpc.close()
        assert chat.events[-1][1] == "[DONE]"
        chunks = [json.loads(p) for _, p in chat.events[:-1]]
        assert all("error" not in c for c in chunks)
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
        assert finishes == ["length"], finishes

        # Exit 0 once drained, within the bounds, with no stub left.
        code = server._proc.wait(timeout=EXIT_TIMEOUT_SECS + KILL_TIMEOUT_SECS + 15)
        exited = time.monotonic()
        assert code == 0, server.log()[-3000:]
        assert exited >= repeat.ended_at
        assert exited - signalled < EXIT_TIMEOUT_SECS, "the server waited out the exit timeout with nothing in flight"
        for pid in stubs:
            assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
        log = server.log()
        assert "received SIGTERM" in log and "sluice exited cleanly" in log
    finally:
        server.stop()
