"""Publishing re-encodes every image: the marketplace serves its pixels alone, never what rode along.

Each hostile image is built here (Pillow, zlib, struct, zipfile), published through the real paths
(a provider's reply approved, an admin's upload), and the published file's bytes are read back.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat
from sqlmodel import Session

from aixchange_images import review, storage
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import Publication

WIDTH, HEIGHT = 96, 64
SCRIPT = b"<script>alert(1)</script>"
FIFTEEN_MB = 15 * 1024 * 1024


def picture() -> Image.Image:
    """A noisy picture, so that a re-encoding that changed a pixel would show."""
    noise = Image.effect_noise((WIDTH, HEIGHT), 60).convert("RGB")
    return Image.blend(Image.linear_gradient("L").resize((WIDTH, HEIGHT)).convert("RGB"), noise, 0.5)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_chunk(png: bytes, extra: bytes) -> bytes:
    """`extra` right after IHDR (signature 8 bytes, IHDR 25), before the pixels."""
    return png[:33] + extra + png[33:]


def a_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", b"<html>" + SCRIPT + b"</html>")
    return out.getvalue()


def gps_jpeg(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Spy Camera"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    return encoded(image, "JPEG", quality=95, exif=exif, comment=SCRIPT)


def hostile(name: str) -> tuple[bytes, Image.Image]:
    """The hostile file and the picture it carries."""
    image = picture()
    png = encoded(image, "PNG")
    files = {
        "html_after_iend": lambda: png + b"<html><body>" + SCRIPT + b"</body></html>",
        "zip_after_iend": lambda: png + a_zip(),
        "script_in_text": lambda: with_chunk(png, chunk(b"tEXt", b"Comment\0" + SCRIPT)),
        "script_in_itxt": lambda: with_chunk(png, chunk(b"iTXt", b"Description\0\0\0en\0\0" + SCRIPT)),
        "fifteen_mb_text": lambda: with_chunk(png, chunk(b"tEXt", b"Comment\0" + b"A" * FIFTEEN_MB)),
        # Pillow refuses a zTXt inflating past 1 MB: the image is still published, for its pixels
        "fifteen_mb_ztxt": lambda: with_chunk(png, chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * FIFTEEN_MB))),
        "gps_jpeg": lambda: gps_jpeg(image),
    }
    data = files[name]()
    if name == "gps_jpeg":
        with Image.open(io.BytesIO(data)) as original:  # what a viewer of the original sees
            assert original.getexif().get_ifd(0x8825)
            image = original.convert("RGB")
    return data, image


HOSTILE = ["html_after_iend", "zip_after_iend", "script_in_text", "script_in_itxt", "fifteen_mb_text"]
HOSTILE += ["fifteen_mb_ztxt", "gps_jpeg"]


def publish_format(name: str) -> str:
    return "jpeg" if name.endswith("jpeg") else "png"


@pytest.fixture
def settings_for(monkeypatch):
    def make(fmt: str):
        monkeypatch.setenv("DALLE_IMAGE_FORMAT", fmt)
        return load_settings()

    return make


def approved_reply(engine, settings, solution_id: str, data: bytes) -> Publication:
    """A provider's reply kept as a candidate (as the pipeline keeps one), then approved."""
    candidate = storage.keep_reply(
        settings, solution_id, data, size=f"{WIDTH}x{HEIGHT}", model="stand-in", provider="local"
    )
    with Session(engine) as session:
        session.add(candidate)
        session.commit()
        candidate_id = candidate.id
    with session_scope(engine, write=True) as session:
        publication = review.approve(session=session, settings=settings, candidate_id=candidate_id, actor=CLI_ACTOR)
        session.commit()
    return publication


def uploaded(engine, settings, solution_id: str, data: bytes) -> Publication:
    with session_scope(engine, write=True) as session:
        publication = review.upload(
            session=session, settings=settings, solution_id=solution_id, data=data, actor=CLI_ACTOR
        )
        session.commit()
    return publication


PATHS = {"approved_reply": approved_reply, "upload": uploaded}


def same_picture(published: bytes, original: bytes) -> bool:
    """Whether a published file shows exactly the original's pixels, and carries nothing else (PNG)."""
    if published.startswith(storage.PNG_SIGNATURE) and set(png_chunks(published)) != {b"IHDR", b"IDAT", b"IEND"}:
        return False
    with Image.open(io.BytesIO(published)) as mine, Image.open(io.BytesIO(original)) as theirs:
        return ImageChops.difference(mine.convert("RGBA"), theirs.convert("RGBA")).getbbox() is None


