"""The ground a card's motif and title sit on, and the finishing touches over the whole card.

Everything is centred on the motif: a gradient whose lighter corner follows it, soft glows behind
it, a hairline grid (square or isometric) fading out from it, rings rippling out from it, or a
low-poly field of triangles. Then, for a monochrome card, one hue; for a grainy one, fine noise.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from .looks import BLACK, RGB, WHITE, Look, mix

Square = tuple[int, int, int]  # x, y, side


def gradient(w: int, h: int, c0: RGB, c1: RGB, flip: bool = False) -> Image.Image:
    """Diagonal gradient from c0 (bottom-left, or bottom-right when flipped) to c1."""
    if c0 == c1:
        return Image.new("RGB", (w, h), c0)
    ramp = Image.linear_gradient("L")
    mask = ImageChops.add(ramp, ramp.transpose(Image.Transpose.ROTATE_270), scale=2.0)
    if flip:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = mask.transpose(Image.Transpose.FLIP_TOP_BOTTOM).resize((w, h), Image.BILINEAR)
    return Image.composite(Image.new("RGB", (w, h), c1), Image.new("RGB", (w, h), c0), mask)


def backdrop(w: int, h: int, look: Look, motif: Square, rng: random.Random) -> Image.Image:
    """Gradient, glows, then grid, rings or triangles, all centred on the motif."""
    mx, my, s = motif
    cx, cy = mx + s / 2, my + s / 2
    img = gradient(w, h, look.bg0, look.bg1, cx < w / 2)  # light corner follows the motif
    gx = cx + rng.uniform(-0.5, 0.5) * s  # drawn whatever the look, so a cue changes no other choice
    gap = s / rng.choice((5, 6, 8))
    if look.glow:
        img = _glow(img, look, (cx, cy, gx), s)
    if look.triangles:
        _triangles(img, look, s, rng)
    lines = Image.new("L", (w, h))
    if look.grid:
        lines = _grid(w, h, (cx, cy), s, gap, look.grid)
    _rings(lines, (cx, cy), s, look.rings)
    img.paste(look.fg, (0, 0, w, h), lines)
    return img


def _glow(img: Image.Image, look: Look, centre: tuple[float, float, float], s: int) -> Image.Image:
    """Soft glows: light added on a dark ground, a tint multiplied into a light one.

    They are drawn at 1/8 scale and upscaled: a full-size blur would eat the budget.
    """
    (w, h), k = img.size, 8
    cx, cy, gx = centre
    base = BLACK if not look.light else WHITE
    glow = Image.new("RGB", (max(4, w // k), max(4, h // k)), base)
    for colour, r, power, (x, y) in (
        (look.accents[0], 0.62 * s, 0.42, (cx, cy)),
        (look.accents[1], 0.38 * s, 0.30, (gx, cy - 0.45 * s)),
    ):
        strength = min(1.0, power * look.glow * (0.55 if look.light else 1.0))
        ImageDraw.Draw(glow).ellipse([(x - r) / k, (y - r) / k, (x + r) / k, (y + r) / k], mix(base, colour, strength))
    glow = glow.filter(ImageFilter.GaussianBlur(s / k * 0.28)).resize((w, h), Image.BICUBIC)
    return ImageChops.multiply(img, glow) if look.light else ImageChops.screen(img, glow)


def _grid(w: int, h: int, centre: tuple[float, float], s: int, gap: float, kind: str) -> Image.Image:
    """Hairline grid fading out radially from the motif, as a mask: a quiet 'tech' texture.

    Square: horizontal and vertical lines. Isometric: lines at 30 and 150 degrees, and verticals.
    """
    cx, cy = centre
    lw = max(1, round(min(w, h) / 1000))
    lines = Image.new("L", (w, h))
    draw = ImageDraw.Draw(lines)
    angles = (90.0, 0.0) if kind == "square" else (90.0, 30.0, 150.0)
    reach = math.hypot(w, h)
    for angle in angles:
        dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        nx, ny = -dy, dx  # lines of this angle are spaced along their normal
        step = gap if kind == "square" else gap * (0.5 if angle == 90.0 else math.sqrt(3) / 2)
        for i in range(-math.ceil(reach / step), math.ceil(reach / step) + 1):
            px, py = cx + nx * i * step, cy + ny * i * step
            draw.line([(px - dx * reach, py - dy * reach), (px + dx * reach, py + dy * reach)], fill=255, width=lw)
    r = round(s * 0.95)
    spot = ImageChops.invert(Image.radial_gradient("L")).resize((2 * r, 2 * r))
    fade = Image.new("L", (w, h))
    fade.paste(spot, (round(cx) - r, round(cy) - r))
    return ImageChops.multiply(lines, fade).point(lambda v: v * 22 // 255)


def _rings(lines: Image.Image, centre: tuple[float, float], s: int, most: int) -> None:
    """Rings rippling out from the motif carry the composition into the parts of a square or tall
    card that the marketplace crops away."""
    (w, h), (cx, cy) = lines.size, centre
    draw, lw, r, alpha = ImageDraw.Draw(lines), max(1, round(min(w, h) / 900)), 0.78 * s, 34.0
    for _ in range(most):
        if r >= math.hypot(w, h) or alpha < 6:
            break
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=round(alpha), width=lw)
        r, alpha = r * 1.42, alpha * 0.78


def _triangles(img: Image.Image, look: Look, s: int, rng: random.Random) -> None:
    """A low-poly field: each cell of a grid split into two triangles of slightly different tint."""
    w, h = img.size
    cell = max(8.0, s / 2.6)
    jitter = random.Random(rng.random())  # its own stream: the field's size must not shift later choices
    draw = ImageDraw.Draw(img, "RGBA")
    cols, rows = math.ceil(w / cell) + 1, math.ceil(h / cell) + 1
    pts = [[(i * cell + jitter.uniform(-0.3, 0.3) * cell, j * cell + jitter.uniform(-0.3, 0.3) * cell)
            for i in range(cols + 1)] for j in range(rows + 1)]  # fmt: skip
    for j in range(rows):
        for i in range(cols):
            a, b, c, d = pts[j][i], pts[j][i + 1], pts[j + 1][i + 1], pts[j + 1][i]
            for tri in ((a, b, c), (a, c, d)):
                colour = look.accents[jitter.randrange(3)] if jitter.random() < 0.35 else look.fg
                draw.polygon(tri, fill=(*colour, jitter.randrange(6, 30)))


def finish(img: Image.Image, look: Look, seed: int) -> Image.Image:
    """Over the whole card: one hue for a monochrome look, fine noise for a grainy one."""
    if look.mono is not None:
        img = ImageOps.colorize(img.convert("L"), black=mix(look.mono, BLACK, 0.85), white=mix(look.mono, WHITE, 0.9))
    if look.grain:
        w, h = img.size
        noise = Image.frombytes("L", (w, h), random.Random(seed).randbytes(w * h)).point(lambda v: v * 28 // 255)
        img = ImageChops.add(img, Image.merge("RGB", (noise,) * 3), offset=-14)
    return img
