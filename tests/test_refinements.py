"""The local provider's refine instructions: each one moves the image the documented way, deterministically."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from aixchange_images import refinements
from aixchange_images.config import Settings
from aixchange_images.providers.base import ImageRequest, ProviderError
from aixchange_images.providers.local import LocalProvider, encode


def card(fmt: str = "PNG") -> bytes:
    """A small card: a dark blue ground with a light panel and a warm accent in the middle."""
    image = Image.new("RGB", (256, 256), (24, 30, 70))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 60, 196, 196), fill=(200, 205, 220))
    draw.ellipse((100, 100, 156, 156), fill=(240, 120, 60))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def refined(data: bytes, instruction: str) -> bytes:
    """What the local provider sends back for this image and instruction."""
    return encode(*refinements.apply(data, instruction))


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def luminance(data: bytes) -> np.ndarray:
    p = pixels(data)
    return 0.2126 * p[..., 0] + 0.7152 * p[..., 1] + 0.0722 * p[..., 2]


def warmth(data: bytes) -> float:
    """Colour temperature as red minus blue, on average."""
    p = pixels(data)
    return float((p[..., 0] - p[..., 2]).mean())


def ground(data: bytes) -> np.ndarray:
    """The mean colour of the card's corner, which is background."""
    return pixels(data)[:40, :40].reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize(
    ("instruction", "measure", "direction"),
    [
        ("make the background lighter", lambda d: luminance(d).mean(), 1),
        ("Darker, please", lambda d: luminance(d).mean(), -1),
        ("warmer", warmth, 1),
        ("a cooler look", warmth, -1),
        ("more contrast", lambda d: luminance(d).std(), 1),
        ("less contrast", lambda d: luminance(d).std(), -1),
    ],
)
def test_each_instruction_moves_the_image_the_documented_way(instruction, measure, direction):
    before, after = card(), refined(card(), instruction)
    change = measure(after) - measure(before)
    assert change * direction > 5 if measure is warmth else change * direction > 2


def test_lighter_works_mostly_on_the_background():
    before, after = card(), refined(card(), "lighter")
    ground_gain = luminance(after)[:40, :40].mean() - luminance(before)[:40, :40].mean()
    panel_gain = luminance(after)[80:90, 80:90].mean() - luminance(before)[80:90, 80:90].mean()
    assert ground_gain > 40
    assert ground_gain > 4 * panel_gain


@pytest.mark.parametrize(
    ("instruction", "colour", "channel"),
    [("make it orange", "orange", 0), ("teal background", "teal", 1), ("Make it BLUE", "blue", 2)],
)
def test_a_colour_word_tints_the_background_towards_it(instruction, colour, channel):
    before, after = ground(card()), ground(refined(card(), instruction))
    target = np.array(refinements.COLOURS[colour])
    assert np.linalg.norm(after - target) < np.linalg.norm(before - target) - 40
    assert after[channel] > before[channel]


def test_instructions_combine():
    after = refined(card(), "warmer and lighter")
    assert luminance(after).mean() > luminance(card()).mean() + 10
    assert warmth(after) > warmth(card()) + 10
    assert refinements.parse("warmer and lighter").words() == ["lighter", "warmer"]
    assert refinements.parse("Dark teal colour, no more contrast").words() == ["dark teal"]


def test_same_image_and_instruction_give_the_same_bytes():
    first = refined(card(), "cooler, more contrast, pink")
    assert first == refined(card(), "cooler, more contrast, pink")
    assert first != refined(card(), "cooler, more contrast")


def test_the_format_is_kept():
    out = refined(card("JPEG"), "lighter")
    assert Image.open(io.BytesIO(out)).format == "JPEG"
    assert Image.open(io.BytesIO(refined(card(), "lighter"))).format == "PNG"


@pytest.mark.parametrize("instruction", ["make it pop", "", "not warmer"])
def test_an_instruction_with_no_known_word_is_refused_with_the_list(instruction):
    with pytest.raises(refinements.RefineError, match="lighter, darker, warmer, cooler, more contrast"):
        refinements.parse(instruction)


def test_opposites_are_refused():
    with pytest.raises(refinements.RefineError, match="both lighter and darker"):
        refinements.parse("lighter but also darker")


def test_the_local_provider_edits_and_fails_as_invalid_request():
    provider = LocalProvider(Settings())
    assert provider.edits
    request = ImageRequest("warmer", "local-card", "256x256", "medium", "png", image=card())
    assert warmth(provider.edit(request).data) > warmth(card())
    with pytest.raises(ProviderError) as caught:
        provider.edit(ImageRequest("sparkle", "local-card", "256x256", "medium", "png", image=card()))
    assert caught.value.kind == "invalid_request"
    assert "understands none of this instruction" in caught.value.message
