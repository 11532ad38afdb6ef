#!/usr/bin/env python3
"""The instructions a kernel's warps stalled on most, from Nsight Compute's source page.

    ncu -i report.ncu-rep --page source --csv --print-source sass > sass.csv
    python3 bench/ncu_source_top.py sass.csv [--top 40]

Prints the stall samples by opcode (all samples and the not-issued ones) and the top
instructions by samples with their address and text: where in the SASS a warp's cycles go.
"""
import argparse
import collections
import csv
import sys


def column(header, *words):
    for i, name in enumerate(header):
        low = name.lower()
        if all(w in low for w in words):
            return i
    return None


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        rows = [r for r in csv.reader(f)]
    start = next((i for i, r in enumerate(rows) if r and column(r, "source") is not None and
                  column(r, "sampling") is not None), None)
    if start is None:
        sys.exit("no source table with stall sampling columns in " + args.csv)
    header = rows[start]
    src = column(header, "source")
    addr = column(header, "address")
    every = column(header, "sampling", "all")
    idle = column(header, "sampling", "not-issued")
    if idle is None:
        idle = column(header, "sampling", "not issued")
    if every is None:
        every = column(header, "sampling")
    table = [r for r in rows[start + 1:] if len(r) == len(header)]
    total = sum(number(r[every]) for r in table) or 1.0
    by_op = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for r in table:
        text = r[src].strip()
        words = text.split()
        if not words:
            continue
        op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
        op = op.split(".")[0]
        by_op[op][0] += 1
        by_op[op][1] += number(r[every])
        by_op[op][2] += number(r[idle]) if idle is not None else 0.0
    print(f"{len(table)} instructions, {total:.0f} samples ({header[every]})")
    print(f"{'opcode':<12} {'count':>6} {'samples':>9} {'share':>7} {'not issued':>10}")
    for op, (n, s, ni) in sorted(by_op.items(), key=lambda kv: -kv[1][1])[:25]:
        print(f"{op:<12} {n:>6} {s:>9.0f} {100 * s / total:>6.1f}% {ni:>10.0f}")
    print(f"\ntop {args.top} instructions:")
    for r in sorted(table, key=lambda r: -number(r[every]))[:args.top]:
        where = r[addr] if addr is not None else ""
        extra = f" {number(r[idle]):>7.0f}" if idle is not None else ""
        print(f"{where:>8} {number(r[every]):>7.0f}{extra}  {r[src].strip()[:90]}")


if __name__ == "__main__":
    main()
