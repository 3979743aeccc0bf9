"""Offline, deterministic card artwork for AIXchange solutions (the `local` provider)."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]
Pt = tuple[float, float]
Square = tuple[int, int, int]  # x, y, side
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


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
INK: RGBA = (248, 250, 252, 255)
GLASS: RGBA = (255, 255, 255, 16)
EDGE: RGBA = (255, 255, 255, 56)
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
    motif, text_xy, text = _layout(width, height, title, category, rng)
    img = _background(width, height, pal, motif, rng)  # unrotated: the glow is the category's
    words = f"{title} {description} {' '.join(tags or [])}"
    variants = _MOTIFS[_motif_name(words, category)]
    _draw_motif(img, motif, rng.choice(variants), pal, acc, rng)
    _draw_text(img, text_xy, text, pal.accents)
    return img


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


def _layout(w: int, h: int, title: str, category: str, rng: random.Random) -> tuple[Square, tuple[int, int], _Text]:
    """Motif square (x, y, side), text origin and fitted text for a card size."""
    m = round(0.075 * min(w, h))
    if w >= 1.2 * h:  # landscape: motif beside the text column, sometimes mirrored
        s = round(min(h - 2 * m, 0.42 * w) * rng.uniform(0.86, 0.96))
        gap, left = round(0.05 * w), rng.random() < 0.3
        x0 = m + s + gap if left else m
        text = _fit_text(title, category, w - 2 * m - s - gap, h - 2 * m, w, h)
        ty = h - m - text.height if rng.random() < 0.5 else (h - text.height) // 2
        y = round((h - s) / 2 + rng.uniform(-0.15, 0.15) * (h - 2 * m - s))
        return (m if left else w - m - s, y, s), (x0, ty), text
    # Square and portrait: text at the bottom, motif centred in the space left above.
    text = _fit_text(title, category, w - 2 * m, round(0.4 * h), w, h)
    top = h - m - text.height
    room = top - round(0.045 * h) - m
    s = round(min(w - 2 * m, room) * rng.uniform(0.88, 1.0))
    x = round(m + (w - 2 * m - s) * rng.choice((0.5, 0.75, 1.0)))
    return (x, m + (room - s) // 2, s), (m, top), text


def _gradient(w: int, h: int, c0: RGB, c1: RGB, flip: bool = False) -> Image.Image:
    """Diagonal gradient from c0 (bottom-left, or bottom-right when flipped) to c1."""
    ramp = Image.linear_gradient("L")
    mask = ImageChops.add(ramp, ramp.transpose(Image.Transpose.ROTATE_270), scale=2.0)
    if flip:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = mask.transpose(Image.Transpose.FLIP_TOP_BOTTOM).resize((w, h), Image.BILINEAR)
    return Image.composite(Image.new("RGB", (w, h), c1), Image.new("RGB", (w, h), c0), mask)


def _background(w: int, h: int, pal: _Palette, motif: Square, rng: random.Random) -> Image.Image:
    """Diagonal gradient, soft glows and a fading grid centred on the motif."""
    mx, my, s = motif
    cx, cy = mx + s / 2, my + s / 2
    img = _gradient(w, h, pal.bg0, pal.bg1, cx < w / 2)  # light corner follows the motif
    # Glows are drawn at 1/8 scale and upscaled: a full-size blur would eat the budget.
    k = 8
    glow = Image.new("RGB", (max(4, w // k), max(4, h // k)))
    gx = cx + rng.uniform(-0.5, 0.5) * s
    for colour, r, power, (x, y) in (
        (pal.accents[0], 0.62 * s, 0.42, (cx, cy)),
        (pal.accents[1], 0.38 * s, 0.30, (gx, cy - 0.45 * s)),
    ):
        fill = tuple(round(c * power) for c in colour)
        ImageDraw.Draw(glow).ellipse([(x - r) / k, (y - r) / k, (x + r) / k, (y + r) / k], fill)
    glow = glow.filter(ImageFilter.GaussianBlur(s / k * 0.28))
    img = ImageChops.screen(img, glow.resize((w, h), Image.BICUBIC))
    _grid(img, cx, cy, s, rng)
    return img


def _grid(img: Image.Image, cx: float, cy: float, s: int, rng: random.Random) -> None:
    """Hairline grid fading out radially from the motif: a quiet 'tech' texture."""
    w, h = img.size
    gap, lw = s / rng.choice((5, 6, 8)), max(1, round(min(w, h) / 1000))
    lines = Image.new("L", (w, h))
    draw = ImageDraw.Draw(lines)
    for i in range(-math.ceil(cx / gap), math.ceil((w - cx) / gap) + 1):
        draw.line([(cx + i * gap, 0), (cx + i * gap, h)], fill=255, width=lw)
    for i in range(-math.ceil(cy / gap), math.ceil((h - cy) / gap) + 1):
        draw.line([(0, cy + i * gap), (w, cy + i * gap)], fill=255, width=lw)
    r = round(s * 0.95)
    spot = ImageChops.invert(Image.radial_gradient("L")).resize((2 * r, 2 * r))
    fade = Image.new("L", (w, h))
    fade.paste(spot, (round(cx) - r, round(cy) - r))
    mask = ImageChops.multiply(lines, fade).point(lambda v: v * 22 // 255)
    img.paste((255, 255, 255), (0, 0, w, h), mask)


class _Pen:
    """Draws on a square canvas in unit coordinates, blending alpha."""

    def __init__(self, canvas: Image.Image, pal: _Palette, acc, rng: random.Random):
        self.img, self.d = canvas, ImageDraw.Draw(canvas, "RGBA")
        self.s, self.acc, self.bg, self.rng = canvas.width, acc, pal.bg1, rng

    def c(self, i: int, alpha: int = 255) -> RGBA:
        """Accent colour i with an alpha."""
        return (*self.acc[i % 3], alpha)

    def px(self, pts) -> list[Pt]:
        """Unit points to canvas pixels."""
        return [(x * self.s, y * self.s) for x, y in pts]

    def kw(self, fill, line, w: float) -> dict:
        """Shared fill/outline/width arguments."""
        return {"fill": fill, "outline": line, "width": max(1, round(w * self.s))}

    def box(self, x0, y0, x1, y1, r, fill=None, line=None, w=0.004) -> None:
        """Rounded rectangle with corner radius r."""
        xy = self.px([(x0, y0), (x1, y1)])
        self.d.rounded_rectangle(xy, r * self.s, **self.kw(fill, line, w))

    def dot(self, x, y, r, fill=None, line=None, w=0.004) -> None:
        """Circle of radius r."""
        self.d.ellipse(self.px([(x - r, y - r), (x + r, y + r)]), **self.kw(fill, line, w))

    def poly(self, pts, fill=None, line=None, w=0.004) -> None:
        """Closed polygon."""
        self.d.polygon(self.px(pts), **self.kw(fill, line, w))

    def grad(self, shape: str, *args, **kw) -> None:
        """Fill an ImageDraw shape with an accent gradient: the hero of a motif."""
        mask = Image.new("L", self.img.size)
        getattr(ImageDraw.Draw(mask), shape)(*args, fill=255, **kw)
        if box := mask.getbbox():
            tile = _gradient(box[2] - box[0], box[3] - box[1], self.acc[0], self.acc[1])
            self.img.paste(tile, box, mask.crop(box))

    def line(self, pts, colour, w=0.006) -> None:
        """Polyline with round joints."""
        width = max(1, round(w * self.s))
        self.d.line(self.px(pts), fill=colour, width=width, joint="curve")


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend of two colours."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _polar(cx: float, cy: float, r: float, a: float) -> Pt:
    """Point at radius r and angle a around a centre."""
    return cx + r * math.cos(a), cy + r * math.sin(a)


def _sparkle(cx: float, cy: float, r: float) -> list[Pt]:
    """Four-point star (an astroid): the shorthand for 'generated'."""
    ts = [math.tau * i / 64 for i in range(64)]
    return [(cx + r * math.cos(t) ** 3, cy + r * math.sin(t) ** 3) for t in ts]


def _m_bubbles(p: _Pen) -> None:
    """Chat exchange: a glass question and an accent answer, each with an avatar."""
    for k, (x, y, ax) in enumerate(((0.18, 0.08, 0.08), (0.1, 0.5, 0.92))):
        if k:
            p.grad("rounded_rectangle", p.px([(x, y), (x + 0.72, y + 0.32)]), radius=0.06 * p.s)
        else:
            p.box(x, y, x + 0.72, y + 0.32, 0.06, GLASS, EDGE)
        p.dot(ax, y + 0.25, 0.05, p.c(1 + k, 210))
        for i, ln in enumerate((0.58, 0.48 * p.rng.uniform(0.6, 1.0), 0.36)):
            top = y + 0.07 + 0.075 * i
            p.box(x + 0.07, top, x + 0.07 + ln, top + 0.035, 0.0175, (255, 255, 255, 150 + 75 * k - 50 * (i > 0)))
    p.box(0.1, 0.87, 0.28, 0.95, 0.04, GLASS, EDGE)
    for i in range(3):
        p.dot(0.145 + 0.045 * i, 0.91, 0.012, (255, 255, 255, 200 - 50 * i))


def _m_aperture(p: _Pen) -> None:
    """Camera lens with aperture blades inside viewfinder brackets."""
    n, rot, big, hole = p.rng.choice((6, 7, 8)), p.rng.uniform(0, math.tau), 0.3, 0.12
    p.dot(0.5, 0.5, 0.4, None, EDGE)
    p.dot(0.5, 0.5, big, (*p.bg, 170), p.c(0), 0.014)
    verts = [_polar(0.5, 0.5, hole, rot + math.tau * i / n) for i in range(n)]
    p.poly(verts, p.c(0, 45), p.c(1, 230), 0.006)
    for (ux, uy), (vx, vy) in zip(verts[-1:] + verts[:-1], verts, strict=True):
        edge = math.dist((ux, uy), (vx, vy))
        dx, dy = (vx - ux) / edge, (vy - uy) / edge
        b = (vx - 0.5) * dx + (vy - 0.5) * dy  # extend each hole edge to the lens rim
        t = -b + math.sqrt(b * b - (vx - 0.5) ** 2 - (vy - 0.5) ** 2 + (big - 0.01) ** 2)
        p.line([(vx, vy), (vx + t * dx, vy + t * dy)], p.c(1, 230), 0.006)
    for sx, sy in itertools.product((0, 1), (0, 1)):
        cx, cy, dx, dy = 0.05 + 0.9 * sx, 0.05 + 0.9 * sy, 1 - 2 * sx, 1 - 2 * sy
        p.line([(cx, cy + 0.12 * dy), (cx, cy), (cx + 0.12 * dx, cy)], (255, 255, 255, 190), 0.012)


def _m_frames(p: _Pen) -> None:
    """Grid of image frames with one detected and labelled."""
    pick = p.rng.randrange(9)
    for i in range(9):
        x, y, on = 0.06 + 0.3 * (i % 3), 0.06 + 0.3 * (i // 3), i == pick
        p.box(x, y, x + 0.26, y + 0.26, 0.03, p.c(0, 70 if on else 16), p.c(0) if on else EDGE, 0.004 + 0.004 * on)
        p.dot(x + 0.18, y + 0.08, 0.025, p.c(2, 220 if on else 60))
        p.poly([(x + 0.03, y + 0.22), (x + 0.11, y + 0.11), (x + 0.2, y + 0.22)], p.c(1, 230 if on else 45))
    x, y = 0.06 + 0.3 * (pick % 3), 0.06 + 0.3 * (pick // 3)
    y = y - 0.045 if y > 0.1 else y + 0.27  # the label chip sits above, or below on row one
    p.box(x, y, x + 0.14, y + 0.04, 0.012, p.c(0))


def _m_waveform(p: _Pen) -> None:
    """Audio waveform of rounded bars in a glass player."""
    p.box(0.03, 0.2, 0.97, 0.8, 0.1, GLASS, EDGE)
    n, f1, f2, ph = p.rng.choice((19, 23, 27)), p.rng.uniform(9, 15), p.rng.uniform(3, 6), p.rng.uniform(0, 6)
    bw = 0.78 / n * 0.55
    for i in range(n):
        t = i / (n - 1)
        env = math.sin(math.pi * (0.04 + 0.92 * t))
        a = max(bw / 2, 0.25 * env * (0.3 + 0.7 * abs(math.sin(f1 * t + ph) * math.cos(f2 * t))))
        x, colour = 0.11 + 0.78 * t, (*_mix(p.acc[0], p.acc[1], t), 255)
        p.box(x - bw / 2, 0.5 - a, x + bw / 2, 0.5 + a, bw / 2, colour)


def _m_graph(p: _Pen) -> None:
    """Layered neural network with one highlighted activation path."""
    sizes = p.rng.choice(((3, 4, 4, 2), (2, 4, 4, 3), (3, 5, 3), (4, 5, 5, 2)))
    xs = [0.1 + 0.8 * i / (len(sizes) - 1) for i in range(len(sizes))]
    cols = [[(x, 0.5 + 0.19 * (j - (k - 1) / 2)) for j in range(k)] for x, k in zip(xs, sizes, strict=True)]
    hot = [p.rng.randrange(k) for k in sizes]
    for a, b in itertools.pairwise(cols):
        for u, v in itertools.product(a, b):
            p.line([u, v], (255, 255, 255, 40), 0.004)
    p.line([col[j] for col, j in zip(cols, hot, strict=True)], p.c(0), 0.011)
    for col, j in zip(cols, hot, strict=True):
        for i, (x, y) in enumerate(col):
            if i == j:
                p.dot(x, y, 0.07, p.c(0, 55))
                p.dot(x, y, 0.042, p.c(0), p.c(1), 0.006)
            else:
                p.dot(x, y, 0.042, (*p.bg, 255), EDGE, 0.006)


def _m_chart(p: _Pen) -> None:
    """Dashboard panel: rising bars or an area chart, line and highlighted last point."""
    p.box(0.03, 0.1, 0.97, 0.9, 0.06, GLASS, EDGE)
    for i in range(4):
        p.line([(0.1, 0.28 + 0.15 * i), (0.9, 0.28 + 0.15 * i)], (255, 255, 255, 28), 0.003)
    n = 7
    vals = [0.2 + 0.55 * i / (n - 1) + p.rng.uniform(-0.1, 0.1) for i in range(n)]
    pts = [(0.14 + 0.72 * i / (n - 1), 0.77 - 0.55 * v) for i, v in enumerate(vals)]
    if p.rng.random() < 0.5:
        for i, (x, y) in enumerate(pts):
            p.box(x - 0.035, y + 0.06, x + 0.035, 0.77, 0.012, p.c(0, 110 + 145 * (i == n - 1)))
        pts = [(x, y + 0.02) for x, y in pts]
    else:
        p.poly([(0.14, 0.77), *pts, (0.86, 0.77)], p.c(0, 60))
    p.line(pts, p.c(1), 0.01)
    p.dot(*pts[-1], 0.045, p.c(1, 60))
    for x, y in pts:
        p.dot(x, y, 0.018, (*p.bg, 255), p.c(1), 0.007)


def _gear(cx: float, cy: float, teeth: int, r: float, depth: float, rot: float) -> list[Pt]:
    """Gear outline: trapezoid teeth around a pitch circle of radius r."""
    step = math.tau / teeth
    shape = ((-0.3, -0.5), (-0.16, 0.5), (0.16, 0.5), (0.3, -0.5))
    return [_polar(cx, cy, r + dr * depth, rot + (k + da) * step) for k in range(teeth) for da, dr in shape]


def _m_gears(p: _Pen) -> None:
    """Two meshing gears: automation at a glance."""
    n2, depth, r1, ang = p.rng.choice((7, 8, 9)), 0.05, 0.24, p.rng.uniform(-0.9, -0.4)
    r2 = r1 * n2 / 12  # equal tooth pitch is what lets the teeth interlock
    c2 = _polar(0, 0, r1 + r2, ang)
    o1, o2 = r1 + depth / 2, r2 + depth / 2
    dx = 0.5 - (min(-o1, c2[0] - o2) + max(o1, c2[0] + o2)) / 2  # centre the pair's box
    dy = 0.5 - (min(-o1, c2[1] - o2) + max(o1, c2[1] + o2)) / 2
    for i, (x, y), n, r, rot in ((0, (dx, dy), 12, r1, ang), (1, (c2[0] + dx, c2[1] + dy), n2, r2, ang + math.pi / n2)):
        p.poly(_gear(x, y, n, r, depth, rot), p.c(i, 70), p.c(i), 0.01)
        p.dot(x, y, r * 0.45, (*p.bg, 200), p.c(i), 0.01)
        p.dot(x, y, r * 0.14, p.c(i))


def _m_flow(p: _Pen) -> None:
    """Workflow: one step branching into two, joined by arrowed connectors."""
    f = p.rng.choice((1, -1))
    nodes = [(0.16, 0.5), (0.5, 0.5), (0.84, 0.5 - 0.26 * f), (0.84, 0.5 + 0.26 * f)]
    hot, h = p.rng.randrange(4), 0.09
    links = [[(0.25, 0.5), (0.41, 0.5)]]
    links += [[(0.59, 0.5), (0.67, 0.5), (0.67, y), (0.75, y)] for _, y in nodes[2:]]
    for pts in links:
        (ex, ey), arrow = pts[-1], p.c(1, 230)
        p.line(pts, arrow, 0.009)
        p.poly([(ex + 0.008, ey), (ex - 0.03, ey - 0.025), (ex - 0.03, ey + 0.025)], arrow)
    for i, (x, y) in enumerate(nodes):
        if i == hot:
            p.grad("rounded_rectangle", p.px([(x - h, y - h), (x + h, y + h)]), radius=0.035 * p.s)
        else:
            p.box(x - h, y - h, x + h, y + h, 0.035, (*p.bg, 230), EDGE, 0.005)
        p.box(x - 0.045, y - 0.012, x + 0.045, y + 0.012, 0.012, (255, 255, 255, 110 + 90 * (i == hot)))


def _shield(scale: float) -> list[Pt]:
    """Heraldic shield outline about the centre, scaled."""
    arc = [(0.75 - 0.25 * t**1.5, 0.5 + 0.36 * math.sin(t * math.pi / 2)) for t in (i / 12 for i in range(1, 13))]
    half = [(0.25, 0.24), (0.5, 0.15), (0.75, 0.24), (0.75, 0.5), *arc]
    pts = half + [(1 - x, y) for x, y in reversed(half[1:-1])]
    return [(0.5 + (x - 0.5) * scale, 0.52 + (y - 0.52) * scale) for x, y in pts]


def _m_shield(p: _Pen) -> None:
    """Shield with a check mark inside protective rings."""
    for r, a in ((0.46, 40), (0.38, 70)):
        p.dot(0.5, 0.52, r, None, (255, 255, 255, a))
    p.poly(_shield(1.0), p.c(0, 60), p.c(0), 0.012)
    p.grad("polygon", p.px(_shield(0.74)))
    p.line([(0.41, 0.5), (0.48, 0.57), (0.61, 0.42)], INK, 0.034)


def _m_sparkles(p: _Pen) -> None:
    """Sparkles and orbs, the visual shorthand for generative AI."""
    j = p.rng.uniform
    p.dot(0.7 + j(-0.05, 0.05), 0.72, 0.15, GLASS, EDGE)
    p.dot(0.26, 0.3 + j(-0.05, 0.05), 0.08, p.c(2, 70))
    for i, (x, y, r) in enumerate(((0.46, 0.52, 0.34), (0.78, 0.24, 0.13), (0.2, 0.74, 0.08))):
        x, y = x + j(-0.03, 0.03), y + j(-0.03, 0.03)
        p.dot(x, y, r * 0.45, p.c(i, 50))
        if i:
            p.poly(_sparkle(x, y, r), p.c(i))
        else:
            p.grad("polygon", p.px(_sparkle(x, y, r)))


def _m_path(p: _Pen) -> None:
    """An agent's route across a grid from start to goal: reinforcement learning."""
    n, step = 6, 0.15
    for i, k in itertools.product(range(n), range(n)):
        p.dot(0.125 + step * i, 0.125 + step * k, 0.011, (255, 255, 255, 80))
    i, k, route = 0, n - 1, [(0, n - 1)]
    while (i, k) != (n - 1, 0):
        right = k == 0 or (i < n - 1 and p.rng.random() < 0.5)
        i, k = (i + 1, k) if right else (i, k - 1)
        route.append((i, k))
    pts = [(0.125 + step * a, 0.125 + step * b) for a, b in route]
    p.line(pts, p.c(0), 0.016)
    p.dot(*pts[0], 0.04, p.c(1), INK, 0.008)
    p.dot(*pts[-1], 0.07, p.c(2, 60))
    p.poly(_sparkle(*pts[-1], 0.065), p.c(2))


