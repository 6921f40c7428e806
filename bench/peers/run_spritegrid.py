#!/usr/bin/env python3
"""spritegrid 0.2.0 in automatic mode: `run_spritegrid.py IN OUT`.

Calls `spritegrid.main.main(IN, output_file=OUT)` with its CLI defaults (min_grid=4, quantize=8,
no background removal, no crop), i.e. `spritegrid IN -o OUT`. It exits 1 when it finds no grid.
"""
import sys

from spritegrid.main import main as spritegrid_main


def main(src: str, dst: str) -> int:
    spritegrid_main(image_source=src, output_file=dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
