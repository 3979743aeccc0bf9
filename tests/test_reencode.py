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
from PIL import Image, ImageChops, ImageStat
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


def s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)


def red_blue_swapped_profile() -> bytes:
    """An ICC v2 RGB display profile whose red primary is sRGB's blue and whose blue is sRGB's red."""
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)  # D50
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2
    tags = [(b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(*blue)), (b"gXYZ", xyz(*green))]
    tags += [(b"bXYZ", xyz(*red)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    table, body, start = b"", b"", 128 + 4 + 12 * len(tags)
    for signature, data in tags:
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data
    header = struct.pack(">I", start + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
    header += b"\0" * 12 + b"acsp" + b"\0" * 28 + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48
    return header + struct.pack(">I", len(tags)) + table + body


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_colour_profile_is_applied_to_the_pixels_and_not_published(fmt):
    data = encoded(Image.new("RGB", (WIDTH, HEIGHT), (200, 30, 30)), fmt, icc_profile=red_blue_swapped_profile())

    published = storage.convert(data, fmt)

    with Image.open(io.BytesIO(published)) as image:
        assert "icc_profile" not in image.info
        red, green, blue = image.convert("RGB").getpixel((10, 10))
    assert blue > 180 and red < 50 and green < 50  # what the profile said the pixels look like


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