def _m_orbit(p: _Pen) -> None:
    """Abstract fallback: a glowing core with tilted orbits and satellites."""
    tilt = p.rng.uniform(-0.6, 0.6)
    p.dot(0.5, 0.5, 0.2, p.c(0, 45))
    for i, (rx, ry) in enumerate(((0.44, 0.17), (0.36, 0.3), (0.27, 0.4))):
        ct, st = math.cos(tilt + 0.9 * i), math.sin(tilt + 0.9 * i)
        ell = [(rx * math.cos(math.tau * t / 96), ry * math.sin(math.tau * t / 96)) for t in range(97)]
        ring = [(0.5 + x * ct - y * st, 0.5 + x * st + y * ct) for x, y in ell]
        p.line(ring, (255, 255, 255, 70), 0.004)
        p.dot(*ring[p.rng.randrange(96)], 0.028, p.c(i + 1), INK, 0.005)
    p.grad("ellipse", p.px([(0.38, 0.38), (0.62, 0.62)]))


_MOTIFS: dict[str, tuple[Callable[[_Pen], None], ...]] = {
    "bubbles": (_m_bubbles,),
    "aperture": (_m_aperture, _m_frames),
    "waveform": (_m_waveform,),
    "graph": (_m_graph,),
    "chart": (_m_chart,),
    "gears": (_m_gears, _m_flow),
    "shield": (_m_shield,),
    "sparkles": (_m_sparkles,),
    "path": (_m_path,),
    "orbit": (_m_orbit,),
}


