"""Cleanup nodes called directly through ``execute`` (no server)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("comfy_api.latest")

from comfy_nodes.nodes.nodes_cleanup import (  # noqa: E402
    NODES,
    DGXPixelsBackgroundRemove,
    DGXPixelsOutline,
    DGXPixelsStrayCleanup,
    DGXPixelsTrim,
)
from comfy_nodes.pixel.errors import InputImageError, InvalidArgumentError  # noqa: E402

BG = (40, 200, 40)
RED = (200, 40, 40)


def tensor(frames):
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


def u8(t):
    return np.round(t.numpy() * 255).astype(np.uint8)


def sprite_on_bg(h=12, w=12, box=(3, 3, 9, 9)):
    a = np.zeros((h, w, 3), np.uint8)
    a[...] = BG
    l, t, r, b = box
    a[t:b, l:r] = RED
    return a


def test_schemas():
    ids = [n.define_schema().node_id for n in NODES]
    assert ids == ["DGXPixelsBackgroundRemove", "DGXPixelsStrayCleanup", "DGXPixelsOutline", "DGXPixelsTrim"]
    for n in NODES:
        s = n.define_schema()
        assert s.category == "DGX-Pixels/Cleanup" and s.description and s.display_name.startswith("Pixel ")
        assert all(i.tooltip for i in s.inputs)


def test_background_remove_outputs_rgba_and_mask():
    img, mask = DGXPixelsBackgroundRemove.execute(image=tensor([sprite_on_bg(), sprite_on_bg()])).result
    assert tuple(img.shape) == (2, 12, 12, 4) and tuple(mask.shape) == (2, 12, 12)
    assert float(mask[0, 0, 0]) == 1.0 and float(mask[0, 5, 5]) == 0.0
    assert u8(img[1, 5, 5]).tolist() == [*RED, 255]
    img, mask = DGXPixelsBackgroundRemove.execute(image=tensor([sprite_on_bg()]), key="#c82828", tolerance=0.01).result
    assert float(mask[0, 5, 5]) == 0.0  # red touches no border: kept
    with pytest.raises(InvalidArgumentError, match="connectivity"):
        DGXPixelsBackgroundRemove.execute(image=tensor([sprite_on_bg()]), connectivity="6")
    ring = sprite_on_bg()
    ring[5:7, 5:7] = ring[0, 0]  # background colour enclosed by the red sprite
    img, mask = DGXPixelsBackgroundRemove.execute(image=tensor([ring])).result
    assert float(mask[0, 5, 5]) == 0.0
    img, mask = DGXPixelsBackgroundRemove.execute(image=tensor([ring]), holes=4).result
    assert float(mask[0, 5, 5]) == 1.0 and float(mask[0, 4, 4]) == 0.0


def test_chain_stray_outline_trim():
    a = sprite_on_bg()
    a[5, 5] = (0, 0, 255)  # stray
    img, mask = DGXPixelsBackgroundRemove.execute(image=tensor([a])).result
    img, mask = DGXPixelsStrayCleanup.execute(image=img).result
    assert u8(img[0, 5, 5]).tolist() == [0, 0, 255, 255]  # high contrast: kept by default
    img, mask = DGXPixelsStrayCleanup.execute(image=img, max_difference=1.0).result
    assert u8(img[0, 5, 5]).tolist() == [*RED, 255]
    img, mask = DGXPixelsOutline.execute(image=img, color="#000000").result
    assert u8(img[0, 2, 5]).tolist() == [0, 0, 0, 255] and float(mask[0, 2, 2]) == 1.0
    img, mask, boxes, left, top = DGXPixelsTrim.execute(image=img, padding=1).result
    assert tuple(img.shape) == (1, 10, 10, 4)
    assert json.loads(boxes) == [[1, 1, 11, 11]] and (left, top) == (1, 1)


def test_mask_input_is_alpha():
    a = np.full((6, 6, 3), 200, np.uint8)
    m = torch.ones(1, 6, 6)
    m[0, 2:4, 2:4] = 0.0
    img, mask, boxes, _, _ = DGXPixelsTrim.execute(image=tensor([a]), mask=m).result
    assert tuple(img.shape) == (1, 2, 2, 4) and json.loads(boxes) == [[2, 2, 4, 4]]


def test_trim_batch_union_and_per_frame():
    a = np.zeros((8, 8, 4), np.uint8)
    b = np.zeros((8, 8, 4), np.uint8)
    a[1, 1] = [*RED, 255]
    b[5:7, 4:7] = [*RED, 255]
    img, mask, boxes, _, _ = DGXPixelsTrim.execute(image=tensor([a, b]), batch_mode="union").result
    assert tuple(img.shape) == (2, 6, 6, 4) and json.loads(boxes) == [[1, 1, 7, 7]] * 2
    img, mask, boxes, _, _ = DGXPixelsTrim.execute(image=tensor([a, b]), batch_mode="per_frame").result
    assert json.loads(boxes) == [[1, 1, 2, 2], [4, 5, 7, 7]]
    assert tuple(img.shape) == (2, 2, 3, 4)  # padded to the largest frame
    assert float(mask[0, 0, 0]) == 0.0 and float(mask[0, 1, 2]) == 1.0
    with pytest.raises(InputImageError, match="transparent"):
        DGXPixelsTrim.execute(image=tensor([np.zeros((4, 4, 4), np.uint8)]))


def test_stray_cleanup_min_size_and_outline_darken():
    a = np.zeros((7, 7, 4), np.uint8)
    a[1:6, 1:6] = [*RED, 255]
    a[3, 3] = [0, 0, 255, 255]
    img, _ = DGXPixelsStrayCleanup.execute(image=tensor([a]), min_size=1).result
    assert u8(img[0, 3, 3]).tolist() == [0, 0, 255, 255]
    img, _ = DGXPixelsOutline.execute(image=tensor([a]), color="darken", inside=True).result
    edge = u8(img[0, 1, 3])
    assert edge[3] == 255 and edge[:3].sum() < sum(RED)


def test_auto_outline_is_one_colour_for_the_whole_batch():
    """Chosen per frame, the automatic outline of an animation flickered: the frame with a dark
    blue eye got a blue outline, the frame with the eye closed a dark red one."""
    open_eye = np.zeros((10, 10, 4), np.uint8)
    open_eye[2:8, 2:8] = [*RED, 255]
    closed = open_eye.copy()
    open_eye[4, 4] = [26, 26, 128, 255]
    img, _ = DGXPixelsOutline.execute(image=tensor([open_eye, closed]), color="auto").result
    out = u8(img)
    ring = (out[..., 3] == 255) & (np.stack([open_eye, closed])[..., 3] == 0)
    assert ring[0].sum() == ring[1].sum() == 24
    colours = {tuple(c) for c in out[..., :3][ring].tolist()}
    assert colours == {(26, 26, 128)}  # the darkest colour of the animation, in every frame


# ----------------------------------------------------------------------------- cancelling

from support.comfy_cancel import cancel_flag, press_cancel_after  # noqa: E402,F401  (cancel_flag: a fixture)


def _noise(seed: int, size: int = 24) -> np.ndarray:
    """An opaque frame of near shades: nearly every pixel an island of its own, all voting."""
    rng = np.random.default_rng(seed)
    return np.full((size, size, 3), 120, np.uint8) + rng.integers(0, 3, (size, size, 3), dtype=np.uint8)


def test_stray_cleanup_stops_inside_a_frame_when_the_user_cancels(cancel_flag, monkeypatch):
    """One large frame can take a second or more; Cancel must not wait for it to finish. The
    flag is ComfyUI's own (what /interrupt sets); only the moment of the press is arranged, by
    setting it as the frame's regions come back from labelling."""
    from comfy_nodes.pixel import cleanup as C

    labelled = press_cancel_after(monkeypatch, C, "label_regions", cancel_flag)
    with pytest.raises(cancel_flag.InterruptProcessingException):
        DGXPixelsStrayCleanup.execute(image=tensor([_noise(0)]))
    # Stopped after the first labelling: the vote and the second labelling (specks) never ran.
    assert labelled == [1]
    assert not cancel_flag.processing_interrupted()  # consumed, as ComfyUI expects


