"""Shared fixtures of the Python tests: the real `sluice` binary on ephemeral loopback ports.

CTest runs each tests/python/test_*.py with .venv/bin/python -m pytest (tests/python/python.cmake),
with SLUICE_BINARY_DIR and SLUICE_SOURCE_DIR set; run by hand the same way, e.g.
  SLUICE_BINARY_DIR=build .venv/bin/python -m pytest tests/python/test_tritonclient.py
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("SLUICE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BINARY_DIR = Path(os.environ.get("SLUICE_BINARY_DIR", SOURCE_DIR / "build")).resolve()
EXAMPLES = SOURCE_DIR / "examples"
DEMO_MODEL = EXAMPLES / "sluice-demo" / "1" / "model"
VENV_BIN = SOURCE_DIR / ".venv" / "bin"


class SluiceServer:
    """`sluice` started with `args` plus --http-port 0 --grpc-port 0 --metrics-port 0; the ports are
    read back from its "Started ... at host:port" log lines. Stopped (SIGKILL, stubs too) by stop()."""

    _PORTS = {
        "http": re.compile(r"Started HTTPService at [^:]+:(\d+)"),
        "grpc": re.compile(r"Started GRPCInferenceService at [^:]+:(\d+)"),
        "metrics": re.compile(r"Started Metrics Service at [^:]+:(\d+)"),
    }

    def __init__(self, args: list[str], timeout: float = 60.0, max_open_files: int | None = None,
                 binary: Path | None = None):
        binary = binary or BINARY_DIR / "src" / "server" / "sluice"  # or an installed one
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: build first (scripts/build.sh)")
        cmd = [str(binary), *args, "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"]
        if max_open_files is not None:  # prlimit execs the server: same pid, limits in place
            cmd = ["prlimit", f"--nofile={max_open_files}:{max_open_files}", "--", *cmd]
        # No preexec_fn, ever: with one, subprocess forks (not vfork) and grpcio's fork handlers
        # run in the child, which then aborts now and then on "epoll_wait error: Bad file
        # descriptor" before it can exec (1 start in ~100 once a tritonclient.grpc client
        # exists in this process; reproduced with /bin/true).
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._log: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ports: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.ports) < 3:
            log = self.log()
            for name, pattern in self._PORTS.items():
                m = pattern.search(log)
                if m:
                    self.ports[name] = int(m.group(1))
            if self._proc.poll() is not None:
                break
            time.sleep(0.02)
        if len(self.ports) < 3:
            self.stop()
            raise RuntimeError(f"sluice did not start: {' '.join(cmd)}\n{self.log()[-6000:]}")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in iter(self._proc.stdout.readline, b""):
            with self._lock:
                self._log.append(line.decode("utf-8", "replace"))

    def log(self) -> str:
        with self._lock:
            return "".join(self._log)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = (Path("/proc") / str(self._proc.pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"127.0.0.1:{self.ports['metrics']}"

    def children(self) -> list[int]:
        """The server's direct children (the stubs), from /proc."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat[stat.rfind(")") + 2 :].split()[:2]
            if int(ppid) == self._proc.pid and state != "Z":
                out.append(int(entry.name))
        return out

    def stop(self) -> None:
        if self._proc.poll() is None:
            children = self.children()
            self._proc.kill()
            self._proc.wait()
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._reader.join(timeout=5)


def demo_args(*extra: str) -> list[str]:
    """The bundled repository (examples/) in explicit mode with the demo LLM, identity and repeat."""
    return [
        "--model-repository", str(EXAMPLES), "--model-control-mode", "explicit",
        "--load-model", "sluice-demo", "--load-model", "identity", "--load-model", "repeat",
        "--cpu-threads", "2", *extra,
    ]


def serve_module(request, args: list[str]) -> Iterator[SluiceServer]:
    """A module fixture's body (`yield from serve_module(request, args)`): a server started with
    `args`, stopped after the module, its log printed when a test of the session failed."""
    s = SluiceServer(args)
    yield s
    failed = getattr(request.session, "testsfailed", 0)
    s.stop()
    if failed:
        print("---- sluice log (end) ----\n" + s.log()[-6000:] + "\n---- end of sluice log ----")


@pytest.fixture(scope="module")
def server(request):
    """One server for the module, serving examples/ (the demo LLM, identity, repeat); its log is
    printed when a test of the module failed."""
    yield from serve_module(request, demo_args())


