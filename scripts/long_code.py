#!/usr/bin/env python3
"""Lists what STYLE.md asks to split: source files over ~600 lines and functions over ~80 lines,
longest first. Functions are found by Universal Ctags (C++, CUDA read as C++), their length
being end - start + 1 lines, comments and blank lines included.

Usage: scripts/long_code.py [--file-lines N] [--function-lines N] [DIR...]  (default: src)
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

SOURCE_SUFFIXES = {".h", ".cc", ".cu", ".cuh"}


def long_files(roots: list[Path], limit: int) -> list[tuple[int, str]]:
    out = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and path.is_file():
                n = sum(1 for _ in path.open(encoding="utf-8", errors="replace"))
                if n > limit:
                    out.append((n, str(path)))
    return sorted(out, reverse=True)


def function_name(tag: dict) -> str:
    """Class::name, or the kernel's name where ctags took `__launch_bounds__(...)` for it."""
    name = tag["name"]
    if name.startswith("__"):
        lines = Path(tag["path"]).read_text(encoding="utf-8", errors="replace").splitlines()
        after = " ".join(lines[tag["line"] - 1 : tag["line"] + 2]).split(")", 1)[-1]
        m = re.search(r"(\w+)\s*\(", after)
        name = m.group(1) if m else name
    if tag.get("scopeKind") == "class":
        name = f"{tag['scope'].rsplit('::', 1)[-1]}::{name}"
    return name


def long_functions(roots: list[Path], limit: int) -> list[tuple[int, str]]:
    cmd = ["ctags", "-R", "--languages=C++", "--langmap=C++:+.cu.cuh", "--kinds-C++=f",
           "--fields=+ne", "--output-format=json", "-o", "-", *map(str, roots)]
    try:
        tags = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"long_code: Universal Ctags failed ({e}); apt-get install universal-ctags")
    out = []
    for line in tags.splitlines():
        tag = json.loads(line)
        if tag.get("_type") != "tag" or "end" not in tag:
            continue
        n = tag["end"] - tag["line"] + 1
        if n > limit:
            out.append((n, f"{tag['path']}:{tag['line']} {function_name(tag)}"))
    return sorted(out, reverse=True)


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file-lines", type=int, default=600)
    parser.add_argument("--function-lines", type=int, default=80)
    parser.add_argument("dirs", nargs="*", default=["src"])
    args = parser.parse_args()
    roots = [Path(d) for d in args.dirs]
    for root in roots:
        if not root.is_dir():
            sys.exit(f"long_code: {root} is not a directory")
    files = long_files(roots, args.file_lines)
    print(f"files over {args.file_lines} lines: {len(files)}")
    for n, what in files:
        print(f"  {n:5d}  {what}")
    functions = long_functions(roots, args.function_lines)
    print(f"functions over {args.function_lines} lines: {len(functions)}")
    for n, what in functions:
        print(f"  {n:5d}  {what}")


if __name__ == "__main__":
    main()
