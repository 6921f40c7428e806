"""V3 nodes: sheet (filled in by the sheet work)."""
from __future__ import annotations

NODES: list = []
