"""Offline, deterministic card artwork for AIXchange solutions (the `local` provider).

The marketplace shows a card image `object-cover` in a ~350x192 box, so only a centred
CROP_ASPECT band of it is ever seen: the motif, category pill and title all sit in that
band (`safe_box`), and the backdrop of gradient, glows and grid fills the rest.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont

from .artwork_motifs import INK, MOTIFS, RGB, Square, backdrop, draw_motif, mix

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Box = tuple[int, int, int, int]  # left, top, right, bottom
CROP_ASPECT = 350 / 192  # SolutionCard: <Image fill className="object-cover"> in a w-full h-48 box


class _Palette(NamedTuple):
    bg0: RGB  # darkest corner, behind the text
    bg1: RGB  # lighter corner, behind the motif
    accents: tuple[RGB, ...]


def _pal(*hexes: str) -> _Palette:
    """Palette from hex strings: two backgrounds, then three accents."""
    rgb = [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for h in hexes]
    return _Palette(rgb[0], rgb[1], tuple(rgb[2:]))  # type: ignore[arg-type]


# Dark grounds keep the near-white title above 10:1 contrast; one hue per category so a
# marketplace grid reads by category at a glance. Keys are normalised category names.
_PALETTES: dict[str, _Palette] = {
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
# Word prefixes per motif; on a tie the earlier (more specific) motif wins.
_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shield", ("secur", "fraud", "privacy", "threat", "encrypt", "protect", "cyber")),
    ("waveform", ("speech", "audio", "voice", "sound", "music", "podcast", "transcri")),
    ("aperture", ("vision", "image", "camera", "photo", "video", "visual", "ocr")),
    ("bubbles", ("text", "language", "chat", "convers", "translat", "summar", "nlp")),
    ("graph", ("neural", "network", "deep", "graph", "transformer", "embedding")),
    ("chart", ("data", "analytic", "forecast", "predict", "trend", "metric", "financ")),
    ("gears", ("robot", "automat", "workflow", "pipeline", "orchestr", "integrat")),
    ("path", ("reinforc", "agent", "reward", "game", "policy", "navigat", "route")),
    ("sparkles", ("generat", "creativ", "design", "diffusion", "synthes", "artwork")),
)
_CATEGORY_MOTIF = dict(
    zip(list(_PALETTES)[:7], ("bubbles", "aperture", "waveform", "sparkles", "chart", "graph", "path"), strict=True)
)
# Glyphs Inter lacks (CJK...) come from whichever of these is installed; with none,
# those characters are left out rather than drawn as .notdef boxes.
_FALLBACK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


class _Text(NamedTuple):
    size: int  # title pixel size
    lines: list[str]
    label: str
    lsize: int  # label pixel size
    height: int  # whole block: label pill, gap, title lines


class _Layout(NamedTuple):
    motif: Square
    text_xy: tuple[int, int]
    text_w: int  # the text column's width: the label pill never runs past it
    text: _Text


def draw_card(
    *,
    title: str,
    description: str,
    category: str,
    tags: list[str] | None,
    seed: int,
    width: int,
    height: int,
) -> Image.Image:
    """Render a deterministic RGB card image for one solution."""
    if width < 64 or height < 64:
        raise ValueError(f"card size {width}x{height} is too small")
    rng = random.Random(f"{seed}\x1f{title}\x1f{category}")
    pal = _palette(category)
    shift = rng.randrange(3)  # rotating the accents is part of the seed's variation
    acc = pal.accents[shift:] + pal.accents[:shift]
    lay = _layout(width, height, title, category, rng)
    img = backdrop(
        width, height, pal.bg0, pal.bg1, pal.accents[:2], lay.motif, rng
    )  # unrotated: glows are the category's
    words = f"{title} {description} {' '.join(tags or [])}"
    variants = MOTIFS[_motif_name(words, category)]
    draw_motif(img, lay.motif, rng.choice(variants), pal.bg1, acc, rng)
    _draw_text(img, lay.text_xy, lay.text, pal.accents, lay.text_w)
    return img


def safe_box(width: int, height: int) -> Box:
    """The centred CROP_ASPECT band of a width x height image that a marketplace card shows."""
    if width > height * CROP_ASPECT:  # wider than the card: full height, sides cropped
        seen = round(height * CROP_ASPECT)
        return (width - seen) // 2, 0, (width - seen) // 2 + seen, height
    seen = round(width / CROP_ASPECT)
    return 0, (height - seen) // 2, width, (height - seen) // 2 + seen


def _norm(category: str) -> str:
    """Category key: lowercase letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", category.lower())