def png_chunks(data: bytes) -> list[bytes]:
    """The chunk types, checking the file ends right after IEND."""
    assert data.startswith(storage.PNG_SIGNATURE)
    kinds, pos = [], len(storage.PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    assert pos == len(data) and kinds[-1] == b"IEND"
    return kinds


def jpeg_markers(data: bytes) -> list[int]:
    """The markers before the scan, checking the file ends right after its EOI."""
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    markers, pos = [], 2
    while data[pos + 1] != 0xDA:  # up to the start of scan; then entropy-coded data to EOI
        markers.append(data[pos + 1])
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return markers


def assert_pixels_only(data: bytes, fmt: str, original: Image.Image) -> None:
    for marker in (SCRIPT[:7], b"<html", b"PK\x03\x04", b"Exif\0\0", b"Spy Camera", b"AAAAAAAA"):
        assert marker not in data
    assert len(data) < WIDTH * HEIGHT * 3 + 4096  # no bigger than the raw pixels and a header
    with Image.open(io.BytesIO(data)) as published:
        assert (published.format, published.size) == (fmt.upper(), (WIDTH, HEIGHT))
        assert not published.getexif() and "exif" not in published.info and "icc_profile" not in published.info
        assert "comment" not in published.info and "xmp" not in published.info
        pixels = published.convert("RGB")
    if fmt == "png":
        assert set(png_chunks(data)) == {b"IHDR", b"IDAT", b"IEND"}
        assert published.text == {}
        assert ImageChops.difference(pixels, original).getbbox() is None
    else:
        assert set(jpeg_markers(data)) <= {0xE0, 0xDB, 0xC0, 0xC4}  # JFIF, tables, frame: no APPn besides
        assert max(ImageStat.Stat(ImageChops.difference(pixels, original)).mean) < 3  # one more JPEG pass


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_image_is_published_as_its_pixels_alone(engine, settings_for, make_solutions, path, name):
    data, original = hostile(name)
    fmt = publish_format(name)
    settings = settings_for(fmt)
    (sid,) = make_solutions(1)

    publication = PATHS[path](engine, settings, sid, data)

    published = (settings.publish_dir / publication.file_name).read_bytes()
    assert publication.file_name.endswith(storage.EXTENSIONS[fmt]) and publication.bytes == len(published)
    assert_pixels_only(published, fmt, original)


@pytest.mark.parametrize("name", ["gps_jpeg", "script_in_text"])
def test_a_hostile_image_published_in_the_other_format_carries_nothing_either(
    engine, settings_for, make_solutions, name
):
    data, original = hostile(name)
    fmt = "png" if publish_format(name) == "jpeg" else "jpeg"
    settings = settings_for(fmt)
    (sid,) = make_solutions(1)

    publication = approved_reply(engine, settings, sid, data)

    assert_pixels_only((settings.publish_dir / publication.file_name).read_bytes(), fmt, original)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_colour_profile_is_applied_to_the_pixels_and_not_published(fmt):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(picture(), "PNG" if fmt == "png" else "JPEG", quality=95, icc_profile=srgb)
    with Image.open(io.BytesIO(data)) as image:
        original = image.convert("RGB")

    published = storage.convert(data, fmt)

    with Image.open(io.BytesIO(published)) as image:
        assert "icc_profile" not in image.info
        difference = ImageChops.difference(image.convert("RGB"), original)
    assert max(ImageStat.Stat(difference).mean) < 3  # sRGB to sRGB: the same colours, give or take rounding


def test_a_png_cut_short_is_still_refused_with_one_sentence():
    data, _ = hostile("script_in_text")

    with pytest.raises(storage.BadImage, match=r"^The image could not be converted to PNG: .*\.$"):
        storage.convert(data[: len(data) - 200], "png")


def test_picture_only_keeps_the_picture_chunks_up_to_iend():
    data, _ = hostile("zip_after_iend")
    data = with_chunk(data, chunk(b"tEXt", b"Comment\0" + SCRIPT))

    kept = storage.picture_only(data)

    assert png_chunks(kept) == [b"IHDR", b"IDAT", b"IEND"]
    assert storage.picture_only(b"\xff\xd8 not a png") == b"\xff\xd8 not a png"
