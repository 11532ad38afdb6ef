"""Stubs that need no GPU map no CUDA library (issue 19, item 7): the CUDA device is a module,
libsluice_cuda_device.so beside sluice-stub, that a stub opens only for a KIND_GPU model. Before,
every stub linked libcudart and libcublasLt, and cuBLASLt's data alone dirtied ~90 MB of each
identity or CPU-LLM stub. Checked in /proc/<pid>/maps of the server's children while they serve;
in a CUDA build on a machine without a GPU, a KIND_GPU model's stub opens the module and fails
with CUDA's reason (not a missing module), while the CPU stubs beside it stay clean.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import requests

from conftest import BINARY_DIR, EXAMPLES, SOURCE_DIR, demo_args

CUDA_LIBRARIES = ("libcudart", "libcublas", "libcublasLt")
MODULE = BINARY_DIR / "src" / "stub" / "libsluice_cuda_device.so"


def mapped_cuda_libraries(pid: int) -> set[str]:
    """The CUDA libraries (and the module) among the files `pid` maps."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        name = line.split()[-1].rsplit("/", 1)[-1]
        if name.startswith(CUDA_LIBRARIES) or name.startswith("libsluice_cuda_device"):
            found.add(name)
    return found


def private_dirty_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1])
    return -1


def wait_ready(base: str, models: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for m in models:
        while requests.get(f"{base}/v2/models/{m}/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, f"model {m} not ready after {timeout} s"
            time.sleep(0.1)


def test_cpu_stubs_map_no_cuda_library(start_server):
    server = start_server(demo_args())
    base = f"http://{server.http_url}"
    wait_ready(base, ["sluice-demo", "identity", "repeat"])
    # The demo LLM runs a request on the CPU device first: serving must not open CUDA either.
    r = requests.post(f"{base}/v2/models/sluice-demo/generate", timeout=60,
                      json={"text_input": "Once upon a time",
                            "sampling_parameters": '{"temperature": 0, "max_tokens": 8}'})
    assert r.status_code == 200, r.text
    stubs = server.children()
    assert len(stubs) == 3
    for pid in [server.pid, *stubs]:
        assert mapped_cuda_libraries(pid) == set(), f"pid {pid} maps {mapped_cuda_libraries(pid)}"
    print("Private_Dirty of the stubs (KiB):", [private_dirty_kib(pid) for pid in stubs])


@pytest.mark.skipif(Path("/dev/nvidia0").exists(), reason="this machine has a GPU")
def test_a_gpu_model_opens_the_module_and_the_cpu_stubs_stay_clean(start_server, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "identity", repo / "identity")
    (repo / "gpu_llm" / "1").mkdir(parents=True)
    (repo / "gpu_llm" / "config.pbtxt").write_text(
        'name: "gpu_llm"\nbackend: "vllm"\n'
        "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 0 ] } ]\n"
        "model_transaction_policy { decoupled: true }\n")
    shutil.copytree(SOURCE_DIR / "tests" / "fixtures" / "models" / "qwen2_gpu", repo / "gpu_llm" / "1" / "model")
    (repo / "gpu_llm" / "1" / "model.json").write_text('{"model": "model", "gpu_memory_utilization": 0.5}')
    server = start_server(["--model-repository", str(repo), "--model-control-mode", "explicit",
                           "--load-model", "identity"])
    base = f"http://{server.http_url}"
    wait_ready(base, ["identity"])
    r = requests.post(f"{base}/v2/repository/models/gpu_llm/load", timeout=60)
    assert r.status_code == 400, r.text
    assert "KIND_GPU asked, but no GPU is usable" in r.text, r.text
    if MODULE.exists():
        # The stub found and opened the module: the reason is CUDA's, not a missing module.
        assert "CUDA device module" not in r.text, r.text
    else:
        assert "no CUDA device" in r.text, r.text  # a build without CUDA
    stubs = server.children()
    assert len(stubs) == 1  # identity's; the GPU stub is gone
    assert mapped_cuda_libraries(stubs[0]) == set()