def _palette(category: str) -> _Palette:
    """Curated palette for a category; unknown ones hash stably onto the same set."""
    key = _norm(category)
    if key in _PALETTES:
        return _PALETTES[key]
    digest = hashlib.sha256(key.encode()).digest()
    return list(_PALETTES.values())[digest[0] % len(_PALETTES)]


def _motif_name(text: str, category: str) -> str:
    """The motif whose keywords occur most; else the category's; else orbit."""
    words = re.findall(r"\w+", text.lower())
    scores = [(sum(w.startswith(ks) for w in words), n) for n, ks in _KEYWORDS]
    best, name = max(scores, key=lambda s: s[0])  # max keeps the first of equals
    return name if best else _CATEGORY_MOTIF.get(_norm(category), "orbit")


def _layout(w: int, h: int, title: str, category: str, rng: random.Random) -> _Layout:
    """Motif square beside the text column, both inside the safe band at every aspect ratio.

    The band always has the marketplace card's shape, so one composition scaled to its
    height serves square, portrait and landscape alike; a long title takes room from the motif.
    """
    left, top, right, bottom = safe_box(w, h)
    bh = bottom - top
    m, gap = round(0.08 * bh), round(0.09 * bh)
    room = bh - 2 * m
    mirrored, low = rng.random() < 0.3, rng.random() < 0.4  # motif on the left; text sits low
    side, dy = room * rng.uniform(0.86, 0.96), rng.uniform(-0.12, 0.12)
    for scale in (1.0, 0.82, 0.68):
        s = round(side * scale)
        text_w = right - left - 2 * m - s - gap
        text = _fit_text(title, category, text_w, room, bh)
        if not text.lines or text.size >= 0.085 * bh:  # comfortably large: keep the motif
            break
    my = round(top + (bh - s) / 2 + dy * (room - s))
    ty = bottom - m - text.height if low else top + (bh - text.height) // 2
    mx, tx = (left + m, left + m + s + gap) if mirrored else (right - m - s, left + m)
    return _Layout((mx, my, s), (tx, ty), text_w, text)


@lru_cache(maxsize=1)
def _font_path() -> str | None:
    """Inter from the fontpkg-inter wheel, else a vendored font, else a system sans."""
    try:
        import fontpkg_inter  # OFL Inter from PyPI: no system fonts needed

        found = fontpkg_inter.ROOT / "files" / "Inter[opsz,wght].ttf"
        if found.is_file():
            return str(found)
    except ImportError:
        pass
    vendored = sorted((Path(__file__).parent / "fonts").glob("*.[ot]tf"))
    if vendored:
        return str(vendored[0])
    dejavu = Path(_FALLBACK_FONTS[3])
    return str(dejavu) if dejavu.is_file() else None  # None: Pillow's built-in font


@lru_cache(maxsize=1)
def _fallback_paths() -> tuple[str, ...]:
    """Installed fonts that can lend glyphs the primary font lacks."""
    return tuple(p for p in _FALLBACK_FONTS if Path(p).is_file() and p != _font_path())


