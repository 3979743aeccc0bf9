"""Titles in any script: the local provider draws them (or says what it could not), and never fails."""

from __future__ import annotations

import io
import logging
import random

import pytest
from PIL import Image, ImageChops, ImageFont, ImageStat, features

from aixchange_images import artwork, artwork_motifs, fonts, lettering, looks
from aixchange_images.config import load_settings
from aixchange_images.prompts import DEFAULT_TEMPLATE
from aixchange_images.providers.base import ImageRequest
from aixchange_images.providers.local import LocalProvider

SENALES = "Análisis de Señales – 信号 Studio"
TITLES = {
    "latin accents": "Qualitätsprüfung für Énergie Öko — naïve façade",
    "cjk": "画像認識のための高度なモデル",
    "japanese short": "日本語",
    "chinese": "智能客服助手",
    "korean": "한국어 음성 인식",
    "arabic": "نموذج لغوي ذكي",
    "hebrew": "עוזר מסמכים חכם",
    "devanagari": "हिन्दी भाषा सहायक",
    "thai": "ผู้ช่วยเอกสาร",
    "emoji": "Launch 🚀 Copilot 🤖✨",
    "emoji only": "🚀🤖✨",
    "mixed": SENALES,
    "mixed rtl": "نموذج لغوي 🚀 emoji",
    "symbols only": "★ ✓ → ∑ ∞ © ® ™ § ¶",
    "long cjk": "多言語文書インテリジェンスプラットフォーム契約書請求書コンプライアンス対応版",
}
NOTDEF = "\U000ffffd"  # a private-use code point no font maps: it renders as the font's .notdef glyph


def card(title: str, **overrides) -> Image.Image:
    args = {
        "title": title,
        "description": "Forecast sales from historical data",
        "category": "Machine Learning",
        "tags": [],
        "seed": 11,
        "width": 512,
        "height": 512,
    }
    return artwork.draw_card(**(args | overrides))


def local_png(title: str, variant: int = 0, size: str = "256x256") -> bytes:
    subject = {
        "title": title,
        "description": "forecasts demand from sales data and market signals.",
        "category": "Machine Learning",
        "tags": ["forecasting"],
    }
    prompt = DEFAULT_TEMPLATE.format(**subject)
    request = ImageRequest(prompt, "local-card", size, "medium", "png", variant=variant, subject=subject)
    return LocalProvider(load_settings()).generate(request).data


