"""Setting a card's title: measuring, balanced line breaks, fitting a box, and drawing in any script.

Each line is split into runs that share a face (`fonts.runs`). With Pillow's libraqm layout
(`PIL.features.check("raqm")`) each run is shaped, so Arabic letters join and Indic vowel signs
reorder; the runs of a line are then put in visual order with the Unicode bidi rule for levels
(right-to-left words right to left, a left-to-right phrase inside them left to right). Without
libraqm a right-to-left run is drawn with its letters reversed, in isolated forms: legible, unjoined.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from PIL import ImageDraw, features

from . import fonts
from .fonts import Font

SHAPING = features.check("raqm")  # libraqm: shaping and bidi within a run
Token = tuple[str, float, bool]  # text, width, preceded by a space
LINE_STEP = 1.12  # line spacing in em


def font(size: int, weight: int, face: fonts.Face | None = None) -> Font:
    """The primary face (or `face`) at a pixel size, laid out by libraqm when Pillow has it."""
    return fonts.load(face or fonts.primary(), size, weight, SHAPING)


def _direction(text: str) -> str:
    """'R' for a right-to-left run, 'L' for a left-to-right one (digits count as L), 'N' for neutral."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL", "AN"):
            return "R"
        if kind in ("L", "EN"):
            return "L"
    return "N"


def rtl(text: str) -> bool:
    """Whether a paragraph reads right to left: its first strong character does."""
    return _direction("".join(ch for ch in text if unicodedata.bidirectional(ch) not in ("EN", "AN"))) == "R"


def _levels(dirs: list[str], base: str) -> list[int]:
    """Embedding levels: neutrals between two runs of one direction take it, others the base's."""
    resolved = []
    for i, d in enumerate(dirs):
        if d == "N":
            before = next((x for x in reversed(dirs[:i]) if x != "N"), base)
            after = next((x for x in dirs[i + 1 :] if x != "N"), base)
            d = before if before == after else base
        resolved.append(d)
    if base == "R":
        return [1 if d == "R" else 2 for d in resolved]
    return [1 if d == "R" else 0 for d in resolved]


def _reorder(items: list, levels: list[int]) -> list:
    """Unicode bidi rule L2: from the highest level down to 1, reverse every run at that level or above."""
    items, levels = list(items), list(levels)
    for level in range(max(levels, default=0), 0, -1):
        i = 0
        while i < len(items):
            if levels[i] < level:
                i += 1
                continue
            j = i
            while j < len(items) and levels[j] >= level:
                j += 1
            items[i:j], levels[i:j] = items[i:j][::-1], levels[i:j][::-1]
            i = j
    return items


def visual_runs(text: str, size: int, weight: int, right_to_left: bool | None = None) -> list[tuple[str, Font]]:
    """The runs of one line in drawing order, left to right, each with its font.

    `right_to_left` is the paragraph's direction (a title's, for each of its lines); None reads it from text.
    """
    # Spaces stand apart: between words of one direction they follow it, at a change the paragraph's.
    runs = [(piece, face) for part, face in fonts.runs(text) for piece in re.findall(r"\s+|\S+", part)]
    dirs = [_direction(part) for part, _ in runs]
    base = "R" if (rtl(text) if right_to_left is None else right_to_left) else "L"
    ordered = _reorder(list(zip(runs, dirs, strict=True)), _levels(dirs, base))
    out = []
    for (part, face), d in ordered:
        if d == "R" and not SHAPING:
            part = part[::-1]  # basic layout draws in logical order: reverse so it reads right to left
        out.append((part, font(size, weight, face)))
    return out


def measure(text: str, size: int, weight: int, track: float = 0.0) -> float:
    """Advance width of text in pixels, with optional letter spacing in em."""
    return _width(text, size, weight, SHAPING) + track * size * max(len(text) - 1, 0)


@lru_cache(maxsize=16384)
def _width(text: str, size: int, weight: int, shaping: bool) -> float:
    """Fitting a title measures the same words again and again: each is shaped once."""
    return sum(f.getlength(part) for part, f in visual_runs(text, size, weight))


def draw_line(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    weight: int,
    fill,
    track: float = 0.0,
    right_to_left: bool | None = None,
) -> None:
    """Draw one line on the baseline from xy's left, optionally letter-spaced by track em."""
    x, y = xy
    if track:  # place each character by its prefix width so the font's kerning survives
        for i, ch in enumerate(text):
            at = x + measure(text[:i], size, weight, track) + track * size * (i > 0)
            draw_line(draw, (at, y), ch, size, weight, fill)
        return
    for part, f in visual_runs(text, size, weight, right_to_left):
        draw.text((x, y), part, font=f, fill=fill, anchor="ls")
        x += f.getlength(part)


def _tokens(text: str, size: int, max_w: float) -> list[Token]:
    """Words with widths; a word too wide for a line (or a CJK run) splits into characters."""
    out: list[Token] = []
    for word in text.split():
        width = measure(word, size, 700)
        if width <= max_w:
            out.append((word, width, True))
        else:
            out += [(ch, measure(ch, size, 700), i == 0) for i, ch in enumerate(word)]
    return out


def _wrap(tokens: list[Token], space: float, max_w: float) -> list[list[Token]]:
    """Greedy line breaking."""
    lines: list[list[Token]] = []
    width = 0.0
    for tok in tokens:
        extra = tok[1] + space * tok[2]
        if lines and width + extra <= max_w:
            lines[-1].append(tok)
            width += extra
        else:
            lines.append([tok])
            width = tok[1]
    return lines


def balanced(title: str, size: int, max_w: float) -> list[str]:
    """Fewest lines, then the narrowest measure keeping that count: even lines, no orphans."""
    tokens, space = _tokens(title, size, max_w), measure(" ", size, 700)
    count, lo, hi = len(_wrap(tokens, space, max_w)), max_w / 2, max_w
    for _ in range(10):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if len(_wrap(tokens, space, mid)) <= count else (mid, hi)
    lines = _wrap(tokens, space, hi)
    return ["".join(" " * (g and j > 0) + t for j, (t, _, g) in enumerate(ln)) for ln in lines]


def title_height(size: int, lines: int) -> int:
    """Height of the title: first ascent, line steps, last descent."""
    ascent, descent = font(size, 700).getmetrics()
    return ascent + descent + round(size * LINE_STEP) * max(lines - 1, 0)


def fit_title(title: str, box_w: int, box_h: int, big: int, small: int) -> tuple[int, list[str]]:
    """Largest size whose balanced wrap fits the box in at most four lines."""

    def fits(size: int, lines: list[str]) -> bool:
        wide = max(measure(line, size, 700) for line in lines)
        return len(lines) <= 4 and title_height(size, len(lines)) <= box_h and wide <= box_w

    while big > small:  # binary search: fitting is monotone in size
        mid = (big + small + 1) // 2
        small, big = (mid, big) if fits(mid, balanced(title, mid, box_w)) else (small, mid - 1)
    lines = balanced(title, small, box_w)
    if fits(small, lines):
        return small, lines
    room = min(len(lines), 1 + max(0, box_h - title_height(small, 1)) // round(small * LINE_STEP))
    if room == len(lines):  # more than four lines, but they do fit
        return small, lines
    keep, last = lines[: room - 1], lines[room - 1] + " …"
    while len(last) > 1 and measure(last, small, 700) > box_w:  # ellipsise, never overflow
        last = last[:-2].rstrip() + "…"
    return small, [*keep, last]
