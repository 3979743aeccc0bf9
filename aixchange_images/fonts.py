"""Fonts for the local provider's lettering: Inter first, then, character by character, a face with the glyph.

The chain, all OFL fonts installed from PyPI (nothing is downloaded at run time):

1. Inter (`fontpkg-inter`): Latin, Greek, Cyrillic, common punctuation and arrows.
2. The Noto Sans face of the character's script (`manimgx-fonts`): Arabic, Armenian, Bengali,
   Devanagari, Ethiopic, Georgian, Gujarati, Gurmukhi, Hebrew, Kannada, Khmer, Lao, Malayalam,
   Myanmar, Oriya, Sinhala, Tamil, Telugu, Thai; plain Noto Sans for the rest of Latin, Greek, Cyrillic.
3. Noto Sans CJK (`manimgx-fonts-cjk`) for Han, kana, hangul and CJK punctuation: its Japanese face
   when the text has kana, the Korean one with hangul, else Simplified Chinese.
4. Noto Sans Symbols, then Noto Emoji (monochrome outlines, which Pillow draws like letters).
5. Any system font that is installed (DejaVu, WenQuanYi, Droid Sans Fallback, ...).

A combining mark, joiner or variation selector keeps the face of the character before it, so accents,
Indic vowel signs and emoji sequences are shaped together. A character that no face has is left out;
`missing` names those characters so that the caller can say so.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from PIL import ImageFont, features

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
NOTDEF_PROBE = "\U000ffffd"  # private use: no font maps it, so it draws the font's .notdef glyph
SYSTEM_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
# First words of Unicode character names that Noto Sans CJK covers.
CJK_WORDS = frozenset(
    {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH", "KANGXI"}
)
CJK_FACES = {"ja": 0, "ko": 1, "zh": 2}  # faces inside NotoSansCJK-VF.otf.ttc: JP, KR, SC, TC, HK
JOINERS = frozenset("\u200c\u200d\ufe0e\ufe0f")


class Face(NamedTuple):
    """A font file and the face inside it (a .ttc holds several); path "" is Pillow's built-in font."""

    path: str
    index: int = 0


BUILT_IN = Face("")


@lru_cache(maxsize=1)
def primary() -> Face:
    """Inter from the fontpkg-inter wheel, else a font vendored beside the code, else a system sans."""
    try:
        import fontpkg_inter  # OFL Inter from PyPI: no system fonts needed

        found = fontpkg_inter.ROOT / "files" / "Inter[opsz,wght].ttf"
        if found.is_file():
            return Face(str(found))
    except ImportError:
        pass
    vendored = sorted((Path(__file__).parent / "fonts").glob("*.[ot]tf"))
    if vendored:
        return Face(str(vendored[0]))
    dejavu = Path(SYSTEM_FONTS[3])
    return Face(str(dejavu)) if dejavu.is_file() else BUILT_IN


@lru_cache(maxsize=1)
def _noto() -> dict[str, Path]:
    """Noto faces from manimgx-fonts by script name ('ARABIC', ...; '' for Noto Sans, 'EMOJI', 'SYMBOLS')."""
    try:
        import manimgx_fonts
    except ImportError:
        return {}
    found = {}
    for path in Path(manimgx_fonts.__file__).parent.glob("Noto*[[]wght[]].ttf"):
        stem = path.name.split("[")[0]
        if stem.endswith("-Italic"):
            continue
        script = stem.removeprefix("NotoSans").removeprefix("Noto").upper()
        found["" if script == "SANS" else script] = path
    return found


@lru_cache(maxsize=1)
def _cjk() -> Path | None:
    try:
        import manimgx_fonts_cjk
    except ImportError:
        return None
    path = Path(manimgx_fonts_cjk.__file__).parent / "NotoSansCJK-VF.otf.ttc"
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def _system() -> tuple[Face, ...]:
    return tuple(Face(p) for p in SYSTEM_FONTS if Path(p).is_file() and Face(p) != primary())


