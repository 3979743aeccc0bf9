"""Warm the dashboard's server once, in the background, as soon as it starts (dashboard/server.py).

The pages import pandas (~0.7 s on this 2-core machine), the library's modules and plotly's figure
classes on first use; without this, the first user to open a chart or a table pays for them. It runs
in a daemon thread, so the server listens at once, and each step is best-effort: a failure here only
means some page pays for that step itself, as before.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time

# What the pages import (pages/*.py, ui.py, gate.py), heaviest first.
MODULES = (
    "pandas",
    "PIL.Image",
    "aixchange_images.auth",
    "aixchange_images.metrics",
    "aixchange_images.spending",
    "aixchange_images.charts",
    "aixchange_images.batch",
    "aixchange_images.trials",
    "aixchange_images.templates",
    "aixchange_images.catalogue",
    "aixchange_images.review",
    "aixchange_images.queue",
    "aixchange_images.bulk",
    "aixchange_images.bulkfiles",
    "aixchange_images.records",
    "aixchange_images.history",
    "aixchange_images.marketplace",
    "aixchange_images.pull",
    "aixchange_images.deliveries",
    "aixchange_images.style_cues",
    "aixchange_images.auditlog",
    "aixchange_images.demo",
)


def start() -> threading.Thread:
    thread = threading.Thread(target=warm, name="warm-up", daemon=True)
    thread.start()
    return thread


def warm() -> None:
    started = time.perf_counter()
    for step in (_import_modules, _build_a_figure, _open_the_database):
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - warming is an optimisation, never a reason to fail
            print(
                f"  warm-up: {step.__name__} failed ({type(exc).__name__}); pages do it on first use", file=sys.stderr
            )
    print(f"  warm-up: done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def _import_modules() -> None:
    for name in MODULES:
        importlib.import_module(name)


def _build_a_figure() -> None:
    """One figure of each kind the pages draw, serialised as st.plotly_chart does: plotly loads its
    trace, layout and axis classes on first use."""
    import pandas as pd
    import plotly.io

    from aixchange_images import charts

    daily = pd.DataFrame({"day": ["2026-01-01"], "attempts": [1], "succeeded": [1], "success_rate": [1.0]})
    spend = pd.DataFrame({"day": ["2026-01-01"], "model": ["m"], "spend_usd": [1.0]})
    for figure in (charts.attempts_and_success(daily), charts.spend_per_day(spend, "model", 1.0)):
        plotly.io.to_json(figure, validate=False)


def _open_the_database() -> None:
    """Build the engine (and check its migrations) as ui.engine() will: the library keeps one per URL."""
    from aixchange_images.config import load_settings
    from aixchange_images.engines import get_engine

    get_engine(load_settings())
