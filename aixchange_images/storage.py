"""Files: verifying images, storing candidates and thumbnails, publishing atomically."""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, UnidentifiedImageError

from . import journal
from .config import ConfigError, Settings, UserError, check_size
from .models import PUBLIC_PREFIX, Candidate

MAX_PIXELS = 40_000_000  # well above 3840x2160, far below a decompression bomb
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
THUMB_EDGE = 480
EXTENSIONS = {"png": "png", "jpeg": "jpg"}
JPEG_MODES = ("RGB", "L")  # what browsers show reliably; CMYK JPEG is not among them
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)
# The marketplace's web container runs as another user (uid 1001): it must read published files and
# traverse our folders whatever umask we run under (aixchange-contract.md).
PUBLIC_FILE_MODE = 0o644
PUBLIC_FOLDER_MODE = 0o755
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The PNG chunks that make the picture (plus its colour profile, turned into sRGB before publishing);
# text, EXIF, XMP, animation and private chunks are never handed to the decoder, and nothing after IEND.
_PNG_PICTURE_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"iCCP", b"IEND"})
# Publishing re-encodes every image (batch auto-approve too): on a 1024x1024 noisy 1.9 MB PNG zlib level 1
# takes ~80 ms against ~370 ms for Pillow's default 6, and writes a smaller file; smooth images grow a little.
PNG_COMPRESS_LEVEL = 1
_SRGB = ImageCms.createProfile("sRGB")


class BadImage(UserError, ValueError):
    """Bytes that are not an acceptable image; the message is one sentence for a person."""


class StorageError(UserError, OSError):
    """The disk refused a write; the message says which folder."""


@dataclass(frozen=True)
class ImageInfo:
    image_format: str  # png | jpeg | webp
    width: int
    height: int
    bytes: int
    sha256: str
    decoded: Image.Image | None = field(default=None, compare=False, repr=False)  # reused for the thumbnail


def slugify(title: str) -> str:
    """The marketplace's rule: lower-case, runs outside [a-z0-9] become `_`, trimmed."""
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return slug or "solution"


# Who sent the bytes, for the sentence a person reads when they are refused: (subject, what to do).
SOURCES = {
    "image": ("The image", ""),
    "upload": ("The uploaded file", ": upload a PNG, JPEG or WebP file"),
    "reply": ("The provider's reply", ""),
}


