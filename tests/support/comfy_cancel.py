"""ComfyUI's own cancel flag, for node unit tests that press Cancel while a node works."""
from __future__ import annotations

import pytest


def model_management():
    """``comfy.model_management`` as a running server has it, so a test can set the very flag
    that the server's /interrupt sets; skips when ComfyUI's source is not available.

    The module picks its torch device on import: the CPU is forced for that moment (the tests run
    without a GPU) and the setting is put back afterwards.
    """
    pytest.importorskip("comfy_api.latest")
    import comfy.cli_args

    old = comfy.cli_args.args.cpu
    comfy.cli_args.args.cpu = True
    try:
        import comfy.model_management as mm
    except Exception as exc:  # noqa: BLE001 - any import failure means "not testable here"
        pytest.skip(f"comfy.model_management does not import here: {exc}")
    finally:
        comfy.cli_args.args.cpu = old
    return mm


@pytest.fixture
def cancel_flag():
    """ComfyUI's ``comfy.model_management``, its cancel flag cleared before and after the test."""
    mm = model_management()
    mm.interrupt_current_processing(False)
    yield mm
    mm.interrupt_current_processing(False)


def press_cancel_after(monkeypatch, owner, name: str, mm) -> list:
    """Replace ``owner.name`` so that the user's Cancel is pressed (ComfyUI's flag ``mm``) as
    each call returns; returns the list that gets one entry per call made."""
    calls = []
    real = getattr(owner, name)

    def then_cancel(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        mm.interrupt_current_processing(True)
        return out

    monkeypatch.setattr(owner, name, then_cancel)
    return calls
