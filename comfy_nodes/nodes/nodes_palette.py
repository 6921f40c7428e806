"""V3 nodes: palette (filled in by the palette work)."""
from __future__ import annotations

NODES: list = []
