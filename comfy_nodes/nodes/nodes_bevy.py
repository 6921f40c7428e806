"""V3 nodes: bevy (filled in by the bevy work)."""
from __future__ import annotations

NODES: list = []
