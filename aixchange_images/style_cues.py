"""The style words the local provider reads in a rendered prompt, so templates mean something offline.

Only the template's own words count: the solution's title, description, category, tags and provider are
taken out of the prompt first (a description about "dark patterns" does not make a dark card).
A word after "no", "not", "without", "avoid", "never" or "nor" in the same clause (up to the next
comma, full stop, semicolon, colon or line break) is ignored: "no gradients" asks for none.
Words are matched whole, in any case; "color"/"colour" and "gray"/"grey" are both read.

| cue | words | what the card does |
|---|---|---|
| `light` | light, white, airy, "light/white/bright background", "light mode", "light theme" | light ground, dark title and lines |
| `dark` | dark, black, night, moody, "dark/black background", "dark mode", "dark theme" | dark ground (also the look when no ground is named) |
| a colour | a word of `COLOURS`, optionally after dark, deep, light, pale, soft, bright or vivid | the accents (up to three, in order) and a ground tinted by the first |
| `<colour> background` | a colour word before background, backdrop, ground or canvas | that colour as the ground; light or dark follows from it |
| `flat` | flat, "flat design", "solid colours" | a solid ground, solid fills, no glows |
| `gradient` | gradient, gradients | a full-bleed gradient ground in the accents, gradient fills |
| `isometric` | isometric, 2.5d | an isometric grid; the motif drawn in isometric projection on a platform |
| `3d` | 3d, 3-d, "three dimensional", three-dimensional, extruded | the motif extruded, with a shadow |
| `minimal` | minimal, minimalist, minimalism, simple, sparse, "negative space" | fewer elements: no grid, fewer rings, a smaller motif |
| `line-art` | "line art", line-art, "line drawing", outline, outlines, outlined, wireframe, linework | the motif as outlines only |
| `geometric` | geometric, polygon, polygons, "low poly", low-poly, triangles | a field of translucent triangles on the ground |
| `pastel` | pastel, pastels | soft light accents; a light ground unless dark is asked |
| `neon` | neon, glow, glowing, cyberpunk, synthwave | saturated accents that glow; a dark ground unless light is asked |
| `monochrome` | monochrome, monochromatic, "black and white", greyscale, grayscale, "single colour" | one hue: the first colour named (grey for black and white, greyscale), else the category's |
| `vibrant` | vibrant, saturated, colourful, "bold colours", "bright colours" | more saturated accents, stronger glows |
| `grain` | grain, grainy, noise, "film grain", textured, risograph | a fine noise texture |
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

RGB = tuple[int, int, int]


def _hex(value: str) -> RGB:
    return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


# Colour words and the colour each stands for (a Tailwind-like shade that reads well on a card).
COLOURS: dict[str, RGB] = {
    name: _hex(value)
    for name, value in {
        "red": "#EF4444",
        "crimson": "#DC143C",
        "scarlet": "#FF2400",
        "maroon": "#8B1A1A",
        "burgundy": "#800020",
        "rose": "#F43F5E",
        "pink": "#EC4899",
        "magenta": "#D946EF",
        "fuchsia": "#C026D3",
        "purple": "#A855F7",
        "violet": "#8B5CF6",
        "lavender": "#C4B5FD",
        "indigo": "#6366F1",
        "navy": "#1E3A8A",
        "blue": "#3B82F6",
        "azure": "#0EA5E9",
        "cobalt": "#0047AB",
        "cyan": "#22D3EE",
        "aqua": "#00E5E5",
        "turquoise": "#2DD4BF",
        "teal": "#0D9488",
        "mint": "#6EE7B7",
        "green": "#22C55E",
        "emerald": "#10B981",
        "lime": "#84CC16",
        "olive": "#808000",
        "yellow": "#FACC15",
        "gold": "#EAB308",
        "golden": "#EAB308",
        "amber": "#F59E0B",
        "orange": "#F97316",
        "coral": "#FF7F50",
        "salmon": "#FA8072",
        "peach": "#FDBA74",
        "brown": "#92400E",
        "beige": "#E7D8C0",
        "cream": "#FFF7E0",
        "ivory": "#FFFFF0",
        "white": "#FFFFFF",
        "black": "#000000",
        "grey": "#9CA3AF",
        "silver": "#CBD5E1",
        "charcoal": "#334155",
        "slate": "#64748B",
    }.items()
}
SHADES = {"dark": -0.45, "deep": -0.45, "light": 0.5, "pale": 0.6, "soft": 0.35, "bright": 0.0, "vivid": 0.0}
GROUND_WORDS = frozenset({"background", "backdrop", "ground", "canvas", "backgrounds"})
GROUND_ALONE = {"light": "light", "white": "light", "airy": "light", "dark": "dark", "black": "dark"}
GROUND_ALONE |= {"night": "dark", "moody": "dark"}
STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "flat": ("flat", "flat design", "solid colour", "solid colours"),
    "gradient": ("gradient", "gradients"),
    "isometric": ("isometric", "2.5d"),
    "3d": ("3d", "3-d", "three dimensional", "three-dimensional", "extruded"),
    "minimal": ("minimal", "minimalist", "minimalism", "simple", "sparse", "negative space"),
    "line-art": ("line art", "line-art", "line drawing", "outline", "outlines", "outlined", "wireframe", "linework"),
    "geometric": ("geometric", "polygon", "polygons", "low poly", "low-poly", "triangles"),
    "pastel": ("pastel", "pastels"),
    "neon": ("neon", "glow", "glowing", "cyberpunk", "synthwave"),
    "monochrome": ("monochrome", "monochromatic", "black and white", "greyscale", "single colour"),
    "vibrant": ("vibrant", "saturated", "colourful", "bold colour", "bold colours", "bright colour", "bright colours"),
    "grain": ("grain", "grainy", "noise", "film grain", "textured", "risograph"),
}
STYLES = tuple(STYLE_WORDS)
GREYSCALE = frozenset({"black and white", "greyscale"})
NONE_UNDERSTOOD = "The local provider understands none of this prompt's style words; see the list in README."
NEGATORS = frozenset({"no", "not", "without", "avoid", "never", "nor", "don't", "dont"})
_PHRASES = sorted(
    ((tuple(p.split()), style) for style, words in STYLE_WORDS.items() for p in words), key=lambda x: -len(x[0])
)
_SPELLING = ((r"\bcolor", "colour"), (r"\bgray", "grey"))


@dataclass(frozen=True)
class Cues:
    """What a prompt asks of the card's look."""

    ground: str | None = None  # "light" or "dark"
    ground_colour: tuple[str, RGB] | None = None  # a named background colour
    colours: tuple[tuple[str, RGB], ...] = ()  # accent colours, in the order named
    styles: tuple[str, ...] = field(default=())  # in STYLES order

    def words(self) -> list[str]:
        """The cues as a person reads them: ground, background colour, colours, styles."""
        out = [self.ground] if self.ground else []
        out += [f"{self.ground_colour[0]} background"] if self.ground_colour else []
        return out + [name for name, _ in self.colours] + list(self.styles)

    def has(self, style: str) -> bool:
        return style in self.styles