@lru_cache(maxsize=256)
def _font(path: str | None, size: int, weight: int) -> Font:
    """A font at a pixel size; variable fonts get weight and optical size set."""
    if path is None:
        return ImageFont.load_default(size)
    font = ImageFont.truetype(path, size)
    try:
        axes = font.get_variation_axes()
    except OSError:  # a static font has no axes to set
        return font
    want = {"weight": weight, "optical size": size}
    values = []
    for axis in axes:
        name = axis["name"]
        name = (name.decode() if isinstance(name, bytes) else str(name)).lower()
        value = want.get(name, axis["default"])
        values.append(min(max(value, axis["minimum"]), axis["maximum"]))
    font.set_variation_by_axes(values)
    return font


@lru_cache(maxsize=4096)
def _covers(path: str, ch: str) -> bool:
    """Whether a font has a glyph for ch: a missing one renders as .notdef."""
    font = _font(path, 24, 400)
    mask, missing = font.getmask(ch), font.getmask("\U000ffffd")
    return (mask.size, bytes(mask)) != (missing.size, bytes(missing))


def _path_for(ch: str) -> str | None:
    """Font file to draw ch with; '' when no available font has the glyph."""
    primary = _font_path()
    if primary is None or ch.isspace() or ord(ch) < 0x250 or _covers(primary, ch):
        return primary
    return next((p for p in _fallback_paths() if _covers(p, ch)), "")


def _printable(text: str) -> str:
    """Text without characters no available font can draw, whitespace collapsed."""
    return " ".join("".join(ch for ch in text if _path_for(ch) != "").split())


def _runs(text: str, size: int, weight: int) -> list[tuple[str, Font]]:
    """Split text into runs sharing a font (font fallback per character)."""
    groups = itertools.groupby(text, key=_path_for)
    return [("".join(chars), _font(path, size, weight)) for path, chars in groups]


def _measure(text: str, size: int, weight: int, track: float = 0.0) -> float:
    """Advance width of text in pixels, with optional letter spacing in em."""
    width = sum(font.getlength(part) for part, font in _runs(text, size, weight))
    return width + track * size * max(len(text) - 1, 0)


def _draw_str(draw, x: float, y: float, text: str, size: int, weight: int, fill, track=0.0) -> None:
    """Draw text on the baseline y, optionally letter-spaced by track em."""
    if track:  # place each character by its prefix width so the font's kerning survives
        for i, ch in enumerate(text):
            at = x + _measure(text[:i], size, weight, track) + track * size * (i > 0)
            _draw_str(draw, at, y, ch, size, weight, fill)
        return
    for part, font in _runs(text, size, weight):
        draw.text((x, y), part, font=font, fill=fill, anchor="ls")
        x += font.getlength(part)


Token = tuple[str, float, bool]  # text, width, preceded by a space


def _tokens(text: str, size: int, max_w: float) -> list[Token]:
    """Words with widths; a word too wide for a line (or a CJK run) splits into characters."""
    out: list[Token] = []
    for word in text.split():
        width = _measure(word, size, 700)
        if width <= max_w:
            out.append((word, width, True))
        else:
            out += [(ch, _measure(ch, size, 700), i == 0) for i, ch in enumerate(word)]
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


def _balanced(title: str, size: int, max_w: float) -> list[str]:
    """Fewest lines, then the narrowest measure keeping that count: even lines, no orphans."""
    tokens, space = _tokens(title, size, max_w), _measure(" ", size, 700)
    count, lo, hi = len(_wrap(tokens, space, max_w)), max_w / 2, max_w
    for _ in range(10):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if len(_wrap(tokens, space, mid)) <= count else (mid, hi)
    lines = _wrap(tokens, space, hi)
    return ["".join(" " * (g and j > 0) + t for j, (t, _, g) in enumerate(ln)) for ln in lines]


def _title_height(size: int, lines: int) -> int:
    """Height of the title: first ascent, line steps, last descent."""
    ascent, descent = _font(_font_path(), size, 700).getmetrics()
    return ascent + descent + round(size * 1.12) * max(lines - 1, 0)


