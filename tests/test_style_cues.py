"""The local provider reads a prompt's style words: templates that differ only in them give visibly
different cards, measured on the pixels; what it reads is documented and shown in Prompt Studio."""

from __future__ import annotations

import io
import random
import re

import numpy as np
import pytest
from conftest import open_page
from PIL import Image, ImageChops, ImageFilter
from sqlmodel import Session

from aixchange_images import artwork, artwork_motifs, looks, style_cues, templates, trials
from aixchange_images.auth import Actor
from aixchange_images.config import load_settings
from aixchange_images.models import Candidate
from aixchange_images.prompts import Template, render_template
from aixchange_images.providers.base import ImageRequest
from aixchange_images.providers.local import LocalProvider, subject_texts
from aixchange_images.style_cues import read, understood

BODY = 'A product card for "{title}", an AI solution in {category} that {description}'
SUBJECT = {
    "title": "Support Ticket Router",
    "description": "summarises support tickets and routes them to the right team.",
    "category": "Natural Language Processing",
    "tags": ["support"],
}
PAT = Actor("pat", "product")


def drawn(style: str, variant: int = 0, size: str = "384x384", **subject) -> Image.Image:
    """What the local provider draws for BODY with this style block: the template as Prompt Studio saves it."""
    subj = SUBJECT | subject
    prompt = render_template(Template("t", 1, BODY, style), subj | {"tags": "support", "provider": "Acme"})
    request = ImageRequest(prompt, "local-card", size, "medium", "png", variant=variant, subject=subj)
    return Image.open(io.BytesIO(LocalProvider(load_settings()).generate(request).data)).convert("RGB")


def hsv(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("HSV"), dtype=float) / 255.0


def luminance(image: Image.Image) -> np.ndarray:
    rgb = np.asarray(image, dtype=float) / 255.0
    return 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]


def dominant_hue(image: Image.Image) -> float:
    """The 10-degree hue bin that most clearly coloured pixels fall in (its centre, in degrees)."""
    pixels = hsv(image)
    coloured = (pixels[..., 1] > 0.35) & (pixels[..., 2] > 0.25)
    bins = np.bincount((pixels[..., 0][coloured] * 36).astype(int) % 36, minlength=36)
    return bins.argmax() * 10 + 5


def hue_gap(a: float, b: float) -> float:
    return min(abs(a - b) % 360, 360 - abs(a - b) % 360)


def corner_spread(image: Image.Image) -> float:
    """How far apart the four corners' mean colours are (0 on a solid ground)."""
    rgb = np.asarray(image, dtype=float)
    corners = [rgb[:24, :24], rgb[:24, -24:], rgb[-24:, :24], rgb[-24:, -24:]]
    means = [c.mean(axis=(0, 1)) for c in corners]
    return max(float(np.abs(a - b).max()) for a in means for b in means)


