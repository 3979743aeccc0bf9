"""A page that shows hostile user text through ui.literal in every Markdown element the pages use
(test_browser_readable drives it in Chromium)."""

import streamlit as st

import ui

SAMPLES = [
    "Evil [click me](http://x/phish) ![px](http://x/track.png)",
    "Visit https://x.example/phish, www.x.example or mail a@x.example",
    "<img src=http://x/track.png> <b>bold</b> &amp; :smile: :material/home: :red[red] $1 and $2",
    "# heading",
    "1. *em* _em_ `code` ~~strike~~",
]

for number, sample in enumerate(SAMPLES):
    st.markdown(ui.md("markdown {}: {}", number, sample))
    st.caption(ui.md("caption {}: {}", number, sample))
    st.error(ui.md("error {}: {}", number, sample))