def read(prompt: str, ignore: Iterable[str] = ()) -> Cues:
    """The style cues in a rendered prompt, leaving out the texts in `ignore` (the solution's own fields)."""
    found: dict[str, list] = {"ground": [], "ground_colour": [], "colours": [], "styles": []}
    for clause in _clauses(_without(prompt, ignore)):
        _read_clause(clause, found)
    styles = tuple(s for s in STYLES if s in found["styles"])
    ground = found["ground"][0] if found["ground"] else None
    ground_colour = found["ground_colour"][0] if found["ground_colour"] else None
    if ground is None and ground_colour is not None:
        ground = "light" if _luminance(ground_colour[1]) > 0.55 else "dark"
    colours = tuple(dict.fromkeys(found["colours"]))[:3]
    return Cues(ground, ground_colour, colours, styles)


def understood(prompt: str, ignore: Iterable[str] = ()) -> list[str]:
    """The style cues of a prompt the local provider honours, as words; empty when it understands none."""
    return read(prompt, ignore).words()


def sentence(prompt: str, ignore: Iterable[str] = ()) -> str:
    """What Prompt Studio says about a prompt: the cues the local provider reads, or that it reads none."""
    words = understood(prompt, ignore)
    return f"The local provider reads: {', '.join(words)}." if words else NONE_UNDERSTOOD


def _without(prompt: str, ignore: Iterable[str]) -> str:
    """The prompt in lower case and house spelling, with the solution's own texts cut out."""
    text = prompt.lower()
    for part in sorted((str(p).strip().lower() for p in ignore if p and str(p).strip()), key=len, reverse=True):
        text = text.replace(part, " ; ")
    for pattern, spelling in _SPELLING:
        text = re.sub(pattern, spelling, text)
    return text


def _clauses(text: str) -> list[list[str]]:
    """Words of each clause: a negation reaches as far as the next comma, stop, semicolon or line break."""
    return [re.findall(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*", part) for part in re.split(r"[,.;:!?\n()\[\]]+(?!\d)", text)]


def _read_clause(words: list[str], found: dict[str, list]) -> None:
    negated, i = False, 0
    while i < len(words):
        if words[i] in NEGATORS:
            negated, i = True, i + 1
            continue
        kind, value, length = _match(words, i)
        if kind and not negated:
            found[kind].append(value)
            if " ".join(words[i : i + length]) in GREYSCALE:  # one hue, and that hue is grey
                found["colours"].append(("grey", COLOURS["grey"]))
        i += max(length, 1)


def _match(words: list[str], i: int) -> tuple[str | None, object, int]:
    """The cue that starts at words[i]: (kind, value, words used), or (None, None, 1)."""
    for phrase, style in _PHRASES:
        if tuple(words[i : i + len(phrase)]) == phrase:
            return "styles", style, len(phrase)
    colour = _colour(words, i)
    if colour is not None:
        name, rgb, used = colour
        if i + used < len(words) and words[i + used] in GROUND_WORDS:
            return "ground_colour", (name, rgb), used + 1
        if name in ("white", "black"):  # on their own they name the ground, not an accent
            return "ground", GROUND_ALONE[name], used
        return "colours", (name, rgb), used
    word = words[i]
    if word in ("light", "dark", "bright") and i + 1 < len(words) and words[i + 1] in ("mode", "theme", *GROUND_WORDS):
        return "ground", "dark" if word == "dark" else "light", 2
    if word in GROUND_ALONE:
        return "ground", GROUND_ALONE[word], 1
    return None, None, 1


def _colour(words: list[str], i: int) -> tuple[str, RGB, int] | None:
    """A colour word at words[i], with a shade word before it ("dark teal"); None if there is none."""
    word = words[i]
    if word in COLOURS:
        return word, COLOURS[word], 1
    after = words[i + 1] if i + 1 < len(words) else ""
    if word in SHADES and after in COLOURS:
        return f"{word} {after}", _shade(COLOURS[after], SHADES[word]), 2
    return None


def _shade(rgb: RGB, amount: float) -> RGB:
    """Towards white (amount > 0) or black (amount < 0)."""
    target = 255 if amount > 0 else 0
    return tuple(round(c + (target - c) * abs(amount)) for c in rgb)  # type: ignore[return-value]


def _luminance(rgb: RGB) -> float:
    r, g, b = (c / 255 for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