def verify_image(
    data: bytes, *, max_bytes: int | None = None, source: str = "image", size: str | None = None
) -> ImageInfo:
    """Check that `data` really is a whole PNG, JPEG or WebP image of sane size.

    `source` (a key of SOURCES) names the bytes in the refusal: an admin's upload, a provider's reply.
    `size`, the size asked for (`WxH` or `auto`), is checked from the header, before any pixel is decoded.
    """
    subject, hint = SOURCES[source]
    if not data:
        raise BadImage(f"{subject} is empty{hint}.")
    if max_bytes is not None and len(data) > max_bytes:
        raise BadImage(f"{subject} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    readable = picture_only(data)
    try:
        with Image.open(io.BytesIO(readable)) as probe:
            fmt = (probe.format or "").lower()
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise BadImage(f"{subject} claims {width}x{height} pixels, more than is safe to open.")
            if fmt not in ("png", "jpeg", "webp"):
                kind = f"a {fmt.upper()} image" if fmt else "of an unknown kind"
                raise BadImage(f"{subject} is {kind}{hint or '; PNG, JPEG or WebP are accepted'}.")
            if size is not None and not _fits(width, height, size):
                asked = "a size an `auto` request may yield" if size == "auto" else f"the {size} asked for"
                raise BadImage(f"{subject} is {width}x{height} pixels, not {asked}.")
            probe.verify()
        full = Image.open(io.BytesIO(readable))
        full.load()  # verify() skips pixel data; a truncated file fails here
    except BadImage:
        raise
    except _DECODE_ERRORS:
        raise BadImage(f"{subject} is not an image we can read{hint}.") from None
    return ImageInfo(fmt, width, height, len(data), hashlib.sha256(data).hexdigest(), full)


def picture_only(data: bytes) -> bytes:
    """A PNG's picture chunks (see _PNG_PICTURE_CHUNKS) up to its IEND; other bytes as they are.

    Pillow reads every text chunk it meets, refusing a zTXt that inflates past 1 MB; this way a PNG
    carrying a huge or hostile text chunk, or data appended after its end, is still read for its
    pixels, and the decoder never parses what we are about to drop anyway. Chunk sizes are taken
    from the file and checked against its length; a cut-short file stays cut short (and is refused).
    """
    if not data.startswith(PNG_SIGNATURE):
        return data
    view, kept, pos = memoryview(data), [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, end = data[pos + 4 : pos + 8], pos + 12 + length  # length, type, data, CRC
        if kind in _PNG_PICTURE_CHUNKS or end > len(data):
            kept.append(view[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(kept)


def _fits(width: int, height: int, size: str) -> bool:
    """Whether an image is the size asked for; for `auto`, any size the API could have chosen."""
    if size != "auto":
        return f"{width}x{height}" == size
    try:
        check_size(f"{width}x{height}")
    except ConfigError:
        return False
    return True


def _write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write to a temporary name beside `path`, then rename: readers never see half a file.

    `mode` (for files others read) is set on the open file, so the file never exists with a
    umask-made mode; without it the umask decides (candidates are private to us).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"Could not write {path.parent}: {exc.strerror or exc}.") from None


def normalise_format(data: bytes, info: ImageInfo) -> tuple[bytes, ImageInfo]:
    """WebP (which the marketplace cannot serve) becomes PNG; a CMYK JPEG becomes an RGB one.

    PNG, and RGB or greyscale JPEG, pass through untouched.
    """
    if info.image_format == "png":
        return data, info
    if info.image_format == "jpeg":
        mode = (info.decoded or Image.open(io.BytesIO(data))).mode
        if mode in JPEG_MODES:
            return data, info
    target = "jpeg" if info.image_format == "jpeg" else "png"
    out = convert(data, target)
    return out, ImageInfo(target, info.width, info.height, len(out), hashlib.sha256(out).hexdigest(), info.decoded)


def make_thumbnail(data: bytes, decoded: Image.Image | None = None) -> bytes:
    """A small JPEG for galleries (full-size images are never sent to a gallery)."""
    img = decoded if decoded is not None else Image.open(io.BytesIO(data))
    if decoded is None:
        img.draft("RGB", (THUMB_EDGE, THUMB_EDGE))
    thumb = img.convert("RGB")
    # reducing_gap: a cheap box reduction first, then Lanczos on the small image (same look, ~4x faster)
    thumb.thumbnail((THUMB_EDGE, THUMB_EDGE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82)
    return out.getvalue()


def store_candidate(settings: Settings, solution_id: str, data: bytes, info: ImageInfo) -> tuple[str, str]:
    """Store a verified image and its thumbnail; returns their paths relative to the data folder."""
    safe_id = slugify(solution_id)
    stem = f"{info.sha256[:16]}-{secrets.token_hex(3)}"
    rel_file = Path("candidates") / safe_id / f"{stem}.{EXTENSIONS[info.image_format]}"
    rel_thumb = Path("thumbnails") / safe_id / f"{stem}.jpg"
    _write_atomically(settings.data_dir / rel_file, data)
    _write_atomically(settings.data_dir / rel_thumb, make_thumbnail(data, info.decoded))
    return rel_file.as_posix(), rel_thumb.as_posix()


def keep_candidate(settings: Settings, solution_id: str, data: bytes, info: ImageInfo, **fields: Any) -> Candidate:
    """Store a verified image and its thumbnail, and describe them as a new (unsaved) candidate."""
    file_path, thumb_path = store_candidate(settings, solution_id, data, info)
    return Candidate(
        solution_id=solution_id,
        file_path=file_path,
        thumb_path=thumb_path,
        image_format=info.image_format,
        width=info.width,
        height=info.height,
        bytes=info.bytes,
        sha256=info.sha256,
        **fields,
    )


MIN_SIDE = 16  # a reply narrower than this, or stretched past 1:8, is no picture at all


def keep_reply(settings: Settings, solution_id: str, data: bytes, *, size: str, **fields: Any) -> Candidate:
    """A provider's reply, verified (an image, of a shape a card can show), made servable, stored with its
    thumbnail and described as a new (unsaved) candidate; BadImage or StorageError when it cannot be."""
    data, info = servable_reply(data, size=size)
    return keep_candidate(settings, solution_id, data, info, **fields)


def servable_reply(data: bytes, *, size: str) -> tuple[bytes, ImageInfo]:
    """A provider's reply verified and made servable (BadImage when it cannot be): the bytes to store,
    the same object when they need no conversion, and their info (`decoded`: the reply as decoded)."""
    info = verify_image(data, source="reply")
    if min(info.width, info.height) < MIN_SIDE or max(info.width, info.height) > 8 * min(info.width, info.height):
        asked = "" if size == "auto" else f" (asked for {size})"
        raise BadImage(f"The provider's reply is {info.width}x{info.height} pixels{asked}: no card can show that.")
    return normalise_format(data, info)  # another size than asked is kept: the wrong_size check flags it


def read_data_file(settings: Settings, rel_path: str) -> bytes:
    path = (settings.data_dir / rel_path).resolve()
    if settings.data_dir.resolve() not in path.parents:
        raise StorageError(f"{rel_path} is outside the data folder.")
    return path.read_bytes()


def convert(data: bytes, image_format: str) -> bytes:
    """Re-encode to png or jpeg for publishing, from the decoded pixels alone.

    Any colour mode in, RGB (or RGBA for PNG) out, in sRGB when the image carried a colour profile.
    Nothing but the pixels is written: no text chunk, EXIF, XMP, comment or ICC profile, and
    nothing appended after the image's end.
    """
    out = io.BytesIO()
    try:
        with Image.open(io.BytesIO(picture_only(data))) as img:
            pixels = _browser_pixels(_in_srgb(img), image_format)
            pixels.info = {}  # Pillow's savers copy some of it (a PNG's ICC profile, a JPEG's comment)
            if image_format == "jpeg":
                pixels.save(out, format="JPEG", quality=92, optimize=True)
            else:
                pixels.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    except _DECODE_ERRORS:
        kind = "JPEG" if image_format == "jpeg" else "PNG"
        raise BadImage(f"The image could not be converted to {kind}: it is damaged or cut short.") from None
    return out.getvalue()


def _in_srgb(img: Image.Image) -> Image.Image:
    """The pixels moved from the image's colour profile into sRGB (what browsers assume without one).

    An image without a profile, in a mode littlecms does not take, or whose profile littlecms
    cannot read, is returned as it is: its profile is then simply not published.
    """
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "L", "CMYK"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(img, source, _SRGB, outputMode="RGBA" if img.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img


def _browser_pixels(img: Image.Image, image_format: str) -> Image.Image:
    """RGB for JPEG (transparency flattened onto white), RGB or RGBA for PNG."""
    if img.mode.startswith("I"):  # 16-bit greyscale: scale to 8 bits instead of clipping to white
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    transparent = img.has_transparency_data
    if image_format == "png":
        return img.convert("RGBA" if transparent else "RGB")
    if not transparent:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def publish_file(
    settings: Settings, title: str, data: bytes, image_format: str, *, intent: journal.Intent
) -> tuple[str, str]:
    """Write `data` into the publish folder under a new AIXchange name; returns (file name, imageUrl).

    The bytes go to `.incoming/` (outside `solutions/`, same disk) and are hard-linked into place,
    which fails rather than overwrite: the marketplace caches a published URL for a year. Each
    name is claimed in the publish journal first (`intent`, bound to the caller's transaction by
    `journal.bind`), so a process killed before its caller commits leaves a record, not an orphan.
    """
    publish_dir, incoming = settings.publish_dir, journal.incoming_dir(settings)
    try:
        make_public_folder(publish_dir)
        make_public_folder(incoming)
    except OSError as exc:
        raise StorageError(f"Could not create {publish_dir}: {exc.strerror or exc}.") from None
    _sweep(incoming)
    tmp = incoming / f"{secrets.token_hex(8)}.tmp"
    _write_atomically(tmp, data, PUBLIC_FILE_MODE)  # the link shares this inode, so its mode too
    intent.sha256, intent.bytes = hashlib.sha256(data).hexdigest(), len(data)
    try:
        name = _link_under_a_new_name(settings, tmp, slugify(title), EXTENSIONS[image_format], intent)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"Could not publish into {publish_dir}: {exc.strerror or exc}.") from None
    finally:
        tmp.unlink(missing_ok=True)
    if settings.test_pause_after_link:
        _pause_for_test(settings.test_pause_after_link, name)
    return name, PUBLIC_PREFIX + name


def _link_under_a_new_name(settings: Settings, tmp: Path, slug: str, ext: str, intent: journal.Intent) -> str:
    """`<slug>-<unix ms>.<ext>`, a millisecond later while the name is taken by a file or a journal."""
    millis = int(time.time() * 1000)
    for offset in range(1000):
        name = f"{slug}-{millis + offset}.{ext}"
        if not journal.claim(settings, intent, name):
            continue  # another of our publishers is publishing under this name right now
        try:
            os.link(tmp, settings.publish_dir / name)
        except BaseException as exc:
            journal.release(settings, intent)  # nothing of ours was linked under this name
            if isinstance(exc, FileExistsError):
                continue  # a file of that name exists (ours, or the marketplace's own)
            raise
        journal.sync_folder(settings.publish_dir)  # a committed imageUrl must survive a power cut too
        return name
    raise StorageError(f"Could not find a free file name in {settings.publish_dir}.")


def _pause_for_test(fifo: Path, name: str) -> None:
    """Tests only: tell the test (through its FIFO) which file was linked, then wait to be killed.

    Both opens block until the test opens the other end, so the test knows exactly where we are.
    """
    with open(fifo, "wb") as told:
        told.write(f"{name}\n".encode())
    with open(fifo, "rb") as held:  # no writer comes: the test kills us here (or opens it to let go)
        held.read()


def make_public_folder(path: Path) -> None:
    """Create `path` and its missing parents as 0755 whatever the umask.

    Only folders made here are changed: one that exists keeps its mode (an operator may share it
    group-writable with the marketplace on purpose).
    """
    for folder in [*reversed(path.parents), path]:
        if folder.is_dir():
            continue
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # another process made it meanwhile, and set its mode
        os.chmod(folder, PUBLIC_FOLDER_MODE)


def _sweep(incoming: Path, older_than: float = 3600) -> None:
    """Remove temporary files a killed process left in `.incoming/` (never seen by the marketplace)."""
    cutoff = time.time() - older_than
    for leftover in incoming.glob("*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            pass  # another process took care of it


def published_path(settings: Settings, image_url: str | None) -> Path | None:
    """The file behind one of our imageUrls, or None for any other URL."""
    if not image_url or not image_url.startswith(PUBLIC_PREFIX):
        return None
    name = image_url.removeprefix(PUBLIC_PREFIX)
    if "/" in name or name.startswith("."):
        return None
    return settings.publish_dir / name