@pytest.fixture
def start_server():
    """Starts servers with custom arguments inside a test; all are stopped after it."""
    started: list[SluiceServer] = []

    def start(args: list[str], timeout: float = 60.0, max_open_files: int | None = None) -> SluiceServer:
        s = SluiceServer(args, timeout, max_open_files)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def base_url(server) -> str:
    """The OpenAI API of the module's server, as the OpenAI SDK takes it."""
    return f"http://{server.http_url}/v1"


@pytest.fixture(scope="module")
def client(base_url):
    """The official OpenAI SDK's client on the module's server (test_tritonclient_*.py override
    `client` with a Triton client of their own)."""
    import openai  # here, not at the top: most test files never need the SDK

    # No retries: a 5xx (Sluice's 501s included) must fail once, not be resent twice.
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60) as c:
        yield c


# ---- helpers shared by test files -------------------------------------------------------------

def write_demo_model(repo: Path, name: str, chat_template: str | None, engine_args: dict,
                     context: int = 512) -> None:
    """The demo LLM as model `name` of the repository `repo`: its weights and tokenizer linked,
    `chat_template` in place of its own (None: its own), model.json's `engine_args`, a context of
    `context` tokens (it was trained on 512; tests that raise it, so that prompts with tools fit,
    force the outputs that matter with the grammar engine)."""
    folder = repo / name / "1" / "model"
    folder.mkdir(parents=True)
    for f in ("generation_config.json", "model.safetensors", "tokenizer.json"):
        (folder / f).symlink_to(DEMO_MODEL / f)
    config = json.loads((DEMO_MODEL / "config.json").read_text())
    config["max_position_embeddings"] = context
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((DEMO_MODEL / "tokenizer_config.json").read_text())
    if chat_template is not None:
        tokenizer_config["chat_template"] = chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (repo / name / "1" / "model.json").write_text(
        json.dumps({"model": "model", "max_model_len": context, **engine_args}))
    pbtxt = (EXAMPLES / "sluice-demo" / "config.pbtxt").read_text()
    (repo / name / "config.pbtxt").write_text(pbtxt.replace('name: "sluice-demo"', f'name: "{name}"'))


def post_json(server: SluiceServer, path: str, body: dict | str) -> tuple[int, dict]:
    """POSTs `body` (a JSON text as it is, when a string) to the server's HTTP `path`: the status and
    the JSON reply, whatever the status (the SDKs hide an error's raw body)."""
    text = body if isinstance(body, str) else json.dumps(body)
    conn = http.client.HTTPConnection(server.http_url, timeout=60)
    conn.request("POST", path, body=text, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data)


def assert_chat_refused(client, named: str, stream: bool, **create) -> None:
    """The chat completion `create` (through the OpenAI SDK, streamed or not) is a 400 whose message
    names `named`, and the server answers the same model after it."""
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        r = client.chat.completions.create(stream=stream, **create)
        if stream:
            list(r)
    assert e.value.status_code == 400
    assert named in e.value.message, e.value.message
    after = client.chat.completions.create(model=create["model"], messages=[{"role": "user", "content": "Hi"}],
                                           max_tokens=4, temperature=0)
    assert after.choices[0].finish_reason in ("stop", "length")


def chat_parts(client, stream: bool, call_id: re.Pattern, **create) -> tuple[str | None, list[dict], str]:
    """One chat completion's content, tool calls ([{"id", "name", "arguments", "type"}]) and finish
    reason; streamed, the deltas are checked to be OpenAI's as they are assembled (content before
    the calls, a call's first piece its id matching `call_id`, type and name, then fragments)."""
    if not stream:
        r = client.chat.completions.create(**create)
        m = r.choices[0].message
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments, "type": c.type}
                 for c in m.tool_calls or []]
        return m.content, calls, r.choices[0].finish_reason
    content, calls, finish = "", [], []
    for chunk in client.chat.completions.create(stream=True, **create):
        for choice in chunk.choices:
            d = choice.delta
            if d.content:
                assert not calls, f"content after a call: {d.content!r}"
                content += d.content
            for piece in d.tool_calls or []:
                if piece.index == len(calls):  # a call's first piece: its id, type and name
                    assert call_id.fullmatch(piece.id or ""), piece
                    assert piece.type == "function" and piece.function.name, piece
                    assert piece.function.arguments == "", piece
                    calls.append({"id": piece.id, "name": piece.function.name, "arguments": "", "type": "function"})
                else:
                    assert piece.index == len(calls) - 1 and piece.id is None and piece.function.name is None, piece
                    calls[-1]["arguments"] += piece.function.arguments
            if choice.finish_reason is not None:
                finish.append(choice.finish_reason)
    assert len(finish) == 1
    return content or None, calls, finish[0]
