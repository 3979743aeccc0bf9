"""The dashboard's server: Streamlit (`st.App`) plus the two routes for its HttpOnly cookies.

    streamlit run dashboard/server.py        (what `make run` and `python -m aixchange_images up` start)

The routes are in dashboard/cookies.py; the script Streamlit runs for each session is dashboard/main.py
(which says why it is not app.py itself). As it starts, the server warms the pages' heavy modules in the
background (dashboard/warmup.py).
"""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the library, and this folder as the `dashboard` package
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import warmup  # noqa: E402
from dashboard.cookies import ROUTES  # noqa: E402


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    warmup.start()  # a daemon thread: the server listens meanwhile
    yield


app = st.App(Path(__file__).with_name("main.py"), routes=ROUTES, lifespan=lifespan)