def _fit_title(title: str, box_w: int, box_h: int, big: int, small: int) -> tuple[int, list[str]]:
    """Largest size whose balanced wrap fits the box in at most four lines."""

    def fits(size: int, lines: list[str]) -> bool:
        wide = max(_measure(line, size, 700) for line in lines)
        return len(lines) <= 4 and _title_height(size, len(lines)) <= box_h and wide <= box_w

    while big > small:  # binary search: fitting is monotone in size
        mid = (big + small + 1) // 2
        small, big = (mid, big) if fits(mid, _balanced(title, mid, box_w)) else (small, mid - 1)
    lines = _balanced(title, small, box_w)
    if fits(small, lines):
        return small, lines
    room = min(len(lines), 1 + max(0, box_h - _title_height(small, 1)) // round(small * 1.12))
    if room == len(lines):  # more than four lines, but they do fit
        return small, lines
    keep, last = lines[: room - 1], lines[room - 1] + " …"
    while len(last) > 1 and _measure(last, small, 700) > box_w:  # ellipsise, never overflow
        last = last[:-2].rstrip() + "…"
    return small, [*keep, last]


def _fit_text(title: str, category: str, box_w: int, box_h: int, unit: int) -> _Text:
    """Size the label and fit the title into a text box; sizes scale with unit (the band height)."""
    lsize = max(9, round(0.038 * unit))
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", category.replace("_", " "))
    label = _printable(spaced).upper() if box_h > 7 * lsize else ""
    head = round(lsize * 3.4) if label else 0  # pill (2.1 em) plus gap (1.3 em)
    title = _printable(title)
    if not title:
        return _Text(lsize, [], label, lsize, head)
    size, lines = _fit_title(title, box_w, box_h - head, round(0.13 * unit), max(10, round(0.05 * unit)))
    return _Text(size, lines, label, lsize, head + _title_height(size, len(lines)))


def _draw_label(draw, x: int, y: int, max_w: int, size: int, text: str, acc) -> None:
    """Small letter-spaced category pill."""
    height, pad, dot, track = round(size * 2.1), size * 0.9, size * 0.22, 0.08
    inner = pad * 2 + dot * 2 + size * 0.6
    while len(text) > 1 and _measure(text, size, 600, track) + inner > max_w:
        text = text[:-2].rstrip() + "…"
    right = x + _measure(text, size, 600, track) + inner
    edge = max(1, round(size / 12))
    draw.rounded_rectangle([x, y, right, y + height], height / 2, (*acc[0], 40), (*acc[0], 130), edge)
    cy = y + height / 2
    draw.ellipse([x + pad - dot * 0.2, cy - dot, x + pad + dot * 1.8, cy + dot], fill=acc[0])
    cap = -_font(_font_path(), size, 600).getbbox("H", anchor="ls")[1]
    tint = mix(acc[0], (255, 255, 255), 0.6)
    _draw_str(draw, x + inner - pad, cy + cap / 2, text, size, 600, tint, track)


def _draw_text(img: Image.Image, xy: tuple[int, int], text: _Text, acc, max_w: int) -> None:
    """Category pill above the fitted title lines, supersampled on small cards."""
    # Small text snaps glyphs to whole pixels and spaces unevenly; drawing at k times the
    # size and box-filtering back keeps the spacing true.
    k = 3 if min(img.size) < 512 else 2 if min(img.size) < 800 else 1
    big = img.resize((img.width * k, img.height * k), Image.NEAREST) if k > 1 else img
    draw, (x, top) = ImageDraw.Draw(big, "RGBA"), (xy[0] * k, xy[1] * k)
    size, lsize = text.size * k, text.lsize * k
    if text.label:
        _draw_label(draw, x, top, max_w * k, lsize, text.label, acc)
        top += round(lsize * 3.4)
    ascent = _font(_font_path(), size, 700).getmetrics()[0]
    for i, line in enumerate(text.lines):
        _draw_str(draw, x, top + ascent + i * round(size * 1.12), line, size, 700, INK)
    if k > 1:
        img.paste(big.resize(img.size, Image.BOX))
