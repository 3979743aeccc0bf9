"""The automatic checks: what each one looks for in a candidate's pixels, and the verdict it gives.

Each check is a function of the decoded image (and what it needs to know besides) that returns a
`Verdict`: raised or not, a score, its evidence and one sentence saying why. They run offline on the
CPU: NumPy for `blank`, tesseract for the OCR of `text_garbled` (tesserocr in-process, on Debian's
English model) with pyspellchecker's English word list, nudenet's bundled ONNX model for `unsafe`, imagehash for `duplicate`. The heavy
parts load at their first use; `inspections` runs the checks and keeps their verdicts.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .config import CHECK_NAMES, Settings

if TYPE_CHECKING:
    from PIL import Image

NAMES = CHECK_NAMES
BLOCKING = ("blank", "text_garbled", "unsafe", "wrong_size")  # auto-approve never publishes these
WARNING = ("duplicate",)  # shown, and an unflagged candidate is preferred, but it never blocks
LABELS = {
    "blank": "Blank",
    "text_garbled": "Garbled lettering",
    "unsafe": "Unsafe",
    "duplicate": "Duplicate",
    "wrong_size": "Wrong size",
}
HASH_BITS = 256  # a 16x16 perceptual hash: 64 bits put two different local cards 4 bits apart
OCR_EDGE = 640  # lettering is read on a copy this large: large lettering stays legible, and reading is quick
# nudenet's classes that make an image unsafe for a catalogue card (faces, feet, covered parts do not)
EXPOSED = (
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)


class CheckUnavailable(Exception):  # noqa: N818 - a state of the machine, said in one sentence
    """A check's tool is missing here; the sentence says how to install it."""


@dataclass(frozen=True)
class Verdict:
    name: str
    flagged: bool
    sentence: str
    score: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def warm(names: tuple[str, ...]) -> None:
    """Load what these checks use (the calling thread's tesseract among them) before the first image."""
    if "text_garbled" in names:
        with _dictionary_lock:
            _dictionary()
        _reader()
    if "unsafe" in names:
        with _detector_lock:
            _detector()
    if names:
        import imagehash  # noqa: F401 - every checked image is hashed


# -- blank -----------------------------------------------------------------------------------------
def blank(image: Image.Image, settings: Settings) -> Verdict:
    """Flat or near-empty: no colour channel varies much, and neighbouring pixels hardly differ."""
    import numpy as np

    small = image.convert("RGB")
    small.thumbnail((256, 256))
    pixels = np.asarray(small, dtype=np.float32)  # per colour channel: a change of hue alone is content
    spread = float(pixels.std(axis=(0, 1)).max())
    steps = np.abs(np.diff(pixels, axis=1)).mean(axis=(0, 1)) + np.abs(np.diff(pixels, axis=0)).mean(axis=(0, 1))
    detail = float(steps.max() / 2)
    flagged = spread <= settings.check_blank_max_spread and detail <= settings.check_blank_max_detail
    evidence = {"spread": round(spread, 2), "detail": round(detail, 3)}
    if flagged:
        sentence = (
            f"The picture is almost flat: its colours vary by {spread:.1f} (at most "
            f"{settings.check_blank_max_spread:g} counts as flat) and its detail is {detail:.2f}."
        )
    else:
        sentence = f"The picture has content: its colours vary by {spread:.1f} and its detail is {detail:.2f}."
    return Verdict("blank", flagged, sentence, round(spread, 2), evidence)


# -- wrong_size ------------------------------------------------------------------------------------
def wrong_size(width: int, height: int, requested: str | None, settings: Settings) -> Verdict:
    """Other dimensions than the request asked for, or a side too small for a card."""
    smallest = settings.check_min_side_px
    evidence = {"width": width, "height": height, "requested": requested, "min_side": smallest}
    if requested and requested != "auto" and f"{width}x{height}" != requested:
        sentence = f"The image is {width}x{height} pixels, not the {requested} asked for."
        return Verdict("wrong_size", True, sentence, float(min(width, height)), evidence)
    if min(width, height) < smallest:
        sentence = f"The image is {width}x{height} pixels; a side under {smallest} px is too small for a card."
        return Verdict("wrong_size", True, sentence, float(min(width, height)), evidence)
    return Verdict("wrong_size", False, f"The image is {width}x{height} pixels.", float(min(width, height)), evidence)


# -- text_garbled ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Word:
    text: str
    confidence: float
    height: float  # as a share of the image's height


TESSDATA = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/share/tessdata")
_readers = threading.local()  # tesseract's API object is not thread-safe: one per check thread, kept loaded


def _tessdata() -> str:
    import os

    for folder in (os.environ.get("TESSDATA_PREFIX", ""), *TESSDATA):
        if folder and os.path.isfile(os.path.join(folder, "eng.traineddata")):
            return folder
    raise CheckUnavailable("Debian's tesseract-ocr is not installed (sudo apt-get install tesseract-ocr).")


def _reader() -> Any:
    """This thread's tesseract (tesserocr, in-process: loading the English model once, not per image)."""
    reader = getattr(_readers, "api", None)
    if reader is None:
        import os

        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one core per check thread, as the pool plans
        import tesserocr

        reader = _readers.api = tesserocr.PyTessBaseAPI(path=_tessdata(), lang="eng", psm=tesserocr.PSM.SPARSE_TEXT)
    return reader


