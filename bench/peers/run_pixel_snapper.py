#!/usr/bin/env python3
"""pixel-snapper 0.1.0 in automatic mode: `run_pixel_snapper.py IN OUT`.

Calls `pixel_snapper.process_file_cli(IN, OUT, PixelSnapperConfig())`, the same call its
`pixel-snapper IN OUT` CLI makes: k_colors=16, pixel size detected (no override).
"""
import sys

from pixel_snapper import PixelSnapperConfig, process_file_cli


def main(src: str, dst: str) -> int:
    process_file_cli(src, dst, PixelSnapperConfig())
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
