"""V3 nodes: grid (filled in by the grid work)."""
from __future__ import annotations

NODES: list = []
