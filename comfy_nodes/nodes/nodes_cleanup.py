"""V3 nodes: cleanup (filled in by the cleanup work)."""
from __future__ import annotations

NODES: list = []
