"""bench/ncu_source_top.py reads Nsight Compute's source page (--page source --csv
--print-source sass) as the GPU calls bring it back: the table after ncu's preamble lines, its
stall samples summed by opcode (a predicate's guard skipped) and the instructions ranked; a
file without the sampling columns is refused with a message naming it. No GPU or ncu needed:
the CSV is written here in ncu's layout."""

from __future__ import annotations

import subprocess
import sys

from conftest import SOURCE_DIR

TOOL = SOURCE_DIR / "bench" / "ncu_source_top.py"

CSV = """==PROF== Connected to process 1234
"Kernel Name","GptqGemm90Kernel"
"Address","Source","Warp Stall Sampling (All Samples)","Warp Stall Sampling (Not-issued Samples)"
"0x7f00","HFMA2.BF16_V2 R189, R8, R184, RZ.H0_H0 ;","120","30"
"0x7f10","HFMA2.BF16_V2 R184, R15, R184, R189 ;","80","20"
"0x7f20","@!P2 BRA 0x28e0 ;","10","4"
"0x7f30","LDS.128 R184, [R188+0x8000] ;","1,290","1,000"
"""


def run(tmp_path, text: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "sass.csv"
    path.write_text(text)
    return subprocess.run([sys.executable, str(TOOL), str(path), *args], capture_output=True,
                          text=True, timeout=60)


def test_samples_are_summed_by_opcode_and_ranked(tmp_path):
    out = run(tmp_path, CSV, "--top", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "4 instructions, 1500 samples (Warp Stall Sampling (All Samples))"
    by_op = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
    assert by_op["LDS"] == ["1", "1290", "86.0%", "1000"]  # thousands separators read
    assert by_op["HFMA2"] == ["2", "200", "13.3%", "50"]
    assert by_op["BRA"] == ["1", "10", "0.7%", "4"]  # the guard @!P2 is not the opcode
    top = lines[lines.index("top 2 instructions:") + 1:]
    assert [t.split()[0] for t in top] == ["0x7f30", "0x7f00"]


def test_a_file_without_stall_samples_is_refused(tmp_path):
    out = run(tmp_path, '"Address","Source"\n"0x10","NOP ;"\n')
    assert out.returncode != 0
    assert "no source table with stall sampling columns" in out.stderr