@lru_cache(maxsize=512)
def load(face: Face, size: int, weight: int, shaping: bool = True) -> Font:
    """A face at a pixel size; a variable face gets its weight (and optical size) set.

    `shaping` lays text out with libraqm where Pillow has it; False is Pillow's basic layout.
    """
    if not face.path:
        return ImageFont.load_default(size)
    layout = ImageFont.Layout.RAQM if shaping and features.check("raqm") else ImageFont.Layout.BASIC
    font = ImageFont.truetype(face.path, size, index=face.index, layout_engine=layout)
    try:
        axes = font.get_variation_axes()
    except OSError:  # a static font has no axes to set
        return font
    want = {"weight": weight, "optical size": size}
    values = []
    for axis in axes:
        name = axis["name"]
        name = (name.decode() if isinstance(name, bytes) else str(name)).lower()
        values.append(min(max(want.get(name, axis["default"]), axis["minimum"]), axis["maximum"]))
    font.set_variation_by_axes(values)
    return font


@lru_cache(maxsize=8192)
def covers(face: Face, ch: str) -> bool:
    """Whether a face has a glyph for ch: a missing one renders as the face's .notdef glyph."""
    if not face.path:
        return ord(ch) < 0x100
    font = load(face, 24, 400)
    mask, missing = font.getmask(ch), font.getmask(NOTDEF_PROBE)
    return (mask.size, bytes(mask)) != (missing.size, bytes(missing))


def _script(ch: str) -> str:
    """The first word of a character's Unicode name ('ARABIC', 'CJK', 'HIRAGANA', ...), '' if unnamed."""
    name = unicodedata.name(ch, "")
    return name.split()[0] if name else ""


def cjk_language(text: str) -> str:
    """Which CJK face suits the text: Japanese with kana, Korean with hangul, else Chinese."""
    words = {_script(ch) for ch in text if ord(ch) >= 0x1100}
    if words & {"HIRAGANA", "KATAKANA"}:
        return "ja"
    return "ko" if "HANGUL" in words else "zh"


def chain(ch: str, language: str = "zh") -> list[Face]:
    """The faces to try for ch, in order."""
    script = _script(ch)
    noto, cjk = _noto(), _cjk()
    faces = [primary()]
    if script in noto and script not in ("", "EMOJI", "SYMBOLS"):
        faces.append(Face(str(noto[script])))
    if "" in noto:
        faces.append(Face(str(noto[""])))
    if cjk is not None and script in CJK_WORDS:
        faces.append(Face(str(cjk), CJK_FACES[language]))
    faces += [Face(str(noto[s])) for s in ("SYMBOLS", "EMOJI") if s in noto]
    if cjk is not None and script not in CJK_WORDS:
        faces.append(Face(str(cjk), CJK_FACES[language]))
    return faces + list(_system())


@lru_cache(maxsize=8192)
def face_for(ch: str, language: str = "zh") -> Face | None:
    """The first face in the chain with a glyph for ch; None when none has one."""
    first = primary()
    if ch.isspace() or ord(ch) < 0x250:
        return first
    return next((face for face in chain(ch, language) if covers(face, ch)), None)


def _clings(ch: str) -> bool:
    """Marks, joiners and variation selectors belong with the character before them."""
    return ch in JOINERS or unicodedata.category(ch) in ("Mn", "Mc", "Me", "Sk") and ord(ch) >= 0x300


def runs(text: str) -> list[tuple[str, Face]]:
    """Text split into runs sharing a face (per-character fallback); undrawable characters left out."""
    language, out = cjk_language(text), []
    face: Face | None = None
    for ch in text:
        if face is None or not _clings(ch) or not (ch in JOINERS or covers(face, ch)):
            face = face_for(ch, language)
        if face is None:
            continue
        if out and out[-1][1] == face:
            out[-1] = (out[-1][0] + ch, face)
        else:
            out.append((ch, face))
    return out


def printable(text: str) -> str:
    """Text without the characters no face can draw, whitespace collapsed."""
    return " ".join("".join(part for part, _ in runs(text)).split())


def missing(text: str) -> str:
    """The visible characters of text that no face can draw (each once, in order)."""
    drawn = set("".join(part for part, _ in runs(text)))
    lost = (ch for ch in text if ch not in drawn and not ch.isspace() and ch not in JOINERS)
    return "".join(dict.fromkeys(lost))
