"""`cmake --install` of the build into a fresh prefix (cmake/Packaging.cmake), then the installed
server run from there with neither --model-repository nor --stub-path: it must find the stub in
<prefix>/lib/sluice/ and serve the demo repository from <prefix>/share/sluice/examples. A CUDA
build installs the CUDA device module beside the stub, where the stub looks for it. What
the .deb contains is this layout under /usr (scripts/test_deb_clean_root.sh installs that in a
clean Debian 12 root).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from conftest import BINARY_DIR, SluiceServer

INSTALLED = [
    "bin/sluice", "bin/sluice-bench", "bin/sluice-lifecycle", "bin/sluice-kernel-bench",
    "lib/sluice/sluice-stub",
    "share/sluice/examples/sluice-demo/config.pbtxt",
    "share/sluice/examples/sluice-demo/1/model/model.safetensors",
    "share/sluice/examples/identity/config.pbtxt",
    "share/sluice/examples/repeat/1",
    "lib/systemd/system/sluice.service",
]
# Only a CUDA build has the module (backends/llm/model/cuda_module_loader.h).
CUDA_MODULE = "lib/sluice/libsluice_cuda_device.so"
BUILD_HAS_CUDA_MODULE = (BINARY_DIR / "src" / "stub" / "libsluice_cuda_device.so").exists()


@pytest.fixture(scope="module")
def destdir():
    """Where the install lands: DESTDIR, so that nothing escapes it even from a build configured
    for the package (prefix /usr, whose flags file goes to the absolute /etc/default). Removed
    afterwards: a debug build installs a few hundred MB."""
    with tempfile.TemporaryDirectory(prefix="sluice-install-") as d:
        destdir = Path(d)
        run = subprocess.run(["cmake", "--install", str(BINARY_DIR), "--prefix", "/opt/sluice"],
                             capture_output=True, text=True, env={**os.environ, "DESTDIR": str(destdir)})
        assert run.returncode == 0, f"cmake --install failed (build every target first):\n{run.stderr[-3000:]}"
        yield destdir


@pytest.fixture(scope="module")
def prefix(destdir) -> Path:
    return destdir / "opt" / "sluice"


def test_install_puts_every_piece_in_place(destdir, prefix):
    missing = [p for p in INSTALLED if not (prefix / p).exists()]
    assert not missing, f"not installed: {missing}"
    # <prefix>/etc/default/sluice; /etc/default/sluice when the build's prefix is /usr (the package)
    assert (prefix / "etc" / "default" / "sluice").exists() or (destdir / "etc" / "default" / "sluice").exists()
    for p in ["bin/sluice", "bin/sluice-bench", "lib/sluice/sluice-stub"]:
        assert (prefix / p).stat().st_mode & 0o111, f"{p} is not executable"
    assert not (prefix / "bin" / "sluice-stub").exists(), "the stub is not a command: lib/sluice/ only"
    assert (prefix / CUDA_MODULE).exists() == BUILD_HAS_CUDA_MODULE, \
        f"{CUDA_MODULE} installed: {(prefix / CUDA_MODULE).exists()}, built: {BUILD_HAS_CUDA_MODULE}"


def test_installed_server_finds_its_stub_and_the_examples(prefix):
    server = SluiceServer(["--model-control-mode", "explicit", "--load-model", "sluice-demo",
                           "--load-model", "identity", "--cpu-threads", "1"],
                          binary=prefix / "bin" / "sluice")
    try:
        base = f"http://{server.http_url}"
        assert requests.get(f"{base}/v2/health/ready", timeout=10).status_code == 200
        stubs = server.children()
        assert len(stubs) == 2
        for pid in stubs:
            assert Path(f"/proc/{pid}/exe").resolve() == (prefix / "lib" / "sluice" / "sluice-stub").resolve()
            # CPU models: the stub opened no CUDA module and maps no CUDA library.
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "libcudart" not in maps and "libcublas" not in maps and "libsluice_cuda" not in maps
        index = requests.post(f"{base}/v2/repository/index", timeout=10).json()
        assert {m["name"] for m in index} == {"sluice-demo", "identity", "repeat"}
        r = requests.post(f"{base}/v2/models/sluice-demo/generate", timeout=30,
                          json={"text_input": "Once upon a time",
                                "sampling_parameters": '{"temperature": 0, "max_tokens": 8}'})
        assert r.status_code == 200, r.text
        assert r.json()["text_output"].strip()
    finally:
        server.stop()