def _draw_motif(img: Image.Image, motif, draw: Callable, pal: _Palette, acc, rng) -> None:
    """Draw the motif supersampled over its patch of background, then downsample."""
    x, y, s = motif
    k = 4 if s < 320 else 3 if s < 900 else 2  # supersampling: ImageDraw has no antialiasing
    canvas = img.crop((x, y, x + s, y + s)).resize((s * k, s * k), Image.NEAREST)
    draw(_Pen(canvas, pal, acc, rng))
    img.paste(canvas.resize((s, s), Image.BOX), (x, y))


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


def _fit_text(title: str, category: str, box_w: int, box_h: int, w: int, h: int) -> _Text:
    """Size the label and fit the title into a text box."""
    unit = min(w, h)
    lsize = max(9, round(0.019 * unit))
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", category.replace("_", " "))
    label = _printable(spaced).upper() if box_h > 7 * lsize else ""
    head = round(lsize * 3.4) if label else 0  # pill (2.1 em) plus gap (1.3 em)
    title, big = _printable(title), round(0.085 * unit * (1.1 if w >= 1.2 * h else 1.0))
    if not title:
        return _Text(lsize, [], label, lsize, head)
    size, lines = _fit_title(title, box_w, box_h - head, big, max(10, round(0.028 * unit)))
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
    tint = _mix(acc[0], (255, 255, 255), 0.6)
    _draw_str(draw, x + inner - pad, cy + cap / 2, text, size, 600, tint, track)


def _draw_text(img: Image.Image, xy: tuple[int, int], text: _Text, acc) -> None:
    """Category pill above the fitted title lines, supersampled on small cards."""
    # Small text snaps glyphs to whole pixels and spaces unevenly; drawing at k times the
    # size and box-filtering back keeps the spacing true.
    k = 3 if min(img.size) < 512 else 2 if min(img.size) < 800 else 1
    big = img.resize((img.width * k, img.height * k), Image.NEAREST) if k > 1 else img
    draw, (x, top) = ImageDraw.Draw(big, "RGBA"), (xy[0] * k, xy[1] * k)
    size, lsize = text.size * k, text.lsize * k
    if text.label:
        _draw_label(draw, x, top, big.width - round(0.075 * min(big.size)) - x, lsize, text.label, acc)
        top += round(lsize * 3.4)
    ascent = _font(_font_path(), size, 700).getmetrics()[0]
    for i, line in enumerate(text.lines):
        _draw_str(draw, x, top + ascent + i * round(size * 1.12), line, size, 700, INK)
    if k > 1:
        img.paste(big.resize(img.size, Image.BOX))
