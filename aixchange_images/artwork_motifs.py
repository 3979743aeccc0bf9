"""The card's motif: a small vector scene on a unit square, drawn by a `Pen`, from a registry by name.

The pen follows the look (`looks.Look`): on a light ground its hairlines and glass are dark; in
line art every shape is an outline; with flat fills the hero shapes are solid. `draw_motif` then
sets the drawing on the card: as it is, extruded (3d), or projected onto an isometric platform.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from .backdrops import gradient
from .looks import BLACK, WHITE, Look, mix

RGBA = tuple[int, int, int, int]
Pt = tuple[float, float]
Square = tuple[int, int, int]  # x, y, side
INK: RGBA = (248, 250, 252, 255)  # marks drawn on an accent: white whatever the ground


def _polar(cx: float, cy: float, r: float, a: float) -> Pt:
    """Point at radius r and angle a around a centre."""
    return cx + r * math.cos(a), cy + r * math.sin(a)


def _sparkle(cx: float, cy: float, r: float) -> list[Pt]:
    """Four-point star (an astroid): the shorthand for 'generated'."""
    ts = [math.tau * i / 64 for i in range(64)]
    return [(cx + r * math.cos(t) ** 3, cy + r * math.sin(t) ** 3) for t in ts]


class Pen:
    """Draws on a square canvas in unit coordinates, blending alpha."""

    def __init__(self, canvas: Image.Image, look: Look, acc, rng: random.Random):
        self.img, self.d = canvas, ImageDraw.Draw(canvas, "RGBA")
        self.s, self.acc, self.bg, self.rng = canvas.width, acc, look.bg1, rng
        self.fg, self.mode, self.light = look.fg, look.fill, look.light
        self.glass, self.edge = self.w(16), self.w(56)

    def c(self, i: int, alpha: int = 255) -> RGBA:
        """Accent colour i with an alpha."""
        return (*self.acc[i % 3], alpha)

    def w(self, alpha: int) -> RGBA:
        """The hairline colour (white on a dark ground, ink on a light one) with an alpha."""
        return (*self.fg, alpha)

    def px(self, pts) -> list[Pt]:
        """Unit points to canvas pixels."""
        return [(x * self.s, y * self.s) for x, y in pts]

    def kw(self, fill, line, w: float) -> dict:
        """Shared fill/outline/width arguments; in line art a fill becomes an outline."""
        if self.mode == "lines" and fill is not None:
            line = line if line is not None and line[3] > 40 else (*fill[:3], max(140, fill[3]))
            fill, w = None, max(w, 0.008)
            if self.light:  # pale accents would vanish on a light ground as thin lines
                line = (*mix(line[:3], BLACK, 0.3), max(180, line[3]))
        return {"fill": fill, "outline": line, "width": max(1, round(w * self.s))}

    def box(self, x0, y0, x1, y1, r, fill=None, line=None, w=0.004) -> None:
        """Rounded rectangle with corner radius r."""
        xy = self.px([(x0, y0), (x1, y1)])
        self.d.rounded_rectangle(xy, r * self.s, **self.kw(fill, line, w))

    def dot(self, x, y, r, fill=None, line=None, w=0.004) -> None:
        """Circle of radius r (tiny ones stay filled in line art: they are the points of a drawing)."""
        args = (
            self.kw(fill, line, w) if r > 0.03 else {"fill": fill, "outline": line, "width": max(1, round(w * self.s))}
        )
        self.d.ellipse(self.px([(x - r, y - r), (x + r, y + r)]), **args)

    def poly(self, pts, fill=None, line=None, w=0.004) -> None:
        """Closed polygon."""
        self.d.polygon(self.px(pts), **self.kw(fill, line, w))

    def grad(self, shape: str, *args, **kw) -> None:
        """The hero of a motif: an accent gradient, a solid accent (flat) or an accent outline (line art)."""
        if self.mode != "gradient":
            edge = (*mix(self.acc[0], BLACK, 0.3), 255) if self.light else self.c(0)
            style = {"fill": self.c(0)} if self.mode == "flat" else {"outline": edge, "width": round(0.012 * self.s)}
            getattr(self.d, shape)(*args, **style, **kw)
            return
        mask = Image.new("L", self.img.size)
        getattr(ImageDraw.Draw(mask), shape)(*args, fill=255, **kw)
        if box := mask.getbbox():
            tile = gradient(box[2] - box[0], box[3] - box[1], self.acc[0], self.acc[1])
            self.img.paste(tile, box, mask.crop(box))

    def line(self, pts, colour, w=0.006) -> None:
        """Polyline with round joints."""
        width = max(1, round(w * self.s))
        self.d.line(self.px(pts), fill=colour, width=width, joint="curve")


def _m_bubbles(p: Pen) -> None:
    """Chat exchange: a glass question and an accent answer, each with an avatar."""
    for k, (x, y, ax) in enumerate(((0.18, 0.08, 0.08), (0.1, 0.5, 0.92))):
        if k:
            p.grad("rounded_rectangle", p.px([(x, y), (x + 0.72, y + 0.32)]), radius=0.06 * p.s)
        else:
            p.box(x, y, x + 0.72, y + 0.32, 0.06, p.glass, p.edge)
        p.dot(ax, y + 0.25, 0.05, p.c(1 + k, 210))
        for i, ln in enumerate((0.58, 0.48 * p.rng.uniform(0.6, 1.0), 0.36)):
            top = y + 0.07 + 0.075 * i
            bar = (*INK[:3], 225 - 50 * (i > 0)) if k else p.w(150 - 50 * (i > 0))  # white on the accent
            p.box(x + 0.07, top, x + 0.07 + ln, top + 0.035, 0.0175, bar)
    p.box(0.1, 0.87, 0.28, 0.95, 0.04, p.glass, p.edge)
    for i in range(3):
        p.dot(0.145 + 0.045 * i, 0.91, 0.012, p.w(200 - 50 * i))


def _m_aperture(p: Pen) -> None:
    """Camera lens with aperture blades inside viewfinder brackets."""
    n, rot, big, hole = p.rng.choice((6, 7, 8)), p.rng.uniform(0, math.tau), 0.3, 0.12
    p.dot(0.5, 0.5, 0.4, None, p.edge)
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
        p.line([(cx, cy + 0.12 * dy), (cx, cy), (cx + 0.12 * dx, cy)], p.w(190), 0.012)


def _m_frames(p: Pen) -> None:
    """Grid of image frames with one detected and labelled."""
    pick = p.rng.randrange(9)
    for i in range(9):
        x, y, on = 0.06 + 0.3 * (i % 3), 0.06 + 0.3 * (i // 3), i == pick
        p.box(x, y, x + 0.26, y + 0.26, 0.03, p.c(0, 70 if on else 16), p.c(0) if on else p.edge, 0.004 + 0.004 * on)
        p.dot(x + 0.18, y + 0.08, 0.025, p.c(2, 220 if on else 60))
        p.poly([(x + 0.03, y + 0.22), (x + 0.11, y + 0.11), (x + 0.2, y + 0.22)], p.c(1, 230 if on else 45))
    x, y = 0.06 + 0.3 * (pick % 3), 0.06 + 0.3 * (pick // 3)
    y = y - 0.045 if y > 0.1 else y + 0.27  # the label chip sits above, or below on row one
    p.box(x, y, x + 0.14, y + 0.04, 0.012, p.c(0))


def _m_waveform(p: Pen) -> None:
    """Audio waveform of rounded bars in a glass player."""
    p.box(0.03, 0.2, 0.97, 0.8, 0.1, p.glass, p.edge)
    n, f1, f2, ph = p.rng.choice((19, 23, 27)), p.rng.uniform(9, 15), p.rng.uniform(3, 6), p.rng.uniform(0, 6)
    bw = 0.78 / n * 0.55
    for i in range(n):
        t = i / (n - 1)
        env = math.sin(math.pi * (0.04 + 0.92 * t))
        a = max(bw / 2, 0.25 * env * (0.3 + 0.7 * abs(math.sin(f1 * t + ph) * math.cos(f2 * t))))
        x, colour = 0.11 + 0.78 * t, (*mix(p.acc[0], p.acc[1], t), 255)
        p.box(x - bw / 2, 0.5 - a, x + bw / 2, 0.5 + a, bw / 2, colour)


def _m_graph(p: Pen) -> None:
    """Layered neural network with one highlighted activation path."""
    sizes = p.rng.choice(((3, 4, 4, 2), (2, 4, 4, 3), (3, 5, 3), (4, 5, 5, 2)))
    xs = [0.1 + 0.8 * i / (len(sizes) - 1) for i in range(len(sizes))]
    cols = [[(x, 0.5 + 0.19 * (j - (k - 1) / 2)) for j in range(k)] for x, k in zip(xs, sizes, strict=True)]
    hot = [p.rng.randrange(k) for k in sizes]
    for a, b in itertools.pairwise(cols):
        for u, v in itertools.product(a, b):
            p.line([u, v], p.w(40), 0.004)
    p.line([col[j] for col, j in zip(cols, hot, strict=True)], p.c(0), 0.011)
    for col, j in zip(cols, hot, strict=True):
        for i, (x, y) in enumerate(col):
            if i == j:
                p.dot(x, y, 0.07, p.c(0, 55))
                p.dot(x, y, 0.042, p.c(0), p.c(1), 0.006)
            else:
                p.dot(x, y, 0.042, (*p.bg, 255), p.edge, 0.006)


def _m_chart(p: Pen) -> None:
    """Dashboard panel: rising bars or an area chart, line and highlighted last point."""
    p.box(0.03, 0.1, 0.97, 0.9, 0.06, p.glass, p.edge)
    for i in range(4):
        p.line([(0.1, 0.28 + 0.15 * i), (0.9, 0.28 + 0.15 * i)], p.w(28), 0.003)
    n = 7
    vals = [0.2 + 0.55 * i / (n - 1) + p.rng.uniform(-0.1, 0.1) for i in range(n)]
    pts = [(0.14 + 0.72 * i / (n - 1), 0.77 - 0.55 * v) for i, v in enumerate(vals)]
    if p.rng.random() < 0.5:
        for i, (x, y) in enumerate(pts):
            top = min(y + 0.06, 0.74)  # a value near zero would put the bar's top under its foot
            p.box(x - 0.035, top, x + 0.035, 0.77, 0.012, p.c(0, 110 + 145 * (i == n - 1)))
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


def _m_gears(p: Pen) -> None:
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


def _m_flow(p: Pen) -> None:
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
            p.box(x - h, y - h, x + h, y + h, 0.035, (*p.bg, 230), p.edge, 0.005)
        bar = (*INK[:3], 200) if i == hot else p.w(110)  # white on the accent
        p.box(x - 0.045, y - 0.012, x + 0.045, y + 0.012, 0.012, bar)


def _shield(scale: float) -> list[Pt]:
    """Heraldic shield outline about the centre, scaled."""
    arc = [(0.75 - 0.25 * t**1.5, 0.5 + 0.36 * math.sin(t * math.pi / 2)) for t in (i / 12 for i in range(1, 13))]
    half = [(0.25, 0.24), (0.5, 0.15), (0.75, 0.24), (0.75, 0.5), *arc]
    pts = half + [(1 - x, y) for x, y in reversed(half[1:-1])]
    return [(0.5 + (x - 0.5) * scale, 0.52 + (y - 0.52) * scale) for x, y in pts]


def _m_shield(p: Pen) -> None:
    """Shield with a check mark inside protective rings."""
    for r, a in ((0.46, 40), (0.38, 70)):
        p.dot(0.5, 0.52, r, None, p.w(a))
    p.poly(_shield(1.0), p.c(0, 60), p.c(0), 0.012)
    p.grad("polygon", p.px(_shield(0.74)))
    p.line([(0.41, 0.5), (0.48, 0.57), (0.61, 0.42)], INK, 0.034)


def _m_sparkles(p: Pen) -> None:
    """Sparkles and orbs, the visual shorthand for generative AI."""
    j = p.rng.uniform
    p.dot(0.7 + j(-0.05, 0.05), 0.72, 0.15, p.glass, p.edge)
    p.dot(0.26, 0.3 + j(-0.05, 0.05), 0.08, p.c(2, 70))
    for i, (x, y, r) in enumerate(((0.46, 0.52, 0.34), (0.78, 0.24, 0.13), (0.2, 0.74, 0.08))):
        x, y = x + j(-0.03, 0.03), y + j(-0.03, 0.03)
        p.dot(x, y, r * 0.45, p.c(i, 50))
        if i:
            p.poly(_sparkle(x, y, r), p.c(i))
        else:
            p.grad("polygon", p.px(_sparkle(x, y, r)))


def _m_path(p: Pen) -> None:
    """An agent's route across a grid from start to goal: reinforcement learning."""
    n, step = 6, 0.15
    for i, k in itertools.product(range(n), range(n)):
        p.dot(0.125 + step * i, 0.125 + step * k, 0.011, p.w(80))
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


