"""How long the local provider takes to draw one card: the offline experience's own latency.

    .venv/bin/python benchmarks/local_card.py [--size 1024x1024] [--repeat 5]

Draws each prompt below through `LocalProvider.generate` (drawing and PNG encoding, as the pipeline
calls it) and prints the median time per card. Target: well under 150 ms for 1024x1024.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aixchange_images.config import load_settings  # noqa: E402
from aixchange_images.prompts import DEFAULT_TEMPLATE  # noqa: E402
from aixchange_images.providers import ImageRequest, LocalProvider  # noqa: E402

SUBJECT = {
    "title": "Smart Document Summarizer",
    "description": "summarises long documents and answers questions about them.",
    "category": "Natural Language Processing",
    "tags": ["nlp", "summaries"],
}
STYLES = {
    "default template": "",
    "light, teal and coral, flat": "Light background, teal and coral accents, flat design.",
    "dark, neon, gradient": "Dark background, neon glow, bold gradients.",
    "isometric 3d": "Isometric 3D illustration with geometric shapes.",
    "minimal line art, pastel": "Minimal line art in pastel colours, plenty of negative space.",
    "monochrome navy, grain": "Monochrome navy palette with a subtle grain texture.",
}
TITLES = {
    "Latin": SUBJECT["title"],
    "CJK + Latin": "Análisis de Señales – 信号 Studio",
    "Arabic + emoji": "نموذج لغوي ذكي 🚀",
    "Devanagari": "हिन्दी भाषा सहायक",
}


def timed(provider: LocalProvider, request: ImageRequest, repeat: int) -> float:
    """Median milliseconds of `repeat` draws, after one warm-up (fonts load once per process)."""
    provider.generate(request)
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        provider.generate(request)
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def request(size: str, style: str, title: str) -> ImageRequest:
    prompt = DEFAULT_TEMPLATE.format(**SUBJECT) + (f"\n{style}" if style else "")
    return ImageRequest(prompt, "local-card", size, "medium", "png", subject=SUBJECT | {"title": title})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    provider = LocalProvider(load_settings())
    print(f"local provider, {args.size}, PNG, median of {args.repeat} (target < 150 ms at 1024x1024)")
    for label, style in STYLES.items():
        ms = timed(provider, request(args.size, style, SUBJECT["title"]), args.repeat)
        print(f"  style {label:<32} {ms:6.1f} ms")
    for label, title in TITLES.items():
        ms = timed(provider, request(args.size, "", title), args.repeat)
        print(f"  title {label:<32} {ms:6.1f} ms")


if __name__ == "__main__":
    main()
