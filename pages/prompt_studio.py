"""Prompt Studio: the production template and a live preview for any solution."""

import streamlit as st

import ui
from aixchange_images import catalogue, prompts
from aixchange_images.models import Solution

actor = ui.guard("edit_templates")
st.title("Prompt Studio")

with ui.db() as session:
    template = prompts.resolve_template(session=session)
    sample = catalogue.list_solutions(session=session, limit=50)
st.caption(f"Production template: **{template.ref}**. Variables: "
           + ", ".join(f"`{{{v}}}`" for v in prompts.VARIABLES))
st.code(template.text, language=None, wrap_lines=True)

if not sample:
    st.info("Import solutions to preview the prompt for them.", icon=":material/inbox:")
    st.stop()
chosen = st.selectbox("Preview for", sample, format_func=lambda s: s.title)
with ui.db() as session:
    solution = session.get(Solution, chosen.id)
    try:
        _, text = prompts.render(session=session, solution=solution)
    except prompts.PromptError as exc:
        st.error(str(exc))
        st.stop()
st.text_area("Rendered prompt", text, height=160, disabled=True)
st.caption(f"{len(text):,} characters of the 32,000 a GPT image model takes.")
