"""Palettes: the ``Palette`` type, adaptive palettes by k-means, and quantisation to a palette.

Colours are clustered and mixed in OKLab (``comfy_nodes.pixel.color``): k-means and the
dithering offsets. Distances quoted in this module are Euclidean OKLab distances, where L runs
0..1 and a just-noticeable difference is about 0.02. Mapping a colour to a palette takes the
nearest by CIEDE2000 among its nearest in OKLab (``comfy_nodes.pixel.match``): a palette's
colours are far apart, and there OKLab alone trades hue for lightness. Error diffusion is the
exception: it picks in OKLab, the space its error is carried in (see ``dither``).

Transparent pixels (alpha below the threshold, 128 by default) never count as a colour: they
are left out of adaptive palettes and come out of ``quantize`` as RGBA (0, 0, 0, 0).

scikit-learn is imported inside the k-means function only: ``dgx-pixels snap`` must start fast
and most calls (built-in palettes, quantising) never need it.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .color import srgb_to_oklab
from .dither import MODES as DITHER_MODES  # noqa: F401  (re-exported for callers)
from .errors import InputImageError, InvalidArgumentError, PaletteError
from .imageio import as_rgba
from .match import PaletteMatcher


# Automatic k: the smallest k for which every significant colour lies within this OKLab distance
# of its palette colour. 0.04 is about two just-noticeable differences. On the 72 grid-snap
# benchmark cases (snapped sprite -> palette, against the hand-made ground truth) it gives a
# median of 12 colours where the originals have 13, with a lower colour error than a weighted-RMS
# rule, which let a large background swallow small details (median 5 colours).
AUTO_K_TOLERANCE = 0.04
# A colour is significant when it covers at least this share of the opaque pixels (and at
# least 2 pixels): single noisy pixels of a raw diffusion image must not force extra colours.
# Images of at most AUTO_K_CLEAN distinct colours are pixel art already (a snapped sprite, a
# hand-drawn one): there every colour is significant, a one-pixel eye or highlight included.
AUTO_K_MIN_SHARE = 1e-4
AUTO_K_CLEAN = 256
AUTO_K_MAX = 64

# More distinct colours than this are subsampled (deterministically) before k-means.
MAX_KMEANS_SAMPLES = 10000


@dataclass(frozen=True)
class AutoK:
    """How automatic k ended: ``k`` colours of at most ``max_k``, and ``error``, the largest
    OKLab distance of a significant colour to its palette colour at that k. ``capped`` when k
    stopped at ``max_k`` with that error still above ``tolerance``: the palette is the best of
    ``max_k`` colours, not one within the tolerance, and its user should be told so."""

    k: int
    max_k: int
    tolerance: float
    error: float

    @property
    def capped(self) -> bool:
        return self.k >= self.max_k and self.error > self.tolerance


@dataclass(eq=False)
class Palette:
    """An ordered list of opaque colours (a palette file may repeat one; adaptive palettes and
    palette images never do, and matching picks the first of equal colours).

    ``colors`` is an (N, 3) uint8 sRGB array (N >= 1); ``source`` says where the palette comes
    from (author, URL, licence note, or the file it was read from); ``names`` optionally gives
    each colour a name (a GIMP palette's colour names), one per colour.
    """

    name: str
    colors: np.ndarray
    source: str = ""
    names: tuple[str, ...] | None = None
    #: set by ``adaptive_palette`` with automatic k: how it ended (see ``AutoK``)
    auto_k: AutoK | None = field(default=None, repr=False)
    _lab: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.colors)
        if c.ndim != 2 or c.shape[1] != 3:
            raise PaletteError(f"palette {self.name!r} has colour array of shape {c.shape}; expected (N, 3)")
        if c.shape[0] == 0:
            raise PaletteError(f"palette {self.name!r} has no colours")
        if c.dtype != np.uint8:
            if not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() > 255:
                raise PaletteError(f"palette {self.name!r} colours must be integers 0..255")
            c = c.astype(np.uint8)
        self.colors = np.ascontiguousarray(c)
        self.colors.setflags(write=False)
        if self.names is not None:
            names = tuple(str(n) for n in self.names)
            if len(names) != len(self.colors):
                raise PaletteError(f"palette {self.name!r} has {len(names)} colour names for {len(self.colors)} colours")
            self.names = names

    def __len__(self) -> int:
        return int(self.colors.shape[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Palette) and np.array_equal(self.colors, other.colors)

    __hash__ = None  # type: ignore[assignment]

    def to_oklab(self) -> np.ndarray:
        """The colours in OKLab, (N, 3) float64 (cached)."""
        if self._lab is None:
            self._lab = srgb_to_oklab(self.colors)
        return self._lab

    def hex_list(self) -> list[str]:
        """Colours as lowercase ``rrggbb`` strings (no '#'), in palette order."""
        return [f"{r:02x}{g:02x}{b:02x}" for r, g, b in self.colors.tolist()]

    def with_name(self, name: str, source: str | None = None) -> "Palette":
        return Palette(name, self.colors, self.source if source is None else source, names=self.names)


def dedupe_colors(colors: np.ndarray) -> np.ndarray:
    """Drop repeated colours from an (N, 3) uint8 array, keeping first occurrences in order."""
    c = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    packed = _pack_rgb(c)
    _, first = np.unique(packed, return_index=True)
    return c[np.sort(first)]


def parse_hex_color(text: str, *, what: str = "colour") -> tuple[int, int, int]:
    """Parse ``#rgb``, ``rgb``, ``#rrggbb`` or ``rrggbb`` (case-insensitive) into an (r, g, b) tuple."""
    s = str(text).strip().lstrip("#")
    if re.fullmatch(r"[0-9a-fA-F]{3}", s):
        s = "".join(ch * 2 for ch in s)
    if not re.fullmatch(r"[0-9a-fA-F]{6}", s):
        raise InvalidArgumentError(f"{what} {text!r} is not a hex colour", hint="write it as #rrggbb, e.g. #1a1c2c")
    return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)


