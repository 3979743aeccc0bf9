"""How a card looks: the category's palette, changed by the prompt's style cues (`style_cues`).

A `Look` holds every decision the drawing code needs, so the backdrop, the motif and the lettering
each read their part of it and none of them parses a prompt.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from typing import NamedTuple

from .style_cues import Cues

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
INK: RGB = (248, 250, 252)  # the title on a dark ground
DARK_INK: RGB = (15, 23, 42)  # the title and lines on a light ground


class Palette(NamedTuple):
    bg0: RGB  # darkest corner, behind the text
    bg1: RGB  # lighter corner, behind the motif
    accents: tuple[RGB, ...]


def _pal(*hexes: str) -> Palette:
    """Palette from hex strings: two backgrounds, then three accents."""
    rgb = [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for h in hexes]
    return Palette(rgb[0], rgb[1], tuple(rgb[2:]))  # type: ignore[arg-type]


# Dark grounds keep the near-white title above 10:1 contrast; one hue per category so a
# marketplace grid reads by category at a glance. Keys are normalised category names.
PALETTES: dict[str, Palette] = {
    "naturallanguageprocessing": _pal("#0A0E27", "#26216E", "#818CF8", "#A78BFA", "#F472B6"),
    "computervision": _pal("#03151A", "#0A3D47", "#22D3EE", "#2DD4BF", "#60A5FA"),
    "speechrecognition": _pal("#17081A", "#4A1240", "#F472B6", "#FB7185", "#FDBA74"),
    "generativeai": _pal("#11082A", "#45166E", "#C084FC", "#F472B6", "#FB923C"),
    "machinelearning": _pal("#050F22", "#0E3170", "#3B82F6", "#60A5FA", "#34D399"),
    "deeplearning": _pal("#03140E", "#0B4232", "#10B981", "#6EE7B7", "#22D3EE"),
    "reinforcementlearning": _pal("#170A04", "#5A260A", "#FB923C", "#FCD34D", "#F472B6"),
    "other": _pal("#0D0F13", "#2B2F37", "#CBD5E1", "#94A3B8", "#38BDF8"),
    "crimson": _pal("#17060A", "#4A0F1E", "#F43F5E", "#FB923C", "#FDE68A"),
}


class Look(NamedTuple):
    """Every choice about a card's appearance."""

    bg0: RGB  # ground behind the text
    bg1: RGB  # ground behind the motif
    accents: tuple[RGB, ...]  # three accent colours
    light: bool  # a light ground: dark title and lines
    ink: RGB  # the title
    fg: RGB  # hairlines, glass and edges
    label: RGB  # the category pill's text
    glow: float  # strength of the glows behind the motif (0: none)
    grid: str | None  # "square", "isometric" or None
    rings: int  # most rings rippling out from the motif
    triangles: bool  # a low-poly field on the ground
    fill: str  # the motif's hero shapes: "gradient", "flat" or "lines" (outlines only)
    depth: str | None  # None, "3d" (extruded) or "isometric" (projected onto a platform)
    halo: bool  # the motif glows (neon)
    motif_scale: float  # share of its square the motif takes
    grain: bool
    mono: RGB | None  # the one hue of a monochrome card


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend of two colours."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def luminance(rgb: RGB) -> float:
    r, g, b = (c / 255 for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _hsv(rgb: RGB, *, hue: float = 0.0, sat: float = 1.0, val: float | None = None) -> RGB:
    """Turn the hue by `hue` (0-1), scale saturation by `sat`, set the value to `val`."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    out = colorsys.hsv_to_rgb((h + hue) % 1.0, min(1.0, s * sat), v if val is None else val)
    return tuple(round(c * 255) for c in out)  # type: ignore[return-value]


def norm(category: str) -> str:
    """Category key: lowercase letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", category.lower())


def palette(category: str) -> Palette:
    """Curated palette for a category; unknown ones hash stably onto the same set."""
    key = norm(category)
    if key in PALETTES:
        return PALETTES[key]
    digest = hashlib.sha256(key.encode()).digest()
    return list(PALETTES.values())[digest[0] % len(PALETTES)]


def look(category: str, cues: Cues | None = None) -> Look:
    """The category's look, with the prompt's style cues applied."""
    cues = cues or Cues()
    pal = palette(category)
    accents = _accents(pal, cues)
    light = cues.ground == "light" or (cues.ground is None and cues.has("pastel") and not cues.has("neon"))
    bg0, bg1 = _ground(pal, cues, accents, light)
    busy = not cues.has("minimal")
    return Look(
        bg0=bg0,
        bg1=bg1,
        accents=accents,
        light=light,
        ink=DARK_INK if light else INK,
        fg=DARK_INK if light else WHITE,
        label=mix(accents[0], BLACK, 0.45) if light else mix(accents[0], WHITE, 0.6),
        glow=_glow(cues),
        grid=("isometric" if cues.has("isometric") else "square") if busy else None,
        rings=0 if cues.has("geometric") else 99 if busy else 2,
        triangles=cues.has("geometric"),
        fill="lines" if cues.has("line-art") else "flat" if cues.has("flat") else "gradient",
        depth="isometric" if cues.has("isometric") else "3d" if cues.has("3d") else None,
        halo=cues.has("neon"),
        motif_scale=0.84 if cues.has("minimal") else 1.0,
        grain=cues.has("grain"),
        mono=accents[0] if cues.has("monochrome") else None,
    )


def _accents(pal: Palette, cues: Cues) -> tuple[RGB, ...]:
    """Named colours first (a lone one gets two neighbours on the colour wheel), else the category's."""
    named = [rgb for _, rgb in cues.colours]
    if len(named) == 1:
        named += [_hsv(named[0], hue=0.09), _hsv(named[0], hue=-0.09)]
    accents = tuple(named[:3] + list(pal.accents[: 3 - len(named[:3])]))
    if cues.has("monochrome"):
        accents = (accents[0], mix(accents[0], WHITE, 0.4), mix(accents[0], BLACK, 0.3))
    if cues.has("pastel"):
        accents = tuple(mix(a, WHITE, 0.45) for a in accents)
    if cues.has("neon"):
        accents = tuple(_hsv(a, sat=4.0, val=1.0) for a in accents)
    elif cues.has("vibrant"):
        accents = tuple(_hsv(a, sat=1.35, val=max(0.9, max(a) / 255)) for a in accents)
    return accents


def _ground(pal: Palette, cues: Cues, accents: tuple[RGB, ...], light: bool) -> tuple[RGB, RGB]:
    """The two ground colours: behind the text (bg0) and behind the motif (bg1)."""
    if cues.ground_colour is not None:
        g = cues.ground_colour[1]
        bg0, bg1 = (mix(g, WHITE, 0.35), g) if light else (mix(g, BLACK, 0.4), g)
    elif cues.has("gradient"):
        bg0, bg1 = (
            (mix(accents[0], WHITE, 0.85), mix(accents[1], WHITE, 0.45))
            if light
            else (mix(accents[0], BLACK, 0.72), mix(accents[1], BLACK, 0.2))
        )
    elif light:
        bg0, bg1 = mix(WHITE, accents[0], 0.04), mix(WHITE, accents[0], 0.18)
    elif cues.colours or cues.has("monochrome") or cues.has("neon"):
        bg0, bg1 = mix(accents[0], BLACK, 0.92), mix(accents[0], BLACK, 0.66)
    else:
        bg0, bg1 = pal.bg0, pal.bg1
    if cues.has("flat"):  # one solid colour
        bg0 = bg1 = mix(bg0, bg1, 0.45)
    return bg0, bg1


def _glow(cues: Cues) -> float:
    if cues.has("flat"):
        return 0.0
    if cues.has("neon"):
        return 1.9
    if cues.has("vibrant"):
        return 1.4
    return 0.8 if cues.has("minimal") else 1.0