def test_stray_cleanup_stops_between_frames_when_the_user_cancels(cancel_flag, monkeypatch):
    """A batch stops before its next frame, with or without a progress bar (unit tests have no
    server, hence no progress hook). The press is arranged as in the test above, after frame 0."""
    from comfy_nodes.pixel import cleanup as C

    done = press_cancel_after(monkeypatch, C, "remove_strays", cancel_flag)
    with pytest.raises(cancel_flag.InterruptProcessingException):
        DGXPixelsStrayCleanup.execute(image=tensor([_noise(1), _noise(2), _noise(3)]))
    assert done == [1]


def test_stray_cleanup_runs_to_the_end_without_a_cancel(cancel_flag):
    from comfy_nodes.pixel.cleanup import remove_strays

    frame = _noise(4)
    img, _ = DGXPixelsStrayCleanup.execute(image=tensor([frame])).result
    assert np.array_equal(u8(img[0]), remove_strays(np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])))


@pytest.mark.parametrize("n", [64, 65])
def test_an_all_zero_mask_means_no_mask_at_every_size(n):
    """A MASK of zeros masks nothing. It was ignored only when 64x64 (LoadImage's placeholder
    for an image without alpha): on a 64x64 RGBA image its own alpha stayed, on a 65x65 one
    the mask made every pixel opaque. Now the image's own alpha stays at both sizes, for one
    mask or one per frame; a mask that masks something still sets the alpha."""
    rng = np.random.default_rng(n)
    a = np.zeros((2, n, n, 4), np.uint8)
    a[..., :3] = rng.integers(1, 256, (2, n, n, 3))
    a[:, : n // 2, :, 3] = 255  # top half opaque, bottom half transparent
    img = torch.from_numpy(a.astype(np.float32) / 255.0)
    without = DGXPixelsBackgroundRemove.execute(image=img, key="#000000", tolerance=0.0).result
    for zeros in (torch.zeros(1, n, n), torch.zeros(2, n, n), torch.zeros(n, n)):
        image, mask = DGXPixelsBackgroundRemove.execute(image=img, mask=zeros, key="#000000", tolerance=0.0).result
        assert torch.equal(image, without[0]) and torch.equal(mask, without[1])
        assert tuple(mask.shape) == (2, n, n)
        assert float(mask.mean()) == pytest.approx((n - n // 2) / n)  # the bottom half, transparent
        assert bool((mask[:, n // 2:] == 1).all()) and bool((mask[:, : n // 2] == 0).all())
    # a mask that masks something is the alpha: the right column transparent, the rest opaque
    some = torch.zeros(1, n, n)
    some[0, :, -1] = 1
    mask = DGXPixelsBackgroundRemove.execute(image=img, mask=some, key="#000000", tolerance=0.0).result[1]
    assert bool((mask[:, :, -1] == 1).all()) and bool((mask[:, :, :-1] == 0).all())
    # a zero mask of another image's size is still refused by name (a wiring mistake)
    with pytest.raises(InputImageError, match=rf"^mask is 5x5 \(shape \(1, 5, 5\)\) but image is {n}x{n}"):
        DGXPixelsBackgroundRemove.execute(image=img, mask=torch.zeros(1, 5, 5), key="#000000", tolerance=0.0)
