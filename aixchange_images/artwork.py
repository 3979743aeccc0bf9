"""Offline, deterministic card artwork for AIXchange solutions (the `local` provider).

The marketplace shows a card image `object-cover` in a ~350x192 box, so only a centred
CROP_ASPECT band of it is ever seen: the motif, category pill and title all sit in that
band (`safe_box`), and the backdrop of gradient, glows and grid fills the rest.
"""

from __future__ import annotations

import random
import re
from typing import NamedTuple

from PIL import Image, ImageDraw

from . import fonts, lettering
from .artwork_motifs import MOTIFS, Square, draw_motif
from .backdrops import backdrop, finish
from .looks import PALETTES, Look, look, norm
from .style_cues import Cues

Box = tuple[int, int, int, int]  # left, top, right, bottom
CROP_ASPECT = 350 / 192  # SolutionCard: <Image fill className="object-cover"> in a w-full h-48 box
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
    zip(list(PALETTES)[:7], ("bubbles", "aperture", "waveform", "sparkles", "chart", "graph", "path"), strict=True)
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
    cues: Cues | None = None,
) -> Image.Image:
    """Render a deterministic RGB card image for one solution, in the look its style cues ask for."""
    if width < 64 or height < 64:
        raise ValueError(f"card size {width}x{height} is too small")
    rng = random.Random(f"{seed}\x1f{title}\x1f{category}")
    style = look(category, cues)
    shift = rng.randrange(3)  # rotating the accents is part of the seed's variation
    acc = style.accents[shift:] + style.accents[:shift]
    lay = _layout(width, height, title, category, rng)
    img = backdrop(width, height, style, lay.motif, rng)  # unrotated: glows are the category's
    words = f"{title} {description} {' '.join(tags or [])}"
    variants = MOTIFS[_motif_name(words, category)]
    draw_motif(img, lay.motif, rng.choice(variants), style, acc, rng)
    _draw_text(img, lay.text_xy, lay.text, style, lay.text_w)
    return finish(img, style, seed)


def safe_box(width: int, height: int) -> Box:
    """The centred CROP_ASPECT band of a width x height image that a marketplace card shows."""
    if width > height * CROP_ASPECT:  # wider than the card: full height, sides cropped
        seen = round(height * CROP_ASPECT)
        return (width - seen) // 2, 0, (width - seen) // 2 + seen, height
    seen = round(width / CROP_ASPECT)
    return 0, (height - seen) // 2, width, (height - seen) // 2 + seen


def _motif_name(text: str, category: str) -> str:
    """The motif whose keywords occur most; else the category's; else orbit."""
    words = re.findall(r"\w+", text.lower())
    scores = [(sum(w.startswith(ks) for w in words), n) for n, ks in _KEYWORDS]
    best, name = max(scores, key=lambda s: s[0])  # max keeps the first of equals
    return name if best else _CATEGORY_MOTIF.get(norm(category), "orbit")


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


def _fit_text(title: str, category: str, box_w: int, box_h: int, unit: int) -> _Text:
    """Size the label and fit the title into a text box; sizes scale with unit (the band height)."""
    lsize = max(9, round(0.038 * unit))
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", category.replace("_", " "))
    label = fonts.printable(spaced).upper() if box_h > 7 * lsize else ""
    head = round(lsize * 3.4) if label else 0  # pill (2.1 em) plus gap (1.3 em)
    title = fonts.printable(title)
    if not title:
        return _Text(lsize, [], label, lsize, head)
    big, small = round(0.13 * unit), max(10, round(0.05 * unit))
    size, lines = lettering.fit_title(title, box_w, box_h - head, big, small)
    return _Text(size, lines, label, lsize, head + lettering.title_height(size, len(lines)))


def _draw_label(draw, x: int, y: int, max_w: int, size: int, text: str, style: Look) -> None:
    """Small letter-spaced category pill."""
    height, pad, dot, track = round(size * 2.1), size * 0.9, size * 0.22, 0.08
    inner = pad * 2 + dot * 2 + size * 0.6
    while len(text) > 1 and lettering.measure(text, size, 600, track) + inner > max_w:
        text = text[:-2].rstrip() + "…"
    right = x + lettering.measure(text, size, 600, track) + inner
    edge = max(1, round(size / 12))
    accent = style.accents[0]
    draw.rounded_rectangle([x, y, right, y + height], height / 2, (*accent, 40), (*accent, 130), edge)
    cy = y + height / 2
    draw.ellipse([x + pad - dot * 0.2, cy - dot, x + pad + dot * 1.8, cy + dot], fill=accent)
    cap = -lettering.font(size, 600).getbbox("H", anchor="ls")[1]
    lettering.draw_line(draw, (x + inner - pad, cy + cap / 2), text, size, 600, style.label, track)


def _draw_text(img: Image.Image, xy: tuple[int, int], text: _Text, style: Look, max_w: int) -> None:
    """Category pill above the fitted title lines, supersampled on small cards."""
    # Small text snaps glyphs to whole pixels and spaces unevenly; drawing at k times the
    # size and box-filtering back keeps the spacing true.
    k = 3 if min(img.size) < 512 else 2 if min(img.size) < 800 else 1
    m = text.size + text.lsize  # room for glyphs that reach past the metrics (accents, Indic marks)
    box = (
        max(0, xy[0] - m),
        max(0, xy[1] - m),
        min(img.width, xy[0] + max_w + m),
        min(img.height, xy[1] + text.height + m),
    )
    patch = img.crop(box)  # only the text's own patch is supersampled
    big = patch.resize((patch.width * k, patch.height * k), Image.NEAREST) if k > 1 else patch
    draw, (x, top) = ImageDraw.Draw(big, "RGBA"), ((xy[0] - box[0]) * k, (xy[1] - box[1]) * k)
    size, lsize = text.size * k, text.lsize * k
    if text.label:
        _draw_label(draw, x, top, max_w * k, lsize, text.label, style)
        top += round(lsize * 3.4)
    ascent = lettering.font(size, 700).getmetrics()[0]
    right_to_left = lettering.rtl(" ".join(text.lines))  # the title's direction, for every line
    for i, line in enumerate(text.lines):
        indent = max_w * k - lettering.measure(line, size, 700) if right_to_left else 0  # flush right
        at = (x + indent, top + ascent + i * round(size * lettering.LINE_STEP))
        lettering.draw_line(draw, at, line, size, 700, style.ink, right_to_left=right_to_left)
    img.paste(big.resize(patch.size, Image.BOX) if k > 1 else big, box[:2])
