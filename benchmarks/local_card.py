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
from aixchange_images.providers.base import ImageRequest  # noqa: E402
from aixchange_images.providers.local import LocalProvider  # noqa: E402

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


def timed(provider: LocalProvider, size: str, style: str, title: str, repeat: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds of `repeat` draws, after one warm-up (fonts load once per process).

    Each draw is another variant of another title (a batch draws different cards); CPU time is the
    steadier figure on a machine shared with other work.
    """
    provider.generate(request(size, style, title, 0))
    cpu, wall = [], []
    for n in range(1, repeat + 1):
        one = request(size, style, f"{title} {n}", n)
        started, started_cpu = time.perf_counter(), time.process_time()
        provider.generate(one)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def request(size: str, style: str, title: str, variant: int) -> ImageRequest:
    prompt = DEFAULT_TEMPLATE.format(**SUBJECT) + (f"\n{style}" if style else "")
    subject = SUBJECT | {"title": title}
    return ImageRequest(prompt, "local-card", size, "medium", "png", variant=variant, subject=subject)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    provider = LocalProvider(load_settings())
    print(f"local provider, {args.size}, PNG, median of {args.repeat} (target < 150 ms at 1024x1024)")
    rows = [(f"style {label}", style, SUBJECT["title"]) for label, style in STYLES.items()]
    rows += [(f"title {label}", "", title) for label, title in TITLES.items()]
    for label, style, title in rows:
        cpu, wall = timed(provider, args.size, style, title, args.repeat)
        print(f"  {label:<38} {cpu:6.1f} ms CPU  {wall:6.1f} ms wall")


if __name__ == "__main__":
    main()
