"""Jobs: running and recent batches with live progress, Stop and Retry; everyone signed in sees them."""

import streamlit as st

import jobs_panel
import ui

actor = ui.guard("view")
st.title("Jobs")
st.caption("Batches run by the workers: closing the browser stops nothing, and everyone here sees their progress.")
jobs_panel.jobs_page(actor)