def as_rgb_color(value, *, what: str = "colour") -> tuple[int, int, int]:
    """A colour given as hex string or as a sequence of three ints 0..255 -> (r, g, b)."""
    if isinstance(value, str):
        return parse_hex_color(value, what=what)
    try:
        vals = [int(v) for v in value]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} {value!r} is not a colour", hint="give #rrggbb or (r, g, b)") from None
    if len(vals) < 3 or any(v < 0 or v > 255 for v in vals[:3]):
        raise InvalidArgumentError(f"{what} {value!r} must be three integers 0..255")
    return vals[0], vals[1], vals[2]


# ----------------------------------------------------------------------------- helpers


def _pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) uint32 keys r | g << 8 | b << 16 (the little-endian RGBA word)."""
    c = rgb.astype(np.uint32)
    return c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16)


def _unpack_rgb(packed: np.ndarray) -> np.ndarray:
    p = np.asarray(packed).astype(np.uint32)
    return np.stack([p & 255, (p >> 8) & 255, (p >> 16) & 255], axis=-1).astype(np.uint8)


def _rgb_keys(img: np.ndarray) -> np.ndarray:
    """(H, W) uint32 colour keys of an RGBA image, alpha ignored (see ``_pack_rgb``)."""
    if sys.byteorder == "little" and img.dtype == np.uint8 and img.flags.c_contiguous and img.shape[-1] == 4:
        # Reading each RGBA pixel as one little-endian word is ~10x faster than shifting.
        return img.view(np.uint32)[..., 0] & np.uint32(0x00FFFFFF)
    return _pack_rgb(img[..., :3])


# Above this many keys, a 2**24 presence table beats sorting (np.unique) by far.
_TABLE_MIN_KEYS = 150_000


def _key_histogram(keys: np.ndarray, *, want_inverse: bool = False):
    """Distinct keys (sorted), their counts, and (optionally) each key's index into them."""
    if keys.size < _TABLE_MIN_KEYS:
        if want_inverse:
            values, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            return values, counts, inverse.reshape(-1)
        values, counts = np.unique(keys, return_counts=True)
        return values, counts, None
    present = np.zeros(1 << 24, dtype=bool)
    present[keys] = True
    values = np.flatnonzero(present).astype(np.uint32)
    table = np.empty(1 << 24, dtype=np.int32)
    table[values] = np.arange(values.size, dtype=np.int32)
    inverse = table[keys]
    counts = np.bincount(inverse, minlength=values.size)
    return values, counts, (inverse if want_inverse else None)


