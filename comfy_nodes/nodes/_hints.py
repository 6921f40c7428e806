"""Errors of the pixel core told in a node's terms.

The pixel core is shared with the ``dgx-pixels`` command line, so its hints speak of the CLI:
``InvalidArgumentError``'s default says "the command's --help ... says what it takes", others
name ``--cell`` or ``dgx-pixels palette list``. Someone who sees the error on a node in ComfyUI
has neither a command nor its options. ``node_errors`` wraps a node's ``execute``: an error of
the project that leaves it with such a hint gets one that names the node's input (and what its
tooltip says) instead. The CLI's messages stay as they are; only the hint of the error raised
through a node changes.
"""
from __future__ import annotations

import functools
import math
import numbers
import re
from typing import Callable

from ..pixel.errors import DgxPixelsError, InvalidArgumentError

#: Words of a hint meant for the command line: an option (--cell), the program, its --help.
_CLI = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*|\bdgx-pixels\b|the command's")
_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
#: The core's hints that name an option and the node's input beside it, in its three forms.
_NODE_ARTICLE = re.compile(r"\ban? --[a-z0-9-]+(?: [\w.]+)? \(the node: (\w+)\)")
_NODE_PAREN = re.compile(r"\(--[a-z0-9-]+(?: [\w.]+)?, the node: (\w+)\)")
_NODE_BARE = re.compile(r"--[a-z0-9-]+(?: ([\w.]+))? \(the node: (\w+)\)")
#: ``dgx-pixels palette list``, as the core's palette hints quote it.
_PALETTE_LIST = re.compile(r"\(?`dgx-pixels palette list`\)?")


def node_inputs(cls) -> dict[str, str]:
    """The node's inputs, id -> tooltip, in the schema's order ({} if it cannot be read)."""
    try:
        return {i.id: (i.tooltip or "") for i in cls.define_schema().inputs}
    except Exception:  # noqa: BLE001 - a hint must never hide the error it explains
        return {}


def named_input(message: str, inputs: dict[str, str]) -> str | None:
    """The input that ``message`` names first, as a whole word (``cell_size``, not ``cell``);
    the core writes some in words ("cell width 40 is larger than the sheet": ``cell_width``)."""
    found = []
    for name in inputs:
        words = r"[ _]".join(re.escape(part) for part in name.split("_"))
        # a plural input named in the singular too ("animation 'idle:0-9@8' uses frame 9"
        # is about ``animations``)
        if name.endswith("s") and len(name) > 3:
            words += "?"
        m = re.search(rf"(?<![\w-]){words}(?![\w-])", message)
        if m:
            found.append((m.start(), -len(name), name))
    return min(found)[2] if found else None


def input_hint(name: str | None, inputs: dict[str, str]) -> str:
    """A hint that sends the user to input ``name`` and what its tooltip says."""
    if name is None:
        return "check the node's inputs: each one's tooltip (hover over it) says what it takes"
    tip = inputs.get(name, "").strip()
    return f"check the node's {name} input" + (f"; its tooltip says: {tip}" if tip else "")


def node_hint(exc: DgxPixelsError, cls) -> str | None:
    """The hint ``exc`` should carry on node ``cls``, or None when its own hint will do."""
    hint = exc.hint or ""
    if not _CLI.search(hint):
        return None
    inputs = node_inputs(cls)
    if hint == InvalidArgumentError.default_hint or "the command's" in hint:
        return input_hint(named_input(exc.message, inputs), inputs)
    if "the node:" in hint:
        # the core names the node's input beside the option: only the input, here
        hint = _NODE_ARTICLE.sub(r"the \1 input", hint)  # "a --bevy-version (the node: bevy_version)"
        hint = _NODE_PAREN.sub(r"(the \1 input)", hint)  # "(--tile-array, the node: tile_array)"
        hint = _NODE_BARE.sub(lambda m: f"{m.group(2)} {m.group(1) or ''}".strip(), hint)  # "--bevy-version 0.15 (the node: ...)"
        return hint if not _CLI.search(hint) and hint != exc.hint else None
    # the palette names the node offers in place of the command that lists them
    hint = _PALETTE_LIST.sub("from the builtin list of Pixel Palette Load", hint)
    # an option of the command that is also an input of this node: the input's name
    hint = _OPTION.sub(lambda m: m.group(1).replace("-", "_") if m.group(1).replace("-", "_") in inputs
                       else m.group(0), hint)
    if _CLI.search(hint):
        # an option this node does not have: no use naming it here
        return input_hint(named_input(exc.message, inputs), inputs)
    return hint


def node_errors(execute: Callable) -> Callable:
    """Decorate a node's ``execute`` (under ``@classmethod``) so that the project's errors it
    raises carry hints in this node's terms (see ``node_hint``). The error itself, its type,
    message and traceback, is the one raised."""

    @functools.wraps(execute)
    def run(cls, *args, **kwargs):
        try:
            return execute(cls, *args, **kwargs)
        except DgxPixelsError as exc:
            hint = node_hint(exc, cls)
            if hint is not None:
                exc.hint = hint
            raise

    return run


def whole_number(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or an ``InvalidArgumentError`` naming input ``name`` when it is not a
    whole number >= ``minimum`` (the core's check would name its own parameter)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value != int(value) or value < minimum):
        raise InvalidArgumentError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)
