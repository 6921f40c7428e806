"""Built-in palettes, each with its author and where the colour values were checked.

Every palette was copied from a published list and cross-checked against a second independent
copy (the GIMP palettes Aseprite ships in ``data/extensions/*-palettes``, the Lospec palette
list, and the ``peterhellberg/gfx`` Go palette collection, itself taken from Lospec). Counts are
tested in ``tests/test_palette_builtin.py``. Palettes are listed in the order their authors
publish them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import PaletteError
from .palette import Palette


@dataclass(frozen=True)
class _Entry:
    name: str
    hexes: str
    source: str
    aliases: tuple[str, ...] = ()


_ENTRIES: tuple[_Entry, ...] = (
    _Entry(
        "pico-8",
        "000000 1d2b53 7e2553 008751 ab5236 5f574f c2c3c7 fff1e8 "
        "ff004d ffa300 ffec27 00e436 29adff 83769c ff77a8 ffccaa",
        "PICO-8 fantasy console by Lexaloffle (Joseph White); the 16 official colours in index order. "
        "https://lospec.com/palette-list/pico-8 ; Aseprite pico8-palette/pico-8.gpl",
        ("pico8", "p8"),
    ),
    _Entry(
        "nes",
        "000000 fcfcfc f8f8f8 bcbcbc 7c7c7c a4e4fc 3cbcfc 0078f8 0000fc b8b8f8 6888fc 0058f8 0000bc "
        "d8b8f8 9878f8 6844fc 4428bc f8b8f8 f878f8 d800cc 940084 f8a4c0 f85898 e40058 a80020 "
        "f0d0b0 f87858 f83800 a81000 fce0a8 fca044 e45c10 881400 f8d878 f8b800 ac7c00 503000 "
        "d8f878 b8f818 00b800 007800 b8f8b8 58d854 00a800 006800 b8f8d8 58f898 00a844 005800 "
        "00fcfc 00e8d8 008888 004058 f8d8f8 787878",
        "Nintendo Entertainment System as listed on Lospec ('nintendo-entertainment-system', 55 colours): "
        "one common emulator rendering of the 2C02 PPU colours, black once, keeping the near-duplicates "
        "fcfcfc/f8f8f8 and 7c7c7c/787878 as published. https://lospec.com/palette-list/nintendo-entertainment-system",
        ("nes55", "famicom", "nintendo-entertainment-system"),
    ),
    _Entry(
        "gameboy",
        "0f380f 306230 8bac0f 9bbc0f",
        "Nintendo Game Boy (DMG-01) 4 greens, darkest to lightest, as commonly emulated. "
        "Aseprite hardware-palettes/gameboy.gpl (listed lightest first there)",
        ("game-boy", "gb", "dmg", "gameboy-dmg"),
    ),
    _Entry(
        "dawnbringer-16",
        "140c1c 442434 30346d 4e4a4e 854c30 346524 d04648 757161 "
        "597dce d27d2c 8595a1 6daa2c d2aa99 6dc2ca dad45e deeed6",
        "DawnBringer 16 by Richard 'DawnBringer' Fhager, http://pixeljoint.com/forum/forum_posts.asp?TID=12795 ; "
        "https://lospec.com/palette-list/dawnbringer-16 ; Aseprite dawnbringer-palettes/db16.gpl",
        ("db16", "dawnbringer16"),
    ),
    _Entry(
        "dawnbringer-32",
        "000000 222034 45283c 663931 8f563b df7126 d9a066 eec39a fbf236 99e550 6abe30 37946e "
        "4b692f 524b24 323c39 3f3f74 306082 5b6ee1 639bff 5fcde4 cbdbfc ffffff 9badb7 847e87 "
        "696a6a 595652 76428a ac3232 d95763 d77bba 8f974a 8a6f30",
        "DawnBringer 32 by Richard 'DawnBringer' Fhager, http://pixeljoint.com/forum/forum_posts.asp?TID=16247 ; "
        "https://lospec.com/palette-list/dawnbringer-32 ; Aseprite dawnbringer-palettes/db32.gpl",
        ("db32", "dawnbringer32"),
    ),
    _Entry(
        "endesga-32",
        "be4a2f d77643 ead4aa e4a672 b86f50 733e39 3e2731 a22633 e43b44 f77622 feae34 fee761 "
        "63c74d 3e8948 265c42 193c3e 124e89 0099db 2ce8f5 ffffff c0cbdc 8b9bb4 5a6988 3a4466 "
        "262b44 181425 ff0044 68386c b55088 f6757a e8b796 c28569",
        "Endesga 32 (EDG32) by ENDESGA, made for the game NYKRA. https://lospec.com/palette-list/endesga-32 "
        "(an older 31-colour draft with slightly different values also circulates; this is the published one)",
        ("edg32", "endesga32"),
    ),
    _Entry(
        "aap-64",
        "060608 141013 3b1725 73172d b4202a df3e23 fa6a0a f9a31b ffd541 fffc40 d6f264 9cdb43 "
        "59c135 14a02e 1a7a3e 24523b 122020 143464 285cc4 249fde 20d6c7 a6fcdb ffffff fef3c0 "
        "fad6b8 f5a097 e86a73 bc4a9b 793a80 403353 242234 221c1a 322b28 71413b bb7547 dba463 "
        "f4d29c dae0ea b3b9d1 8b93af 6d758d 4a5462 333941 422433 5b3138 8e5252 ba756a e9b5a3 "
        "e3e6ff b9bffb 849be4 588dbe 477d85 23674e 328464 5daf8d 92dcba cdf7e2 e4d2aa c7b08b "
        "a08662 796755 5a4e44 423934",
        "AAP-64 by Adigun A. Polack. https://lospec.com/palette-list/aap-64 ; "
        "Aseprite adigunpolack-palettes/aap-64.gpl",
        ("aap64",),
    ),
    _Entry(
        "sweetie-16",
        "1a1c2c 5d275d b13e53 ef7d57 ffcd75 a7f070 38b764 257179 "
        "29366f 3b5dc9 41a6f6 73eff7 f4f4f4 94b0c2 566c86 333c57",
        "Sweetie 16 by GrafxKid. https://lospec.com/palette-list/sweetie-16",
        ("sweetie16",),
    ),
    _Entry(
        "endesga-16",
        "e4a672 b86f50 743f39 3f2832 9e2835 e53b44 fb922b ffe762 "
        "63c64d 327345 193d3f 4f6781 afbfd2 ffffff 2ce8f4 0484d1",
        "Endesga 16 (EDG16) by ENDESGA. https://lospec.com/palette-list/endesga-16",
        ("edg16", "endesga16"),
    ),
    _Entry(
        "cga",
        "000000 555555 aaaaaa ffffff 0000aa 5555ff 00aa00 55ff55 "
        "00aaaa 55ffff aa0000 ff5555 aa00aa ff55ff aa5500 ffff55",
        "IBM Color Graphics Adapter (1981), all 16 RGBI colours (with the brown fix for colour 6). "
        "https://lospec.com/palette-list/color-graphics-adapter",
        ("cga16", "color-graphics-adapter"),
    ),
    _Entry(
        "1bit",
        "000000 ffffff",
        "Black and white (1-bit monochrome).",
        ("1-bit", "monochrome", "bw", "black-and-white"),
    ),
    _Entry(
        "2bit-grayscale",
        "000000 676767 b6b6b6 ffffff",
        "4 greys at 2 bits per pixel. https://lospec.com/palette-list/2-bit-grayscale",
        ("2-bit-grayscale", "grayscale-4", "gray4"),
    ),
)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name).strip().lower())


_BY_KEY: dict[str, _Entry] = {}
for _e in _ENTRIES:
    for _n in (_e.name, *_e.aliases):
        _BY_KEY[_key(_n)] = _e

_CACHE: dict[str, Palette] = {}


def list_builtin() -> list[str]:
    """Canonical names of the built-in palettes, in a stable order."""
    return [e.name for e in _ENTRIES]


def is_builtin(name: str) -> bool:
    """True when ``name`` (case, spaces, '-', '_' and '.' ignored) names a built-in palette."""
    return _key(name) in _BY_KEY


def builtin(name: str) -> Palette:
    """The built-in palette called ``name`` (or one of its aliases, e.g. 'db32', 'PICO8')."""
    entry = _BY_KEY.get(_key(name))
    if entry is None:
        raise PaletteError(
            f"unknown built-in palette {name!r}",
            hint="built-in palettes: " + ", ".join(list_builtin()),
        )
    pal = _CACHE.get(entry.name)
    if pal is None:
        colors = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in entry.hexes.split()], dtype=np.uint8)
        pal = Palette(entry.name, colors, entry.source)
        _CACHE[entry.name] = pal
    return pal


def aliases(name: str) -> tuple[str, ...]:
    """Other accepted names of a built-in palette."""
    entry = _BY_KEY.get(_key(name))
    if entry is None:
        raise PaletteError(f"unknown built-in palette {name!r}", hint="built-in palettes: " + ", ".join(list_builtin()))
    return entry.aliases