def _check_threshold(alpha_threshold: int | None) -> None:
    if alpha_threshold is not None and not (1 <= int(alpha_threshold) <= 255):
        raise InvalidArgumentError(f"alpha_threshold must be 1..255 or None, got {alpha_threshold}")


def _opaque_mask(rgba: np.ndarray, alpha_threshold: int | None) -> np.ndarray:
    if alpha_threshold is None:
        return rgba[..., 3] > 0
    return rgba[..., 3] >= alpha_threshold


def _as_frames(images, what: str = "images") -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim in (2, 3):
        frames = [images]
    elif isinstance(images, np.ndarray) and images.ndim == 4:
        frames = list(images)
    elif images is None or isinstance(images, (str, bytes)):
        raise InputImageError(f"{what} is {type(images).__name__}, expected an image array or a list of them",
                              hint="give (H, W, 3|4) arrays")
    else:
        try:
            frames = list(images)
        except TypeError:
            raise InputImageError(f"{what} is a {type(images).__name__}, expected an image array or a list of them",
                                  hint="give (H, W, 3|4) arrays") from None
    if not frames:
        raise InputImageError(f"{what} is empty (no images)", hint="give at least one image")
    return [as_rgba(f, source=f"{what}[{i}]") for i, f in enumerate(frames)]


