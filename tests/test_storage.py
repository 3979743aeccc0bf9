"""Converting images for publishing: any colour mode in, what browsers show out, one sentence on failure."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from aixchange_images import storage


def encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG as print shops and stock sites send them."""
    return encoded(Image.new("CMYK", (40, 30), (0, 200, 255, 10)), "JPEG")


def palette_png() -> bytes:
    return encoded(Image.new("RGB", (40, 30), (30, 90, 200)).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def transparent_grey_png() -> bytes:
    image = Image.new("LA", (40, 30), (120, 255))
    image.paste((120, 0), (0, 0, 20, 30))  # the left half fully transparent
    return encoded(image, "PNG")


def sixteen_bit_png() -> bytes:
    return encoded(Image.new("I;16", (40, 30), 40000), "PNG")  # about 61% grey


SOURCES = {"cmyk_jpeg": cmyk_jpeg, "palette_png": palette_png, "la_png": transparent_grey_png, "i16": sixteen_bit_png}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("target", ["png", "jpeg"])
def test_convert_takes_any_colour_mode_to_rgb(source, target):
    data = storage.convert(SOURCES[source](), target)

    with Image.open(io.BytesIO(data)) as image:
        assert image.format.lower() == target and image.size == (40, 30)
        assert image.mode == ("RGBA" if target == "png" and source == "la_png" else "RGB")


def test_a_cmyk_jpeg_keeps_its_colours():
    with Image.open(io.BytesIO(storage.convert(cmyk_jpeg(), "png"))) as image:
        red, green, blue = image.getpixel((20, 15))
    assert red > 200 and 20 < green < 90 and blue < 40


def test_transparency_becomes_white_in_a_jpeg():
    with Image.open(io.BytesIO(storage.convert(transparent_grey_png(), "jpeg"))) as image:
        assert min(image.getpixel((5, 15))) > 245  # the transparent half
        assert max(image.getpixel((35, 15))) < 135  # the opaque grey half


def test_sixteen_bit_grey_is_scaled_not_clipped_to_white():
    with Image.open(io.BytesIO(storage.convert(sixteen_bit_png(), "jpeg"))) as image:
        assert 145 < image.getpixel((20, 15))[0] < 165  # 40000 / 256 = 156


@pytest.mark.parametrize("data", [b"", b"not an image at all", cmyk_jpeg()[:200]])
@pytest.mark.parametrize("target", ["png", "jpeg"])
def test_convert_refuses_bytes_it_cannot_decode_with_one_sentence(data, target):
    with pytest.raises(storage.BadImage) as caught:
        storage.convert(data, target)

    message = str(caught.value)
    assert message.startswith("The image could not be converted to ") and message.endswith(".")
    assert "\n" not in message


def test_normalise_format_turns_a_cmyk_jpeg_into_an_rgb_jpeg():
    data = cmyk_jpeg()
    info = storage.verify_image(data)

    out, out_info = storage.normalise_format(data, info)

    with Image.open(io.BytesIO(out)) as image:
        assert (image.format, image.mode) == ("JPEG", "RGB")
    assert (out_info.image_format, out_info.width, out_info.height, out_info.bytes) == ("jpeg", 40, 30, len(out))


def test_normalise_format_passes_an_rgb_jpeg_through_untouched():
    data = encoded(Image.new("RGB", (40, 30), (1, 2, 3)), "JPEG")
    info = storage.verify_image(data)

    assert storage.normalise_format(data, info) == (data, info)


def detailed_card(width: int, height: int) -> Image.Image:
    """Fine stripes and a few large shapes: what a shortcut in downscaling would show on."""
    from PIL import ImageDraw

    image = Image.new("RGB", (width, height), (240, 236, 228))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 6):
        draw.line((x, 0, x, height // 3), fill=(20, 40, 90), width=2)
    draw.ellipse((width // 8, height // 2, width // 2, height - 20), fill=(200, 60, 40))
    draw.rectangle((width * 5 // 8, height // 2, width - 30, height - 40), fill=(30, 150, 90))
    return image


@pytest.mark.parametrize(
    ("size", "expected"), [((1024, 1024), (480, 480)), ((1536, 1024), (480, 320)), ((300, 200), (300, 200))]
)
def test_a_thumbnail_fits_the_gallery_edge_and_never_grows(size, expected):
    thumb = Image.open(io.BytesIO(storage.make_thumbnail(b"", detailed_card(*size))))
    assert thumb.format == "JPEG" and thumb.size == expected


@pytest.mark.parametrize("size", [(1024, 1024), (1536, 1024), (1024, 1536), (2048, 2048)])
def test_a_thumbnail_looks_like_a_full_lanczos_one(size):
    """However the thumbnail is made quicker, it must not alias: against Lanczos on the full image it may
    differ by little more than its JPEG compression alone, the fine stripes included. (Reducing by a whole
    factor first, with `reducing_gap=1.0`, saves 8 ms a 1024x1024 but fails here: moire on the stripes.)"""
    import numpy as np

    card = detailed_card(*size)
    quick = Image.open(io.BytesIO(storage.make_thumbnail(b"", card))).convert("RGB")
    reference = card.resize(quick.size, Image.Resampling.LANCZOS)
    compressed = Image.open(io.BytesIO(encoded(reference, "JPEG"))).convert("RGB")

    def error(image: Image.Image) -> tuple[float, float]:
        difference = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(reference, dtype=np.int16))
        return float(difference.mean()), float(difference[: quick.height // 3].mean())  # all; the stripes

    (whole, stripes), (jpeg_whole, jpeg_stripes) = error(quick), error(compressed)
    assert whole <= 1.5 * jpeg_whole + 0.5 and stripes <= 1.5 * jpeg_stripes + 0.5, (whole, stripes)
