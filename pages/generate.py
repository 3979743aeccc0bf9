"""Generate: choose solutions and settings, see the cost first, queue the job; live progress, Stop."""

from datetime import date

import streamlit as st

import jobs_panel
import ui
from aixchange_images import admin, batch, catalogue, jobs, pipeline, templates
from aixchange_images.config import STANDARD_SIZES
from aixchange_images.providers import model_notice

actor = ui.guard("generate")
settings = ui.settings()
st.title("Generate")
if actor.role == "product":
    st.caption(
        "As product team you generate **trials**: candidates go to the review queue, never straight to the marketplace."
    )

with ui.db() as session:
    missing = catalogue.missing_ids(session=session)
    everything = catalogue.regenerable_ids(session=session)
    models = [p.model for p in admin.prices(session=session)]
    template_refs = templates.version_refs(session=session)
    template_labels = templates.all_labels(session=session)
selected = st.session_state.get("generate_ids") or []

choices = {f"Missing an image ({len(missing):,})": missing, f"All except uploaded ({len(everything):,})": everything}
if selected:
    choices = {f"Selected on Solutions ({len(selected)})": selected, **choices}
which = st.radio("Solutions", list(choices), horizontal=True)
ids = choices[which]

c1, c2, c3, c4 = st.columns(4)
has_key = settings.openai_api_key is not None
providers = ["local", "openai"]
provider = c1.selectbox(
    "Provider",
    providers,
    index=providers.index(settings.provider_name) if settings.provider_name in providers else 0,
    help=None if has_key else "openai needs OPENAI_API_KEY on the server.",
)
model_options = sorted(set(models) | {settings.image_model})
model = c2.selectbox(
    "Model",
    model_options,
    index=model_options.index(settings.image_model),
    disabled=provider == "local",
    help="The local provider draws its own cards.",
)
sizes = list(dict.fromkeys([settings.dalle_image_size, *STANDARD_SIZES[:3]]))
size = c3.selectbox("Size", sizes)
qualities = ["low", "medium", "high"]
quality = c4.selectbox(
    "Quality",
    qualities,
    index=qualities.index(settings.dalle_image_quality) if settings.dalle_image_quality in qualities else 1,
)
template = st.selectbox(
    "Prompt template",
    [None, *template_refs],
    format_func=lambda r: (
        " · ".join([r, *template_labels.get(r, [])])
        if r
        else "production (per category, as configured in Prompt Studio)"
    ),
)
c5, c6, c7 = st.columns([1, 1, 2])
candidates = c5.number_input("Candidates per solution", 1, 10, 1)
use_cache = c6.toggle("Reuse identical results", value=True, help="An identical earlier request is reused at $0.")
auto = c7.toggle(
    "Publish the first good image (no review)",
    value=False,
    disabled=not actor.can("review"),
    help="The old marketplace behaviour. Admins only.",
)

options = pipeline.GenerateOptions(
    provider=provider,
    model=model,
    size=size,
    quality=quality,
    candidates=int(candidates),
    use_cache=use_cache,
    auto_approve=auto,
    actor=actor,
    template=template,
)
notice = model_notice(model, date.today()) if provider != "local" else None
if notice:
    st.warning(notice, icon=":material/schedule:")
if settings.quality_notice:
    st.info(settings.quality_notice)
if provider == "openai" and not has_key:
    st.error(
        "The openai provider needs OPENAI_API_KEY in the server's environment or .env; "
        "use the local provider meanwhile.",
        icon=":material/key_off:",
    )
    st.stop()
if not ids:
    st.success(
        "Nothing to do here: every solution in this choice has an image. Pick another choice above.",
        icon=":material/task_alt:",
    )
    st.stop()

estimate = ui.attempt(lambda: batch.estimate_batch(ui.engine(), settings, ids, options))
if estimate is None:
    st.stop()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Images", f"{len(ids) * int(candidates):,}")
m2.metric(
    "Paid calls",
    f"{estimate['calls'] if estimate['paid'] else 0:,}",
    help=f"{estimate['expected_cache_hits']} expected from cache at $0",
)
m3.metric(
    "Estimated cost",
    ui.money(estimate["estimated_cost_usd"]),
    help="With size or quality auto the service chooses, so this is the most it can cost."
    if "auto" in (size, quality)
    else "Expected output tokens for this size and quality, plus the prompt's tokens.",
)
m4.metric("Budget left", "no cap" if estimate["budget_left_usd"] is None else ui.money(estimate["budget_left_usd"]))
if not estimate["fits_budget"]:
    st.warning("The estimate is more than the budget has left: calls past the cap will fail as budget_exceeded.")

run = st.button("Generate", type="primary", icon=":material/auto_awesome:", help="Queued as a job for the workers.")
if run:
    job = ui.attempt(lambda: jobs.enqueue_generate(ui.engine(), settings, ids, options))
    if job is not None:  # Review's "?batch=" finds this run's candidates
        st.session_state.update(generate_ids=[], last_job_id=job.id, last_batch_id=job.batch_id)

if st.session_state.get("last_job_id"):
    st.subheader("Last run")
    st.caption("A worker runs it: leave or close this page whenever you like; Jobs shows every job.")
    jobs_panel.job_progress(st.session_state["last_job_id"], actor)
    run_id = st.session_state.get("last_batch_id")
    ui.page_link(
        "pages/review.py", "Review the new candidates", ":material/fact_check:", {"batch": run_id} if run_id else None
    )
