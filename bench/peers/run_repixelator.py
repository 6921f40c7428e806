#!/usr/bin/env python3
"""repixelator 1.0.1 in automatic mode: `run_repixelator.py IN OUT`.

Calls `repixelator.rePixelateFile(IN, OUT)` with its defaults (mul=4, nr_sigma=0,
edge_threshold=1), the same call as its `repixelator IN OUT` CLI. It reports failure by
returning False without writing; the adapter then exits 1.
"""
import sys

from repixelator.repixelator import rePixelateFile


def main(src: str, dst: str) -> int:
    return 0 if rePixelateFile(src, dst) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