def nearest_indices(lab: np.ndarray, palette_lab: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour (Euclidean OKLab) for each row of ``lab`` (M, 3)."""
    m = lab.shape[0]
    out = np.empty(m, dtype=np.intp)
    # Chunked so a million distinct colours against 256 palette entries stays within ~50 MB.
    chunk = max(1, 2_000_000 // max(1, palette_lab.shape[0]))
    matcher = PaletteMatcher(palette_lab)
    for s in range(0, m, chunk):
        out[s : s + chunk] = np.argmin(matcher.distances(lab[s : s + chunk]), axis=1)
    return out


# ----------------------------------------------------------------------------- adaptive palettes


def _color_histogram(frames: list[np.ndarray], alpha_threshold: int | None,
                     check: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct opaque colours of all frames (packed uint32, sorted) and their pixel counts;
    ``check`` (see ``adaptive_palette``) is called before each frame."""
    parts = []
    for f in frames:
        if check is not None:
            check()
        mask = _opaque_mask(f, alpha_threshold)
        if mask.any():
            parts.append(_rgb_keys(f)[mask])
    if not parts:
        return np.empty(0, np.uint32), np.empty(0, np.int64)
    values, counts, _ = _key_histogram(np.concatenate(parts))
    return values, counts


def adaptive_palette(
    images,
    k: int | None = 16,
    seed: int = 0,
    *,
    alpha_threshold: int | None = 128,
    tolerance: float = AUTO_K_TOLERANCE,
    max_k: int = AUTO_K_MAX,
    n_init: int = 1,
    name: str | None = None,
    check: Callable[[], None] | None = None,
) -> Palette:
    """One palette of at most ``k`` colours shared by all ``images``.

    ``images``: one (H, W, 3|4) image or a sequence of them (an animation: all frames share the
    palette so they do not flicker). Only pixels with alpha >= ``alpha_threshold`` count.

    ``k``: 1..256 colours, or ``None`` for automatic k: the smallest k (up to ``max_k``, found by
    bisection) for which every significant colour (with its near shades, within half the
    tolerance, at least 2 pixels and 0.01 % of the opaque pixels; every colour of an image of
    at most ``AUTO_K_CLEAN`` distinct colours) lies within
    ``tolerance`` (OKLab distance) of its palette colour. When even ``max_k`` colours leave a
    colour farther than that, the palette has ``max_k`` colours and its ``auto_k.capped`` is
    true (with the error reached in ``auto_k.error``): callers tell their user.
    ``n_init``: k-means restarts (1 by default: k-means++ seeding is already good on colour data
    and each restart costs a full run; raise it for a slightly lower error).
    If the images have at most k distinct colours, those colours are returned exactly (most
    frequent first) with no clustering. Otherwise k-means (scikit-learn, k-means++ init,
    ``random_state=seed``) runs in OKLab on the distinct colours weighted by pixel
    count; with more than 10 000 distinct colours, 10 000 pixels drawn by a ``seed``-driven
    generator stand in for the image.
    The result is deterministic for a given seed. Colours are ordered by pixel count, largest first.

    ``check``, when given, is called without arguments before each frame is counted and before
    each k-means run (automatic k runs up to 1 + log2(``max_k``) of them);
    whatever it raises propagates, so a host application can abandon the work when its user
    cancels.
    """
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise InvalidArgumentError(f"k must be an integer 1..256 or None (automatic), got {k!r}")
        if not 1 <= int(k) <= 256:
            raise InvalidArgumentError(f"k must be 1..256 (number of palette colours), got {k}")
        k = int(k)
    if not 1 <= int(max_k) <= 256:
        raise InvalidArgumentError(f"max_k must be 1..256, got {max_k}")
    if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or not 1 <= n_init <= 32:
        raise InvalidArgumentError(f"n_init must be an integer 1..32 (k-means restarts), got {n_init!r}")
    if not tolerance > 0:
        raise InvalidArgumentError(f"tolerance must be > 0 (OKLab distance), got {tolerance}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise InvalidArgumentError(f"seed must be an integer 0..{2**32 - 1}, got {seed!r}")
    _check_threshold(alpha_threshold)
    frames = _as_frames(images)
    values, counts = _color_histogram(frames, alpha_threshold, check)
    if values.size == 0:
        raise InputImageError(
            "the images have no opaque pixels to build a palette from",
            hint="check the alpha channel (or the mask) of the images: every pixel is transparent",
        )
    label = name or ("adaptive-auto" if k is None else f"adaptive-{k}")
    source = f"k-means in OKLab over {len(frames)} image(s), seed {seed}"
    if k is not None and values.size <= k:
        order = np.lexsort((values, -counts))
        return Palette(label, _unpack_rgb(values[order]), f"the {values.size} distinct colours of {len(frames)} image(s)")

    rng = np.random.default_rng(seed)
    if values.size > MAX_KMEANS_SAMPLES:
        # Draw pixels (not distinct colours) so frequent colours keep their weight; the number of
        # draws that hit a colour becomes its weight.
        pick = rng.choice(values.size, size=MAX_KMEANS_SAMPLES, replace=True, p=counts / counts.sum())
        uniq, hits = np.unique(pick, return_counts=True)
        values_s, counts_s = values[uniq], hits
    else:
        values_s, counts_s = values, counts
    lab = srgb_to_oklab(_unpack_rgb(values_s))
    weights = counts_s.astype(np.float64)

    if k is None:
        upper = min(int(max_k), values.size)
        cache: dict[int, tuple[np.ndarray, float]] = {}
        if values.size <= AUTO_K_CLEAN:
            significant = np.ones(len(weights), bool)
        else:
            # A colour's weight is that of its near shades too: noise spreads a small area
            # (a 4x4 patch) over one-pixel variants, none of which would count alone.
            q = np.floor(lab / (tolerance / 2.0)).astype(np.int64)
            keys = (q[:, 0] * 1_000_003 + q[:, 1]) * 1_000_003 + q[:, 2]
            _, bin_of = np.unique(keys, return_inverse=True)
            bin_mass = np.bincount(bin_of.reshape(-1), weights=weights)
            significant = bin_mass[bin_of.reshape(-1)] >= max(2.0, AUTO_K_MIN_SHARE * float(weights.sum()))
        if not significant.any():
            significant[:] = True

        def run(kk: int) -> tuple[np.ndarray, float]:
            if kk not in cache:
                if check is not None:
                    check()
                centers_k, _ = _kmeans(lab, weights, kk, seed, n_init)
                d = np.linalg.norm(lab[significant] - centers_k[nearest_indices(lab[significant], centers_k)], axis=1)
                cache[kk] = (centers_k, float(d.max()))
            return cache[kk]

        if run(upper)[1] > tolerance:
            chosen = upper
        else:
            lo, hi = 1, upper
            while lo < hi:
                mid = (lo + hi) // 2
                if run(mid)[1] <= tolerance:
                    hi = mid
                else:
                    lo = mid + 1
            chosen = lo
        if chosen >= values.size:
            order = np.lexsort((values, -counts))
            return Palette(label, _unpack_rgb(values[order]), f"the {values.size} distinct colours of {len(frames)} image(s)")
        centers, error = run(chosen)
        source += f", automatic k = {chosen} (every significant colour within {tolerance} OKLab, or k = {upper})"
        pal = _palette_from_centers(centers, lab, weights, label, source)
        # upper < max_k only when the images have fewer colours than max_k: never a cap then
        pal.auto_k = AutoK(k=chosen, max_k=int(max_k), tolerance=float(tolerance), error=error)
        return pal
    if check is not None:
        check()
    centers, _ = _kmeans(lab, weights, k, seed, n_init)
    return _palette_from_centers(centers, lab, weights, label, source)


def _kmeans(lab: np.ndarray, weights: np.ndarray, k: int, seed: int, n_init: int = 1) -> tuple[np.ndarray, float]:
    """Weighted k-means in OKLab; returns (centres (k, 3), weighted RMS distance to the centres)."""
    if k >= lab.shape[0]:
        return lab.copy(), 0.0
    try:
        from sklearn.cluster import KMeans  # lazy: heavy import, only needed here
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError("reducing colours by k-means needs the scikit-learn package, which this "
                                     "Python does not have") from None

    km = KMeans(n_clusters=k, n_init=int(n_init), random_state=int(seed) % (2**32))
    km.fit(lab, sample_weight=weights)
    err = float(np.sqrt(max(km.inertia_, 0.0) / weights.sum()))
    return km.cluster_centers_, err


def _palette_from_centers(centers, lab, weights, label, source) -> Palette:
    from .color import oklab_to_srgb8

    rgb = oklab_to_srgb8(centers)
    # Order by the weight each centre takes; centres rounding to the same sRGB colour merge.
    idx = nearest_indices(lab, srgb_to_oklab(rgb))
    mass = np.bincount(idx, weights=weights, minlength=rgb.shape[0])
    order = np.lexsort((_pack_rgb(rgb), -mass))
    rgb = dedupe_colors(rgb[order])
    return Palette(label, rgb, source)


def distinct_colors(images, *, alpha_threshold: int | None = 128) -> Palette:
    """All distinct opaque colours of the images, most frequent first (ties by colour value)."""
    _check_threshold(alpha_threshold)
    frames = _as_frames(images)
    values, counts = _color_histogram(frames, alpha_threshold)
    if values.size == 0:
        raise InputImageError("the images have no opaque pixels", hint="check the alpha channel")
    order = np.lexsort((values, -counts))
    return Palette("distinct", _unpack_rgb(values[order]), f"distinct colours of {len(frames)} image(s)")


# ----------------------------------------------------------------------------- quantisation


def quantize(
    rgba,
    palette: Palette,
    *,
    dither: str = "none",
    strength: float = 1.0,
    alpha_threshold: int | None = 128,
) -> np.ndarray:
    """Map every opaque pixel to a palette colour; returns (H, W, 4) uint8 RGBA.

    Opaque pixels (alpha >= ``alpha_threshold``) get the nearest palette colour (CIEDE2000, see
    ``match``), or a dithered choice (``dither``: 'none', 'bayer2', 'bayer4', 'bayer8',
    'floyd-steinberg', 'atkinson'); ``strength`` 0..1 scales the dither (0 = plain nearest
    colour). Output alpha is binary: 255 for those pixels, 0 (with RGB 0) for the others. With
    ``alpha_threshold=None`` alpha is kept as it is and every pixel with alpha > 0 is mapped.
    Every output colour with alpha > 0 is exactly a palette colour.
    """
    from . import dither as _dither

    if not isinstance(palette, Palette):
        raise InvalidArgumentError(f"palette must be a Palette, got {type(palette).__name__}", hint="use resolve_palette(name_or_path)")
    mode = _dither.normalise_mode(dither)
    try:
        strength = float(strength)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"strength must be a number 0..1, got {strength!r}") from None
    if not 0.0 <= strength <= 1.0:
        raise InvalidArgumentError(f"strength must be 0..1, got {strength}")
    _check_threshold(alpha_threshold)
    img = as_rgba(rgba, source="image")
    h, w = img.shape[:2]
    mask = _opaque_mask(img, alpha_threshold)
    matcher = PaletteMatcher(palette.to_oklab())

    if mode == "none" or strength == 0.0:
        idx = _map_nearest(img, mask, matcher)
    elif mode.startswith("bayer"):
        idx = _dither.ordered(img, mask, matcher, int(mode[5:]), strength)
    else:
        idx = _dither.error_diffusion(img, mask, matcher, mode, strength)

    # One gather through an RGBA table whose extra last row is the transparent pixel.
    table = np.zeros((len(palette) + 1, 4), dtype=np.uint8)
    table[:-1, :3] = palette.colors
    table[:-1, 3] = 255
    idx[~mask] = len(palette)
    out = table[idx]
    if alpha_threshold is None:
        out[..., 3] = np.where(mask, img[..., 3], 0)
    return out


def _map_nearest(img: np.ndarray, mask: np.ndarray, matcher: PaletteMatcher) -> np.ndarray:
    """Nearest palette index per pixel (H, W) (see ``match``); computed once per distinct colour."""
    idx = np.zeros(img.shape[:2], dtype=np.intp)
    if not mask.any():
        return idx
    values, _, inverse = _key_histogram(_rgb_keys(img)[mask], want_inverse=True)
    nearest = matcher.nearest(srgb_to_oklab(_unpack_rgb(values)))
    idx[mask] = nearest[inverse]
    return idx


def quantize_batch(
    frames: Sequence[np.ndarray] | np.ndarray,
    palette: Palette,
    *,
    dither: str = "none",
    strength: float = 1.0,
    alpha_threshold: int | None = 128,
) -> list[np.ndarray]:
    """``quantize`` each frame with the same palette (frames may differ in size)."""
    imgs = _as_frames(frames, "frames")
    return [quantize(f, palette, dither=dither, strength=strength, alpha_threshold=alpha_threshold) for f in imgs]


def palette_swatch(palette: Palette, *, swatch: int = 16, columns: int | None = None) -> np.ndarray:
    """An RGBA preview image: one ``swatch`` x ``swatch`` square per colour, row-major.

    ``columns`` defaults to min(N, 16); unused cells of the last row are transparent.
    """
    if swatch < 1:
        raise InvalidArgumentError(f"swatch must be >= 1 pixel, got {swatch}")
    n = len(palette)
    cols = min(n, 16) if columns is None else int(columns)
    if cols < 1:
        raise InvalidArgumentError(f"columns must be >= 1, got {columns}")
    rows = -(-n // cols)
    grid = np.zeros((rows, cols, 4), dtype=np.uint8)
    flat = grid.reshape(-1, 4)
    flat[:n, :3] = palette.colors
    flat[:n, 3] = 255
    return np.repeat(np.repeat(grid, swatch, axis=0), swatch, axis=1)


def resolve_palette(name_or_path, *, base_dir=None) -> Palette:
    """A ``Palette`` from a built-in name, a palette file (.hex/.gpl/.pal/.txt/.png), or a Palette.

    Built-in names are matched case-insensitively ignoring spaces, '-' and '_'. A string that
    is not a built-in name is read as a file path (relative paths against ``base_dir`` if given).
    """
    from pathlib import Path

    from . import palette_io, palettes_builtin

    if isinstance(name_or_path, Palette):
        return name_or_path
    if name_or_path is None or (isinstance(name_or_path, str) and not name_or_path.strip()):
        raise PaletteError("no palette given (empty name)")
    text = str(name_or_path)
    if palettes_builtin.is_builtin(text):
        return palettes_builtin.builtin(text)
    p = Path(text).expanduser()
    if base_dir is not None and not p.is_absolute():
        p = Path(base_dir) / p
    if p.suffix.lower() in palette_io.READ_FORMATS or p.suffix.lower() in palette_io.OTHER_FORMATS or p.exists():
        return palette_io.read_palette(p)
    raise PaletteError(
        f"unknown palette {text!r}: not a built-in name and not a palette file",
        hint="built-in palettes: " + ", ".join(palettes_builtin.list_builtin()) + "; or a .hex/.gpl/.pal/.txt/.png file",
    )