def _m_orbit(p: Pen) -> None:
    """Abstract fallback: a glowing core with tilted orbits and satellites."""
    tilt = p.rng.uniform(-0.6, 0.6)
    p.dot(0.5, 0.5, 0.2, p.c(0, 45))
    for i, (rx, ry) in enumerate(((0.44, 0.17), (0.36, 0.3), (0.27, 0.4))):
        ct, st = math.cos(tilt + 0.9 * i), math.sin(tilt + 0.9 * i)
        ell = [(rx * math.cos(math.tau * t / 96), ry * math.sin(math.tau * t / 96)) for t in range(97)]
        ring = [(0.5 + x * ct - y * st, 0.5 + x * st + y * ct) for x, y in ell]
        p.line(ring, p.w(70), 0.004)
        p.dot(*ring[p.rng.randrange(96)], 0.028, p.c(i + 1), INK, 0.005)
    p.grad("ellipse", p.px([(0.38, 0.38), (0.62, 0.62)]))


# Registry: motif name -> the drawings that can stand for it (the seed picks one).
MOTIFS: dict[str, tuple[Callable[[Pen], None], ...]] = {
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


def draw_motif(
    img: Image.Image, motif: Square, draw: Callable[[Pen], None], look: Look, acc, rng: random.Random
) -> None:
    """Draw the motif supersampled on its own layer, then set it on the card as the look says."""
    x, y, s = motif
    inner = max(8, round(s * look.motif_scale))
    k = 4 if inner < 320 else 3 if inner < 900 else 2  # supersampling: ImageDraw has no antialiasing
    layer = Image.new("RGBA", (inner * k, inner * k), (*look.bg1, 0))
    draw(Pen(layer, look, acc, rng))
    layer = layer.resize((inner, inner), Image.BOX)
    if look.depth == "isometric":
        layer, inner = _isometric(layer, s, look, acc), s
    at = (x + (s - inner) // 2, y + (s - inner) // 2)
    if look.depth == "3d":
        _extrude(img, layer, at, acc)
    if look.halo:
        _halo(img, layer, at)
    img.paste(layer, at, layer)


def _extrude(img: Image.Image, layer: Image.Image, at: tuple[int, int], acc) -> None:
    """Give the solid shapes depth: a darker side below and to the right, and a soft shadow."""
    solid = layer.getchannel("A").point(lambda a: 255 if a > 110 else 0)
    depth = max(2, round(layer.width * 0.035))
    side = Image.new("L", (layer.width + depth, layer.height + depth))
    for i in range(1, depth + 1):
        side.paste(ImageChops.lighter(side.crop((i, i, i + layer.width, i + layer.height)), solid), (i, i))
    shadow = side.filter(ImageFilter.BoxBlur(depth)).point(lambda a: a * 90 // 255)
    img.paste(BLACK, (at[0] + depth, at[1] + depth), _clip(img, shadow, (at[0] + depth, at[1] + depth)))
    img.paste(mix(acc[0], BLACK, 0.55), at, _clip(img, side, at))


def _clip(img: Image.Image, mask: Image.Image, at: tuple[int, int]) -> Image.Image:
    """A mask cut to what fits on the image from `at` (paste needs the box inside the image)."""
    return mask.crop((0, 0, min(mask.width, img.width - at[0]), min(mask.height, img.height - at[1])))


def _halo(img: Image.Image, layer: Image.Image, at: tuple[int, int]) -> None:
    """Neon: the motif's own colours, blurred and added as light around it."""
    small = layer.resize((max(1, layer.width // 4), max(1, layer.height // 4)), Image.BILINEAR)
    glow = Image.new("RGB", small.size)
    glow.paste(small, (0, 0), small)
    glow = glow.filter(ImageFilter.GaussianBlur(max(1, small.width * 0.04))).resize(layer.size, Image.BICUBIC)
    box = (*at, at[0] + layer.width, at[1] + layer.height)
    img.paste(ImageChops.screen(img.crop(box), glow), box[:2])


def _isometric(layer: Image.Image, s: int, look: Look, acc) -> Image.Image:
    """The drawing laid on the top face of an isometric platform (edges at 30 degrees), on an s x s layer."""
    n, wide = layer.width, 0.92 * s
    tall, depth = wide * math.tan(math.radians(30)), 0.09 * s
    top = (s / 2, (s - tall - depth) / 2)  # the platform's top corner
    k = 2  # the platform's edges, supersampled
    plate = Image.new("RGBA", (s * k, s * k), (*look.bg1, 0))
    corners = [
        top,
        (top[0] + wide / 2, top[1] + tall / 2),
        (top[0], top[1] + tall),
        (top[0] - wide / 2, top[1] + tall / 2),
    ]
    c = [(px * k, py * k) for px, py in corners]
    drop = depth * k
    draw = ImageDraw.Draw(plate)
    shade = WHITE if look.light else BLACK
    draw.polygon(
        [c[3], c[2], (c[2][0], c[2][1] + drop), (c[3][0], c[3][1] + drop)], fill=(*mix(acc[0], shade, 0.35), 255)
    )
    draw.polygon(
        [c[2], c[1], (c[1][0], c[1][1] + drop), (c[2][0], c[2][1] + drop)], fill=(*mix(acc[0], BLACK, 0.55), 255)
    )
    draw.polygon(
        c, fill=(*mix(look.bg1, acc[0], 0.22), 255), outline=(*acc[0], 255), width=max(1, round(0.006 * s * k))
    )
    plate = plate.resize((s, s), Image.BOX)
    a, b = n / wide, n / tall  # output (x, y) -> the drawing's (u, v), the inverse of the projection
    data = (a, b, -(top[0] * a + top[1] * b), -a, b, top[0] * a - top[1] * b)
    projected = layer.transform((s, s), Image.Transform.AFFINE, data, Image.BICUBIC)
    plate.alpha_composite(projected)
    return plate