def backdrop_edges(image: Image.Image) -> float:
    """Share of edge pixels in the top strip, which only the backdrop (grid, rings) reaches."""
    edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES), dtype=float)
    return float((edges[: image.height // 5] > 6).mean())


def orientation_share(image: Image.Image) -> tuple[float, float]:
    """Shares of strong edges running at 30/150 degrees (isometric) and at 0/90 degrees (square)."""
    gy, gx = np.gradient(luminance(image))
    strong = np.hypot(gx, gy) > 0.02
    normal = np.degrees(np.arctan2(gy[strong], gx[strong])) % 180  # an edge at 30 degrees has its normal at 120
    iso = (np.abs(normal - 60) < 8) | (np.abs(normal - 120) < 8)
    square = (np.abs(normal - 90) < 8) | (normal < 8) | (normal > 172)
    return float(iso.mean()), float(square.mean())


def saturation_95(image: Image.Image) -> float:
    pixels = hsv(image)
    return float(np.percentile(pixels[..., 1][pixels[..., 2] > 0.3], 95))


def vivid_share(image: Image.Image) -> float:
    pixels = hsv(image)
    return float(((pixels[..., 1] > 0.4) & (pixels[..., 2] > 0.5)).mean())


# -- reading the words -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("Light background, teal and coral accents, flat design.", ["light", "teal", "coral", "flat"]),
        ("Dark mode. Neon glow, bold gradients.", ["dark", "gradient", "neon"]),
        ("Isometric 3D illustration with geometric shapes", ["isometric", "3d", "geometric"]),
        ("Minimal line-art in pastel colors, plenty of negative space", ["minimal", "line-art", "pastel"]),
        ("Monochrome navy with a subtle film grain", ["navy", "monochrome", "grain"]),
        ("A navy background with dark teal lines", ["dark", "navy background", "dark teal"]),
        ("Vibrant, colourful, black and white", ["grey", "monochrome", "vibrant"]),
        ("A greyscale photo", ["grey", "monochrome"]),
        ("on a cream backdrop, light gray accents", ["light", "cream background", "light grey"]),
        ("no gradients, no neon; not dark. Flat.", ["flat"]),
        ("Avoid isometric or 3d effects, but use orange", ["orange"]),
        ("A photorealistic render of a laptop", []),
        ("", []),
    ],
)
def test_the_style_words_of_a_prompt_are_read(prompt: str, words: list[str]):
    assert understood(prompt) == words


def test_the_solutions_own_words_are_not_style_cues():
    subject = SUBJECT | {"title": "Dark Pattern Finder", "description": "finds dark patterns in neon teal apps."}
    prompt = render_template(Template("t", 1, BODY, "Pastel colours."), subject | {"tags": "", "provider": ""})
    assert understood(prompt) == ["dark", "teal", "pastel", "neon"]  # read naively, the description leaks in
    assert understood(prompt, ignore=subject_texts(subject)) == ["pastel"]


def test_the_module_documents_every_cue_it_reads():
    documented = set(re.findall(r"^\| `([^`]+)` \|", style_cues.__doc__ or "", re.MULTILINE))
    assert documented == {"light", "dark", "<colour> background", *style_cues.STYLES}
    for style, words in style_cues.STYLE_WORDS.items():
        row = next(line for line in style_cues.__doc__.splitlines() if line.startswith(f"| `{style}` |"))
        assert all(word in row for word in words), f"{style}: {words} not all listed in {row}"
        assert read(words[0]).styles == (style,)


@pytest.mark.parametrize("colour", sorted(style_cues.COLOURS))
def test_every_colour_word_is_read(colour: str):
    cues = read(f"Use {colour}.")
    assert cues.words() in ([colour], ["light"], ["dark"])  # white and black name the ground


# -- the pixels ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", range(3))
def test_light_and_dark_templates_differ_in_luminance(variant: int):
    light, dark = drawn("Light background.", variant), drawn("Dark background.", variant)
    assert luminance(light).mean() > 0.75 > 0.3 > luminance(dark).mean()


@pytest.mark.parametrize(("word", "hue"), [("teal", 175), ("coral", 16), ("navy", 225), ("lime", 85)])
def test_a_colour_word_sets_the_dominant_hue(word: str, hue: float):
    assert hue_gap(dominant_hue(drawn(f"Mostly {word}.")), hue) <= 15
    assert hue_gap(dominant_hue(drawn("")), 245) <= 15  # the category's indigo without one


def test_flat_gives_a_solid_ground_and_gradient_a_strong_one():
    plain, flat, gradient = drawn(""), drawn("Flat design."), drawn("Bold gradients.")
    assert corner_spread(flat) < 2 < 30 < corner_spread(plain) < corner_spread(gradient) - 20


def test_minimal_draws_fewer_elements():
    for variant in range(3):
        assert backdrop_edges(drawn("Minimal.", variant)) < 0.75 * backdrop_edges(drawn("", variant))


def test_isometric_draws_lines_at_thirty_degrees():
    plain_iso, plain_square = orientation_share(drawn("", size="512x512"))
    iso, square = orientation_share(drawn("Isometric.", size="512x512"))
    assert iso / square > 1.4 * plain_iso / plain_square


def test_line_art_draws_the_motif_as_outlines(monkeypatch):
    def inked(cue: str, seed: int) -> float:
        args = dict(title="Smart Summarizer", description="Summarize and chat.", category="Natural Language Processing")
        args |= dict(tags=[], seed=seed, width=384, height=384, cues=read(cue))
        full = artwork.draw_card(**args)
        with monkeypatch.context() as patch:
            patch.setattr(artwork, "draw_motif", lambda *a, **k: None)
            bare = artwork.draw_card(**args)
        return float((np.asarray(ImageChops.difference(full, bare).convert("L")) > 30).mean())

    for seed in range(3):
        assert inked("Line art.", seed) < 0.6 * inked("", seed)


def test_3d_extrudes_the_motif_downwards_in_shadow():
    for seed in range(3):
        args = dict(title="Smart Summarizer", description="Summarize and chat.", category="Natural Language Processing")
        args |= dict(tags=[], seed=seed, width=512, height=512)
        plain, deep = artwork.draw_card(**args, cues=read("")), artwork.draw_card(**args, cues=read("3D."))
        changed = np.asarray(ImageChops.difference(plain, deep).convert("L")) > 20
        rng = random.Random(f"{seed}\x1f{args['title']}\x1f{args['category']}")
        rng.randrange(3)  # draw_card turns the accents first
        x, y, s = artwork._layout(512, 512, args["title"], args["category"], rng).motif
        ys, xs = np.nonzero(changed)
        assert changed.sum() > 100
        assert xs.min() >= x and ys.min() >= y and xs.max() <= x + 1.1 * s and ys.max() <= y + 1.1 * s
        assert (luminance(deep)[changed] < luminance(plain)[changed]).mean() > 0.95  # sides and shadow are darker


def test_pastel_is_soft_and_light_while_vibrant_and_neon_are_saturated():
    pastel, vibrant, neon, plain = drawn("Pastel."), drawn("Vibrant."), drawn("Neon."), drawn("")
    assert luminance(pastel).mean() > 0.8 and saturation_95(pastel) < 0.3
    assert vivid_share(vibrant) > 1.5 * vivid_share(plain)
    assert luminance(neon).mean() < 0.2 and saturation_95(neon) > 0.95 and vivid_share(neon) > 2 * vivid_share(plain)


def test_monochrome_uses_one_hue():
    def one_hue_share(image: Image.Image) -> float:
        pixels = hsv(image)
        coloured = pixels[..., 1] > 0.08
        bins = np.bincount((pixels[..., 0][coloured] * 24).astype(int) % 24, minlength=24)
        return bins.max() / coloured.sum()

    assert one_hue_share(drawn("Monochrome.")) > 0.98 > 0.8 > one_hue_share(drawn(""))
    assert hue_gap(dominant_hue(drawn("Monochrome teal.").point(lambda v: min(255, v * 2))), 175) <= 15


def test_grain_and_geometric_texture_the_ground():
    def ground_noise(image: Image.Image) -> float:
        return float(np.abs(np.diff(luminance(image)[:40, :40], axis=1)).mean())

    def ground_variation(image: Image.Image) -> float:
        return float(luminance(image)[:64, :64].std())

    plain = drawn("")
    assert ground_noise(drawn("Film grain.")) > 20 * ground_noise(plain) + 0.01
    assert ground_variation(drawn("Geometric low-poly shapes.")) > 3 * ground_variation(plain)


def test_cues_keep_the_card_deterministic():
    style = "Light background, teal, isometric, 3d, grain, line art."
    assert drawn(style).tobytes() == drawn(style).tobytes()
    assert drawn(style, 1).tobytes() != drawn(style).tobytes()


# -- through the product ------------------------------------------------------------------------------
def test_trying_two_template_versions_offline_gives_visibly_different_cards(engine, settings, make_solutions):
    ids = make_solutions(2)
    with Session(engine) as session:
        dark = templates.save_version(session=session, actor=PAT, name="cards", body=BODY, style="Dark background.")
        light = templates.save_version(session=session, actor=PAT, name="cards", body=BODY, style="Light background.")
        refs = (dark.ref, light.ref)
        session.commit()

    trial = trials.run_trial(engine, settings, actor=PAT, refs=refs, solution_ids=ids, provider="local")

    with Session(engine) as session:
        for sid in ids:
            paths = [session.get(Candidate, trial.results[ref][sid].candidate_id).file_path for ref in refs]
            shade = [luminance(Image.open(settings.data_dir / p).convert("RGB")).mean() for p in paths]
            assert shade[0] < 0.3 and shade[1] > 0.75


def test_prompt_studio_says_when_the_local_provider_understands_none_of_the_style_words(engine, make_solutions):
    make_solutions(1)
    with Session(engine) as session:
        saved = templates.save_version(session=session, actor=PAT, name="default", body=BODY, note="no style words")
        templates.move_label(session=session, actor=PAT, name="default", label="production", version=saved.version)
        session.commit()
    at = open_page("prompt_studio", PAT)
    captions = [c.value for c in at.caption]
    assert style_cues.NONE_UNDERSTOOD in captions


def test_prompt_studio_lists_the_style_words_the_local_provider_reads(engine, make_solutions):
    make_solutions(1)
    at = open_page("prompt_studio", PAT)  # default@1: "clean, minimalist"
    assert any(c.value == "The local provider reads: minimal." for c in at.caption)


@pytest.mark.parametrize(
    "style", ["", "Line art.", "Isometric.", "3D.", "Flat.", "Neon, light background.", "Minimal."]
)
def test_every_motif_draws_in_every_look(style: str):
    look = looks.look("Other", read(style))
    for name, variants in artwork_motifs.MOTIFS.items():
        for seed in range(40):
            img = Image.new("RGB", (96, 96), look.bg1)
            artwork_motifs.draw_motif(
                img, (0, 0, 96), variants[seed % len(variants)], look, look.accents, random.Random(seed)
            )
            assert img.getbbox() is not None, name
