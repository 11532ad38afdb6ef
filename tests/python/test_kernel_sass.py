"""The prefill attention and GPTQ kernels' machine code keeps what their speed rests on
(RESULTS.md, "Session 20" and "Session 21"): Hopper's attention kernels were latency-bound on
their softmax's instruction stream, and one exponential as four instructions (exp2f's range test
and scalings around MUFU.EX2) or a spill to local memory would bring that back without any test
on the CPU machine failing; the GPTQ GEMMs wait mostly on their dequantization's chains. Read
from the CUDA module's SASS with NVIDIA's cuobjdump (PyPI's nvidia-cuda-cuobjdump and
nvidia-cuda-nvdisasm, pinned in tests/requirements.txt); needs a CUDA build, not a GPU.
"""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path

import pytest

from conftest import BINARY_DIR

MODULE = BINARY_DIR / "src" / "stub" / "libsluice_cuda_device.so"
CUOBJDUMP = Path(sysconfig.get_paths()["purelib"]) / "nvidia" / "cu13" / "bin" / "cuobjdump"
# The tensor-core prefill kernels: wgmma (schedules 1 and 2), warp-specialized (3 to 5), and
# mma.sync (the other devices' and SLUICE_CUDA_PREFILL_WGMMA=0's).
PREFILL = re.compile(r"Prefill(Wgmma|Ws|Tc)Kernel")
# exp2f without -ftz: a test whether the argument is below -126, which picks a pre-scaling
# (and a squaring after the MUFU.EX2) for subnormal results.
EXP2_RANGE_TEST = re.compile(r"FSETP\.GEU\.AND P\d, PT, R\d+, -126, PT")

pytestmark = pytest.mark.skipif(not MODULE.exists(), reason="a build without CUDA")


def functions(dump: str) -> list[tuple[str, str]]:
    """cuobjdump's output cut into (mangled kernel name, its listing), in order (a kernel comes
    once a cubin): "Function : NAME" heads a kernel's SASS, "Function NAME:" its resources."""
    parts = re.split(r"^\s*Function(?: : (\S+)| (\S+):)\s*$", dump, flags=re.M)
    return [(parts[i] or parts[i + 1], parts[i + 2]) for i in range(1, len(parts) - 2, 3)]


def cuobjdump(*args: str) -> str:
    return subprocess.run([str(CUOBJDUMP), *args, str(MODULE)], check=True, capture_output=True,
                          text=True, timeout=300).stdout

def assert_no_spills(usage: list[tuple[str, str]]) -> None:
    """Each kernel of cuobjdump -res-usage (name, resource line) has no stack frame and no
    local memory: a spill would put memory round trips into its instruction chains."""
    assert any(not body.lstrip().startswith("REG:4 ") for _, body in usage), "no sm_90a body"
    for name, body in usage:
        frame = re.search(r"STACK:(\d+) .*LOCAL:(\d+)", body)
        assert frame, f"{name}: no resource line in cuobjdump -res-usage"
        stack, local = frame.groups()
        assert (stack, local) == ("0", "0"), (
            f"{name}: a stack frame of {stack} bytes and {local} of local memory (spills)")


def test_prefill_softmax_takes_one_instruction_an_exponential():
    kernels = {name: body for name, body in functions(cuobjdump("-sass", "-arch", "sm_90a"))
               if PREFILL.search(name)}
    # Every form at head dims 64 and 128 (the mma.sync kernel at more), so that a renamed or
    # missing kernel fails here rather than passing unchecked.
    assert sum("PrefillWgmmaKernel" in n for n in kernels) >= 4, sorted(kernels)
    assert sum("PrefillWsKernel" in n for n in kernels) >= 6, sorted(kernels)
    assert any("PrefillTcKernel" in n for n in kernels), sorted(kernels)
    for name, body in kernels.items():
        assert "MUFU.EX2" in body, f"{name}: no exponential at all: is this the softmax's kernel?"
        slow = EXP2_RANGE_TEST.findall(body)
        assert not slow, (f"{name}: {len(slow)} exponentials through exp2f's subnormal range "
                          "test (four instructions, not one): use Exp2Ftz (attention_common.cuh)")


def test_hoppers_prefill_kernels_spill_nothing():
    # The warp-specialized schedule 4 (the default) and the all-warps schedule 1, at head dims
    # 64 and 128; the overlapped schedules 2 and 5 are known to spill a few values.
    forms = re.compile(r"PrefillWsKernelILi(64|128)ELb0ELb0E|PrefillWgmmaKernelILi(64|128)ELb0E")
    usage = [(name, body) for name, body in functions(cuobjdump("-res-usage"))
             if forms.search(name)]
    # Each once a cubin: sm_80's (an empty body: the code is Hopper's alone) and sm_90a's.
    assert len(usage) >= 8, [name for name, _ in usage]
    assert_no_spills(usage)


# The 4-bit GPTQ kernels put a register's two nibbles into bf16 128 + q with one LOP3
# (gptq_common.cuh NibblesOr128). The compiler's own form of that expression is two LOP3 (none
# takes two immediates), and five where the halves are then widened to fp32 as the GEMMs do: a
# longer chain for each A register of the Hopper GEMM (RESULTS.md, "Session 21").
FOUR_BIT_GPTQ = re.compile(r"Gptq(Mma|MmaSwiGlu|Gemm|Gemm90)KernelILi4E")
NIBBLES_IN_ONE = re.compile(r"LOP3\.LUT R\d+, R\d+, 0xf000f, R\d+, 0xea")


def test_four_bit_gptq_kernels_take_a_register_of_nibbles_in_one_instruction():
    kernels = {name: body for name, body in functions(cuobjdump("-sass", "-arch", "sm_90a"))
               if FOUR_BIT_GPTQ.search(name)}
    # Every Hopper GEMM shape in both k orders, and the mma.sync GEMM and small-batch kernels.
    assert sum("GptqGemm90Kernel" in n for n in kernels) >= 12, sorted(kernels)
    assert any("GptqGemmKernel" in n for n in kernels), sorted(kernels)
    assert any("GptqMmaKernel" in n for n in kernels), sorted(kernels)
    for name, body in kernels.items():
        assert NIBBLES_IN_ONE.search(body), f"{name}: no nibble pair or-ed into 128.0 in one LOP3"
        assert "0x430f0000" not in body, (f"{name}: nibbles masked and or-ed into 128.0 apart "
                                          "(the compiler's split form): use NibblesOr128")


def test_hoppers_gptq_gemm_spills_nothing_on_any_copy_path():
    # Every block shape, both k orders and bit widths, each way of filling the stages
    # (gptq_gemm90.cu Copy: cp.async, TMA from a computing warp, TMA from a producing warpgroup
    # whose computing warpgroups run on setmaxnreg's 240 registers a thread).
    usage = [(name, body) for name, body in functions(cuobjdump("-res-usage"))
             if "GptqGemm90Kernel" in name]
    producer = re.compile(r"GptqGemm90KernelILi[48]ELi[12]ELi\d+ELi8ELi2E")
    assert sum(bool(producer.search(name)) for name, _ in usage) >= 12, [n for n, _ in usage]
    assert_no_spills(usage)
