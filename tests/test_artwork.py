"""The local provider's card artwork: deterministic, varied by seed, sized, never crashing on text."""

from __future__ import annotations

import colorsys
import io
import itertools
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from aixchange_images import artwork, lettering, looks
from aixchange_images.artwork import draw_card

ROOT = Path(__file__).resolve().parents[1]
KNOWN = (
    "Natural Language Processing",
    "Computer Vision",
    "Speech Recognition",
    "Generative AI",
    "Machine Learning",
    "Deep Learning",
    "Reinforcement Learning",
    "Other",
)
LONG_TITLE = "Enterprise-Grade Multilingual Document Intelligence Platform for Contracts, Invoices & Compliance"
HUNDRED_TITLE = "Enterprise-Grade Multilingual Document Intelligence Platform for Contracts, Invoices and Compliance!"


def card(**overrides) -> Image.Image:
    args = {
        "title": "Smart Document Summarizer",
        "description": "Summarize long text documents and chat with them.",
        "category": "Natural Language Processing",
        "tags": ["nlp", "summaries"],
        "seed": 7,
        "width": 512,
        "height": 512,
    }
    return draw_card(**(args | overrides))


def card_diff(a: Image.Image, b: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box of the pixels where two renders differ."""
    return ImageChops.difference(a, b).getbbox()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def mean_hue_saturation(image: Image.Image) -> tuple[float, float]:
    r, g, b = (v / 255 for v in ImageStat.Stat(image).mean)
    hue, _, saturation = colorsys.rgb_to_hls(r, g, b)
    return hue * 360, saturation


def hue_gap(a: float, b: float) -> float:
    return min(abs(a - b), 360 - abs(a - b))


def test_same_inputs_give_identical_png_bytes():
    assert png(card()) == png(card())


def test_output_is_identical_in_a_fresh_interpreter_with_another_hash_seed():
    # str hashes are salted per process: nothing in the drawing may depend on them.
    script = (
        "import sys, io; sys.path.insert(0, sys.argv[1]);"
        "from aixchange_images.artwork import draw_card;"
        "im = draw_card(title='Smart Document Summarizer', description='Summarize long text documents and chat with them.',"
        " category='Natural Language Processing', tags=['nlp', 'summaries'], seed=7, width=512, height=512);"
        "out = io.BytesIO(); im.save(out, format='PNG', compress_level=1); sys.stdout.buffer.write(out.getvalue())"
    )
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    child = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, env=env, check=True)
    assert child.stdout == png(card())


def test_other_seeds_give_visibly_different_variants():
    base = card(seed=1)
    for seed in (2, 3, 4):
        diff = ImageStat.Stat(ImageChops.difference(base, card(seed=seed)).convert("L")).mean[0]
        assert diff > 2.0, f"seed {seed} is nearly identical to seed 1 (mean difference {diff:.2f})"


def test_variants_keep_the_category_family_look():
    hues = [mean_hue_saturation(card(seed=seed))[0] for seed in range(6)]
    assert max(hue_gap(a, b) for a, b in itertools.combinations(hues, 2)) < 20


def test_known_categories_have_distinct_dominant_palettes():
    looks = {
        c: mean_hue_saturation(card(category=c, description="a useful tool", width=256, height=256)) for c in KNOWN
    }
    for (a, (hue_a, sat_a)), (b, (hue_b, sat_b)) in itertools.combinations(looks.items(), 2):
        assert hue_gap(hue_a, hue_b) > 12 or abs(sat_a - sat_b) > 0.2, f"{a} and {b} look alike"


def test_unknown_categories_hash_stably_onto_a_curated_palette():
    for name in ("AppliedDataScience", "Automation", "Robotics & Control", ""):
        assert looks.palette(name) in looks.PALETTES.values()
        assert looks.palette(name) == looks.palette(name)
    assert looks.palette("computer vision") == looks.palette("Computer Vision")
    assert png(card(category="Automation")) == png(card(category="Automation"))


@pytest.mark.parametrize(
    ("text", "category", "motif"),
    [
        ("Transcribe voice calls and meeting audio", "Other", "waveform"),
        ("Detect defects in camera images", "Other", "aperture"),
        ("Chat with your documents in plain language", "Other", "bubbles"),
        ("Forecast sales from historical data", "Other", "chart"),
        ("Automate the invoice workflow with robots", "Other", "gears"),
        ("Stop fraud and other security threats", "Other", "shield"),
        ("Deep neural network embeddings", "Other", "graph"),
        ("Something without any keyword", "Reinforcement Learning", "path"),
        ("Something without any keyword", "Generative AI", "sparkles"),
        ("Something without any keyword", "Bespoke", "orbit"),
    ],
)
def test_motif_follows_description_keywords_then_category(text: str, category: str, motif: str):
    assert artwork._motif_name(text, category) == motif


@pytest.mark.parametrize(
    ("width", "height"),
    [(256, 256), (1024, 1024), (1536, 1024), (1024, 1536), (3840, 2160), (768, 256), (256, 768), (400, 320)],
)
def test_requested_size_is_respected(width: int, height: int):
    image = card(width=width, height=height, title=LONG_TITLE)
    assert image.size == (width, height)
    assert image.mode == "RGB"


@pytest.mark.parametrize(
    "title",
    [
        LONG_TITLE,
        "Qualitätsprüfung für Énergie Öko — naïve façade",
        "画像認識のための高度なモデル",
        "Модель распознавания речи",
        "نموذج لغوي 🚀 emoji",
        "Supercalifragilisticexpialidocious" * 4,
        " ".join(["word"] * 150),
        "   ",
        "",
    ],
)
@pytest.mark.parametrize(("width", "height"), [(256, 256), (1024, 1024), (1536, 1024)])
def test_awkward_titles_render_at_the_right_size(title: str, width: int, height: int):
    image = card(title=title, width=width, height=height, seed=3)
    assert image.size == (width, height)


@pytest.mark.parametrize(("box_w", "box_h"), [(218, 120), (600, 300), (1200, 500), (150, 60)])
@pytest.mark.parametrize("title", [LONG_TITLE, "Short", "Supercalifragilisticexpialidocious" * 3, "w " * 200])
def test_fitted_title_never_overflows_its_box(title: str, box_w: int, box_h: int):
    size, lines = lettering.fit_title(title, box_w, box_h, 90, 10)
    assert lines
    assert all(lettering.measure(line, size, 700) <= box_w for line in lines)
    assert lettering.title_height(size, len(lines)) <= box_h


@pytest.mark.parametrize("seed", range(4))
def test_a_hundred_character_title_stays_legible_on_a_square_card(seed: int):
    assert len(HUNDRED_TITLE) == 100
    text = artwork._layout(1024, 1024, HUNDRED_TITLE, "Other", random.Random(seed)).text
    assert text.size >= 29 and len(text.lines) <= 4
    assert " ".join(text.lines).split() == HUNDRED_TITLE.split()  # nothing dropped or ellipsised


@pytest.mark.parametrize(
    ("width", "height", "box"),
    [
        (1024, 1024, (0, 231, 1024, 793)),
        (1024, 1536, (0, 487, 1024, 1049)),
        (1536, 1024, (0, 90, 1536, 933)),
        (350, 192, (0, 0, 350, 192)),
        (768, 256, (150, 0, 617, 256)),
    ],
)
def test_safe_box_is_the_centred_band_a_marketplace_card_shows(width: int, height: int, box: tuple):
    assert artwork.safe_box(width, height) == box


@pytest.mark.parametrize(("width", "height"), [(1024, 1024), (1024, 1536), (1536, 1024)])
@pytest.mark.parametrize(
    ("title", "category", "description"),
    [
        ("Fraud Guard", "Other", "Stop fraud and other security threats"),
        ("Smart Document Summarizer", "Natural Language Processing", "Summarize long text documents."),
        ("Warehouse Route Optimizer Agent", "Reinforcement Learning", "An agent that plans routes"),
        (LONG_TITLE, "Computer Vision", "Detect defects in camera images"),
        (HUNDRED_TITLE, "Speech Recognition", "Transcribe meeting audio"),
        ("画像認識のための高度なモデル", "Generative AI", "Generate designs"),
    ],
)
def test_title_pill_and_motif_fall_inside_the_marketplace_crop(
    monkeypatch, width, height, title, category, description
):
    # The marketplace shows a centred ~350x192 crop: every pixel the motif, pill or title
    # touches must lie in that band (with a margin), so outside it the card must be exactly
    # the backdrop a render without motif and text produces.
    args = {"title": title, "category": category, "description": description, "width": width, "height": height}
    full = card(**args)
    monkeypatch.setattr(artwork, "draw_motif", lambda *a, **k: None)
    motif_off = card(**args)
    monkeypatch.setattr(artwork, "_draw_text", lambda *a, **k: None)
    backdrop = card(**args)
    left, top, right, bottom = artwork.safe_box(width, height)
    inset = round(0.03 * (bottom - top))
    for layer, drawn_over in (("motif", card_diff(full, motif_off)), ("text", card_diff(motif_off, backdrop))):
        assert drawn_over is not None, f"no {layer} pixels at all"
        x0, y0, x1, y1 = drawn_over
        assert left + inset <= x0 and top + inset <= y0 and x1 <= right - inset and y1 <= bottom - inset, layer


def test_title_pixels_stay_inside_the_margins():
    # A white title on a dark ground: the outer margin strip holds no near-white text pixels.
    image = card(title=LONG_TITLE, width=1024, height=1024, category="Other", description="nothing special")
    margin = round(0.075 * 1024) // 2
    for box in ((0, 0, margin, 1024), (1024 - margin, 0, 1024, 1024), (0, 1024 - margin, 1024, 1024)):
        assert ImageStat.Stat(image.crop(box).convert("L")).extrema[0][1] < 200


def test_concurrent_rendering_matches_serial_rendering():
    titles = [f"Concurrent card {i}" for i in range(4)]
    serial = [png(card(title=t, seed=i)) for i, t in enumerate(titles)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda it: png(card(title=it[1], seed=it[0])), list(enumerate(titles)) * 3))
    assert parallel == serial * 3


def test_too_small_sizes_are_refused():
    with pytest.raises(ValueError):
        card(width=10, height=10)
