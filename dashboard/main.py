"""Streamlit's main script: it runs app.py, the router, on every run.

It lives here, not beside app.py, on purpose. A Streamlit server whose main script has a `pages/`
folder beside it starts in Streamlit's old multipage mode: its first runs serve every file in
`pages/` at its own URL (no router, so no sign-in gate) until some run happens to call
`st.navigation`. This folder has no `pages/`, so that mode never starts and every run routes
through app.py. Page files are named by absolute path for the same reason (ui.page_path).
"""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # app.py and pages/ import ui, gate and the library from the repository root
    sys.path.insert(0, str(ROOT))

runpy.run_path(str(ROOT / "app.py"), run_name="aixchange_dashboard")