def read_words(image: Image.Image) -> list[Word]:
    """The words tesseract reads, each with its confidence and height (sparse text: lettering anywhere)."""
    import tesserocr
    from PIL import Image

    grey = image.convert("L")
    scale = OCR_EDGE / max(grey.size)  # a small image is enlarged: tesseract reads letters some 30 px high
    grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.BILINEAR)
    reader = _reader()
    reader.SetImage(grey)
    reader.Recognize()
    words, level = [], tesserocr.RIL.WORD
    for word in tesserocr.iterate_level(reader.GetIterator(), level):
        try:
            text, box = (word.GetUTF8Text(level) or "").strip(), word.BoundingBox(level)
        except RuntimeError:  # "No text returned": the page has no word at all
            break
        if text and box:
            words.append(Word(text, float(word.Confidence(level)), (box[3] - box[1]) / grey.height))
    return words


@lru_cache(maxsize=1)
def _dictionary() -> Any:
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


_dictionary_lock = threading.Lock()


def known_words(text: str) -> set[str]:
    """A text's own words, lower-cased: the solution's title, description and tags count as correct."""
    return {w.lower() for w in re.findall(r"[^\W\d_]+", text)}


def text_garbled(image: Image.Image, own_words: set[str], settings: Settings) -> Verdict:
    """Large lettering with words that are neither English nor the solution's own."""
    try:
        words = read_words(image)
    except CheckUnavailable as exc:
        return Verdict("text_garbled", False, f"Not checked: {exc}", None, {"error": str(exc)})
    large = [
        w
        for w in words
        if w.confidence >= settings.check_text_min_confidence and w.height >= settings.check_text_min_height
    ]
    tokens = [t for w in large for t in re.findall(r"[^\W\d_]+", w.text)]
    candidates = [t for t in tokens if len(t) >= 3 and not (t.isupper() and len(t) <= 4)]  # skip short acronyms
    with _dictionary_lock:
        english = _dictionary()
        unknown = [t for t in candidates if t.lower() not in own_words and not english.known([t.lower()])]
    read = [w.text for w in large]
    evidence = {"words": read, "unknown": unknown}
    if len(unknown) > settings.check_text_max_unknown_words:
        shown = ", ".join(f'"{t}"' for t in unknown[:6])
        sentence = f"The lettering reads {shown}: not English words, nor the solution's own."
        return Verdict("text_garbled", True, sentence, float(len(unknown)), evidence)
    if not read:
        return Verdict("text_garbled", False, "No large lettering was found.", 0.0, evidence)
    shown = ", ".join(f'"{t}"' for t in read[:6])
    return Verdict("text_garbled", False, f"The large lettering ({shown}) is spelt correctly.", 0.0, evidence)


# -- unsafe ----------------------------------------------------------------------------------------
_detector_lock = threading.Lock()


@lru_cache(maxsize=1)
def _detector() -> Any:
    """nudenet's detector on its bundled model (no download), one thread per call: a pool runs several."""
    import os

    import nudenet
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    detector = nudenet.NudeDetector.__new__(nudenet.NudeDetector)
    path = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
    detector.onnx_session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    detector.input_width = detector.input_height = 320
    detector.input_name = detector.onnx_session.get_inputs()[0].name
    return detector


def detections(image: Image.Image) -> list[dict[str, Any]]:
    """What nudenet finds: each part's class, score and box in the image's pixels."""
    import numpy as np

    small = image.convert("RGBA")
    scale = max(small.size) / 640
    if scale > 1:
        small = small.resize((round(small.width / scale), round(small.height / scale)))
    with _detector_lock:
        detector = _detector()
    found = detector.detect(np.asarray(small))  # RGBA in: nudenet converts it to the model's order
    ratio = max(scale, 1)
    return [
        {"class": d["class"], "score": round(float(d["score"]), 3), "box": [round(v * ratio) for v in d["box"]]}
        for d in found
    ]


def unsafe(image: Image.Image, settings: Settings, found: list[dict[str, Any]] | None = None) -> Verdict:
    """Exposed nudity, as nudenet's detector scores it (`found`: its detections, when already made)."""
    found = detections(image) if found is None else found
    exposed = [d for d in found if d["class"] in EXPOSED]
    top = max((d["score"] for d in exposed), default=0.0)
    evidence = {"detections": exposed}
    if top >= settings.check_unsafe_min_score:
        parts = sorted({d["class"].replace("_EXPOSED", "").replace("_", " ").lower() for d in exposed})
        sentence = f"The nudity detector found exposed {', '.join(parts)} (score {top:.2f})."
        return Verdict("unsafe", True, sentence, top, evidence)
    return Verdict(
        "unsafe", False, f"The nudity detector found nothing unsafe (highest score {top:.2f}).", top, evidence
    )


# -- duplicate -------------------------------------------------------------------------------------
def perceptual_hash(image: Image.Image) -> str:
    """A 256-bit DCT hash in hex: near-copies (rescaled, recompressed, brightened) differ in a few bits."""
    import imagehash

    return str(imagehash.phash(image.convert("RGB"), hash_size=16))


@dataclass(frozen=True)
class Match:
    candidate_id: int
    solution_id: str
    title: str
    distance: int
    published: bool


def duplicate(match: Match | None, settings: Settings) -> Verdict:
    """Close to another solution's image: `match` is the nearest one (`inspections.HashIndex`)."""
    limit = settings.check_duplicate_max_distance
    if match is None or match.distance > limit:
        sentence = "It looks like no other solution's image."
        evidence = {} if match is None else {"nearest_distance": match.distance}
        return Verdict("duplicate", False, sentence, None if match is None else float(match.distance), evidence)
    whose = f"{match.title}'s card" if match.published else f"a candidate for {match.title}"
    sentence = f"It looks like {whose} ({match.distance} of {HASH_BITS} bits differ)."
    evidence = {
        "candidate_id": match.candidate_id,
        "solution_id": match.solution_id,
        "title": match.title,
        "distance": match.distance,
        "published": match.published,
    }
    return Verdict("duplicate", True, sentence, float(match.distance), evidence)