def ink(image: Image.Image, other: Image.Image) -> int:
    """How many pixels differ clearly between two renders."""
    diff = ImageChops.difference(image, other).convert("L").point(lambda v: 255 if v > 40 else 0)
    return int(ImageStat.Stat(diff).sum[0] // 255)


def test_the_senales_title_draws_on_every_variant_the_local_provider_makes():
    # Variant 19 of this solution drew a bar chart whose first bar had its top below its bottom:
    # Pillow refused with "y1 must be greater than or equal to y0".
    for variant in range(40):
        assert Image.open(io.BytesIO(local_png(SENALES, variant))).size == (256, 256)


@pytest.mark.parametrize("motif", sorted(artwork_motifs.MOTIFS))
def test_every_motif_draws_for_hundreds_of_seeds(motif: str):
    for seed in range(300):
        rng = random.Random(seed)
        img = Image.new("RGB", (96, 96))
        for draw in artwork_motifs.MOTIFS[motif]:
            artwork_motifs.draw_motif(img, (0, 0, 96), draw, looks.look("Other"), ((200, 80, 80),) * 3, rng)


@pytest.mark.parametrize("title", ["日本語", "信号", "Señales 信号"])
def test_a_cjk_title_is_drawn_not_dropped(title: str):
    assert fonts.printable(title) == title
    assert ink(card(title), card("")) > 150  # the title's own pixels are there


@pytest.mark.parametrize("title", list(TITLES.values()), ids=list(TITLES))
def test_every_character_of_a_title_gets_a_face_with_a_real_glyph(title: str):
    drawn = "".join(part for part, _ in fonts.runs(title))
    assert drawn.replace(" ", "") == title.replace(" ", "").replace("\ufe0f", "")
    for part, face in fonts.runs(title):
        font = ImageFont.truetype(face.path, 48, index=face.index)
        notdef = font.getmask(NOTDEF)
        for ch in part:
            if ch.isspace() or not ch.isprintable():
                continue
            mask = font.getmask(ch)
            assert (mask.size, bytes(mask)) != (notdef.size, bytes(notdef)), f"{ch!r} is tofu in {face.path}"


@pytest.mark.parametrize("title", list(TITLES.values()), ids=list(TITLES))
@pytest.mark.parametrize(("width", "height"), [(256, 256), (1024, 1024), (1536, 1024)])
def test_a_title_in_any_script_leaves_ink_on_the_card(title: str, width: int, height: int):
    image = card(title, width=width, height=height)
    assert image.size == (width, height)
    assert ink(image, card("", width=width, height=height)) > 0.0004 * width * height


@pytest.mark.parametrize("title", list(TITLES.values()), ids=list(TITLES))
def test_the_whole_title_is_laid_out_in_order(title: str):
    text = artwork._layout(1024, 1024, title, "Other", random.Random(1)).text
    joined = "".join(text.lines).replace(" ", "").rstrip("…")
    assert joined and fonts.printable(title).replace(" ", "").startswith(joined)


def test_right_to_left_words_are_placed_right_to_left():
    # With a right-to-left title the first word is drawn rightmost.
    first, second = "نموذج", "لغوي"
    runs = lettering.visual_runs(f"{first} {second}", 40, 700)
    texts = [part.strip() for part, _ in runs if part.strip()]
    assert texts == [second, first] or texts == [second[::-1], first[::-1]]


def test_a_left_to_right_title_keeps_an_arabic_phrase_in_reading_order():
    runs = [part.strip() for part, _ in lettering.visual_runs("AI مساعد ذكي tool", 40, 700) if part.strip()]
    assert runs[0] == "AI" and runs[-1] == "tool"
    assert runs[1:3] == ["ذكي", "مساعد"] or runs[1:3] == ["ذكي"[::-1], "مساعد"[::-1]]


def test_without_raqm_arabic_still_draws_in_reading_order(monkeypatch):
    monkeypatch.setattr(lettering, "SHAPING", False)
    runs = [part.strip() for part, _ in lettering.visual_runs("نموذج لغوي", 40, 700) if part.strip()]
    assert runs == ["يوغل", "جذومن"]  # each word reversed, the words right to left
    assert ink(card("نموذج لغوي"), card("")) > 150


@pytest.mark.skipif(not features.check("raqm"), reason="Pillow without libraqm draws isolated forms")
def test_with_raqm_arabic_letters_join():
    # Joined (initial, medial, final) forms are narrower than the same letters drawn one by one.
    word = "مرحبا"
    assert lettering.measure(word, 60, 700) < 0.9 * sum(lettering.measure(ch, 60, 700) for ch in word)


def test_a_title_no_font_can_draw_is_reported_not_silently_dropped(caplog):
    caplog.set_level(logging.WARNING, logger="aixchange_images.providers.local")
    png = local_png("\uf8ff\ue001 Private")
    assert Image.open(io.BytesIO(png)).size == (256, 256)
    assert "\uf8ff" in caplog.text and "could not be drawn" in caplog.text


@pytest.mark.parametrize(
    "title", ["", "   ", "\ue001", "\u0378", "\u200d\ufe0f", "…", "-" * 300, "信" * 400, "🚀" * 120]
)
def test_odd_titles_never_make_generation_fail(title: str):
    assert Image.open(io.BytesIO(local_png(title))).size == (256, 256)


@pytest.mark.parametrize("title", list(TITLES.values()), ids=list(TITLES))
def test_title_pixels_in_any_script_stay_inside_the_marketplace_crop(monkeypatch, title: str):
    args = {"title": title, "width": 1024, "height": 1024}
    monkeypatch.setattr(artwork, "draw_motif", lambda *a, **k: None)
    with_text = card(**args)
    monkeypatch.setattr(artwork, "_draw_text", lambda *a, **k: None)
    backdrop = card(**args)
    left, top, right, bottom = artwork.safe_box(1024, 1024)
    x0, y0, x1, y1 = ImageChops.difference(with_text, backdrop).getbbox()
    assert left <= x0 and top <= y0 and x1 <= right and y1 <= bottom
