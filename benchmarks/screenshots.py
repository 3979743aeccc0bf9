"""Screenshot every dashboard page in headless Chromium, signed in as an admin, with demo data.

.venv/bin/python benchmarks/screenshots.py [OUT_DIR]   (default: screenshots/; needs Debian's chromium)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

PAGES = ["overview", "solutions", "generate", "jobs", "review", "metrics", "prompt_studio", "marketplace", "settings"]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="aix-shots-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{work}/db.sqlite",
        "AIXCHANGE_DATA_DIR": str(work / "data"),
        "EXTERNAL_IMAGES_PATH": str(work / "ext"),
    }
    cli = [sys.executable, "-m", "aixchange_images"]
    subprocess.run(
        [*cli, "users", "add", "admin", "--role", "admin"],
        input="screenshot-pass\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run([*cli, "demo-data"], env=env, check=True, capture_output=True)
    subprocess.run([*cli, "generate", "--missing", "--candidates", "3"], env=env, capture_output=True)
    with streamlit_server(work, env) as url:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            page.get_by_role("textbox", name="Username").fill("admin")
            page.get_by_role("textbox", name="Password").fill("screenshot-pass")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Overview").wait_for()
            for name in PAGES:
                title = name.replace("_", " ").title()
                page.get_by_role("link", name=title).first.click()
                page.get_by_role("heading", name=title).first.wait_for()
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(1500)  # let charts and images paint before the picture
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                print(out / f"{name}.png")
            browser.close()


if __name__ == "__main__":
    main()
