"""Built-in palettes: counts, known colours, names and lookups."""
from __future__ import annotations

import numpy as np
import pytest

from comfy_nodes.pixel.errors import PaletteError
from comfy_nodes.pixel.palettes_builtin import builtin, is_builtin, list_builtin

EXPECTED = {
    "pico-8": (16, "000000", "ffccaa"),
    "nes": (55, "000000", "787878"),
    "gameboy": (4, "0f380f", "9bbc0f"),
    "dawnbringer-16": (16, "140c1c", "deeed6"),
    "dawnbringer-32": (32, "000000", "8a6f30"),
    "endesga-32": (32, "be4a2f", "c28569"),
    "aap-64": (64, "060608", "423934"),
    "sweetie-16": (16, "1a1c2c", "333c57"),
    "endesga-16": (16, "e4a672", "0484d1"),
    "cga": (16, "000000", "ffff55"),
    "1bit": (2, "000000", "ffffff"),
    "2bit-grayscale": (4, "000000", "ffffff"),
}


def test_list_matches_expected_names():
    assert list_builtin() == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_counts_first_last_and_no_duplicates(name):
    count, first, last = EXPECTED[name]
    p = builtin(name)
    assert len(p) == count
    hexes = p.hex_list()
    assert hexes[0] == first and hexes[-1] == last
    assert len(set(hexes)) == count
    assert p.source  # every palette says where it comes from
    assert p.colors.dtype == np.uint8 and not p.colors.flags.writeable


def test_names_are_case_and_separator_insensitive():
    assert builtin("PICO8").name == "pico-8"
    assert builtin("Pico 8").name == "pico-8"
    assert builtin("DB32").name == "dawnbringer-32"
    assert builtin("dawn_bringer-16").name == "dawnbringer-16"
    assert builtin("Game Boy").name == "gameboy"
    assert builtin("AAP64").name == "aap-64"
    assert is_builtin("edg32") and not is_builtin("edg33")


def test_unknown_name_lists_names():
    with pytest.raises(PaletteError, match="unknown built-in palette 'vga'") as exc:
        builtin("vga")
    for n in EXPECTED:
        assert n in exc.value.hint


def test_known_values_spot_checks():
    assert builtin("sweetie-16").hex_list()[3] == "ef7d57"
    assert builtin("dawnbringer-32").hex_list()[17] == "5b6ee1"
    assert builtin("endesga-32").hex_list()[17] == "0099db"
    assert builtin("aap-64").hex_list()[37] == "dae0ea"
    assert builtin("pico-8").hex_list()[8] == "ff004d"
