"""The refine instructions the local provider honours: a few deterministic Pillow edits of a candidate.

An instruction is read word by word, in any case ("color"/"colour" and "gray"/"grey" both read);
words it does not know are passed over, and a word after "no", "not", "without", "avoid", "never"
or "don't" in the same clause (up to the next comma or full stop) is ignored. Several edits
combine ("warmer and lighter", "teal background, more contrast") and always apply in the order
of the table, so the same image and instruction give the same bytes.

| edit | words | what changes |
|---|---|---|
| a colour | a colour word of `style_cues.COLOURS` (blue, teal, orange, …), optionally after dark, deep, light, pale, soft, bright or vivid | the background is tinted towards that colour (the first one named), accents a little |
| `lighter` | lighter, brighter, lighten, brighten, "light background" | the background moves towards white, the rest a little |
| `darker` | darker, dimmer, darken, "dark background" | the background moves towards black, the rest a little |
| `warmer` | warmer, warm, warmth | red up and blue down over the whole image |
| `cooler` | cooler, cool, colder, cold | blue up and red down over the whole image |
| `more contrast` | "more contrast", "higher contrast", "increase contrast", punchier, crisper | contrast x1.35 |
| `less contrast` | "less contrast", "lower contrast", "reduce contrast", softer, muted, flatter | contrast x0.7 |

The background is where the image is close to its dominant edge colour (the median of a thin
border): each pixel's weight falls from 1 on that colour to 0 at a distance of `REACH`.
An instruction with none of these words is refused with one sentence that lists them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance

from .style_cues import COLOURS, RGB, SHADES

KNOWN = (
    "lighter, darker, warmer, cooler, more contrast, less contrast, "
    "or a colour word such as blue, teal, orange or pink (optionally 'background')"
)
NOT_UNDERSTOOD = f"The local provider understands none of this instruction; ask for {KNOWN}."
CONFLICT = "The instruction asks for both {} and {}; ask for one of them."

_WORDS: dict[str, tuple[str, ...]] = {
    "lighter": ("lighter", "brighter", "lighten", "brighten", "light background"),
    "darker": ("darker", "dimmer", "darken", "dark background"),
    "warmer": ("warmer", "warm", "warmth"),
    "cooler": ("cooler", "cool", "colder", "cold"),
    "more contrast": ("more contrast", "higher contrast", "increase contrast", "punchier", "crisper"),
    "less contrast": ("less contrast", "lower contrast", "reduce contrast", "softer", "muted", "flatter"),
}
_OPPOSITES = (("lighter", "darker"), ("warmer", "cooler"), ("more contrast", "less contrast"))
_PHRASES = sorted(((tuple(p.split()), edit) for edit, ps in _WORDS.items() for p in ps), key=lambda x: -len(x[0]))
NEGATORS = frozenset({"no", "not", "without", "avoid", "never", "nor", "don't", "dont"})
BORDER = 4  # pixels of the edge that tell the background colour
REACH = 110.0  # RGB distance at which a pixel stops counting as background
TONE = 0.4  # how far lighter/darker moves the background towards white/black
TINT = 0.45  # how far a colour word moves the background towards that colour
SPILL = 0.15  # the share of a background edit the rest of the image gets
SHIFT = 22.0  # warmer/cooler: red and blue moved by this much
CONTRAST = {"more contrast": 1.35, "less contrast": 0.7}


class RefineError(ValueError):
    """An instruction the local provider cannot carry out, in one sentence."""


@dataclass(frozen=True)
class Edits:
    """What an instruction asks of the image."""

    colour: tuple[str, RGB] | None = None
    tone: str | None = None  # lighter | darker
    temperature: str | None = None  # warmer | cooler
    contrast: str | None = None  # more contrast | less contrast

    def words(self) -> list[str]:
        """The edits as a person reads them, in the order they apply."""
        named = [self.colour[0]] if self.colour else []
        return named + [w for w in (self.tone, self.temperature, self.contrast) if w]


def parse(instruction: str) -> Edits:
    """The edits an instruction asks for; RefineError when it names none, or two opposites."""
    found: list[str] = []
    colours: list[tuple[str, RGB]] = []
    text = re.sub(r"\bgray", "grey", re.sub(r"\bcolor", "colour", instruction.lower()))
    for clause in re.split(r"[,.;:!?\n()]+", text):
        _read_clause(re.findall(r"[a-z]+(?:'[a-z]+)?", clause), found, colours)
    for one, other in _OPPOSITES:
        if one in found and other in found:
            raise RefineError(CONFLICT.format(one, other))
    if not found and not colours:
        raise RefineError(NOT_UNDERSTOOD)
    pick = lambda options: next((e for e in found if e in options), None)  # noqa: E731
    return Edits(
        colour=colours[0] if colours else None,
        tone=pick(("lighter", "darker")),
        temperature=pick(("warmer", "cooler")),
        contrast=pick(tuple(CONTRAST)),
    )


def _read_clause(words: list[str], found: list[str], colours: list[tuple[str, RGB]]) -> None:
    negated, i = False, 0
    while i < len(words):
        if words[i] in NEGATORS:
            negated, i = True, i + 1
            continue
        used = 1
        phrase = next(((p, e) for p, e in _PHRASES if tuple(words[i : i + len(p)]) == p), None)
        if phrase is not None:
            used = len(phrase[0])
            if not negated:
                found.append(phrase[1])
        elif (colour := _colour(words, i)) is not None:
            used = colour[2]
            if not negated:
                colours.append(colour[:2])
        i += used


def _colour(words: list[str], i: int) -> tuple[str, RGB, int] | None:
    """A colour word at words[i], with a shade word before it ("dark teal"); None if there is none."""
    word, after = words[i], words[i + 1] if i + 1 < len(words) else ""
    if word in SHADES and after in COLOURS:
        target = 255 if SHADES[word] > 0 else 0
        shade = tuple(round(c + (target - c) * abs(SHADES[word])) for c in COLOURS[after])
        return f"{word} {after}", shade, 2  # type: ignore[return-value]
    if word in COLOURS:
        return word, COLOURS[word], 1
    return None


def apply(data: bytes, instruction: str) -> tuple[Image.Image, str]:
    """The image in `data` changed as `instruction` says, and the format to keep ("png" or "jpeg")."""
    edits = parse(instruction)
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        fmt = "jpeg" if source.format == "JPEG" else "png"
        alpha = source.getchannel("A") if source.mode in ("RGBA", "LA") else None
        image = edit(source.convert("RGB"), edits)
    if alpha is not None:
        image.putalpha(alpha)
    return image, fmt


def edit(image: Image.Image, edits: Edits) -> Image.Image:
    """An RGB image with the edits applied, in the table's order."""
    pixels = np.asarray(image, dtype=np.float32)
    weight = background_weight(pixels)
    spread = (SPILL + (1 - SPILL) * weight)[..., None]  # background edits reach the rest a little
    if edits.colour is not None:
        colour = np.array(edits.colour[1], dtype=np.float32)
        pixels += (colour - pixels) * TINT * spread
    if edits.tone is not None:
        target = 255.0 if edits.tone == "lighter" else 0.0
        pixels += (target - pixels) * TONE * spread
    if edits.temperature is not None:
        sign = 1.0 if edits.temperature == "warmer" else -1.0
        pixels += np.array([sign * SHIFT, sign * SHIFT * 0.2, -sign * SHIFT], dtype=np.float32)
    result = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    if edits.contrast is not None:
        result = ImageEnhance.Contrast(result).enhance(CONTRAST[edits.contrast])
    return result


def background_weight(pixels: np.ndarray) -> np.ndarray:
    """Per pixel, 1 on the dominant edge colour falling to 0 at REACH away from it."""
    border = np.concatenate(
        [
            pixels[:BORDER].reshape(-1, 3),
            pixels[-BORDER:].reshape(-1, 3),
            pixels[:, :BORDER].reshape(-1, 3),
            pixels[:, -BORDER:].reshape(-1, 3),
        ]
    )
    ground = np.median(border, axis=0)
    distance = np.sqrt(((pixels - ground) ** 2).sum(axis=2))
    return np.clip(1.0 - distance / REACH, 0.0, 1.0)
