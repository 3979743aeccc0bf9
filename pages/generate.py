"""Generate: choose solutions and settings, see the cost first, queue the job; live progress, Stop."""

import hashlib
from datetime import date

import streamlit as st

import jobs_panel
import ui
from aixchange_images import batch, catalogue, jobs, pipeline, provider_registry, templates
from aixchange_images.budget import Estimate
from aixchange_images.config import STANDARD_SIZES
from aixchange_images.jobmodels import ACTIVE, Job

LAST_RUN_ROWS = 500  # a table of thumbnails; the summary above it counts everything
actor = ui.guard("generate")
settings = ui.settings()
st.title("Generate")
if actor.role == "product":
    st.caption(
        "As product team you generate **trials**: candidates go to the review queue, never straight to the marketplace."
    )


def choose_solutions() -> list[str]:
    with ui.db() as session:
        missing = catalogue.missing_ids(session=session)
        everything = catalogue.regenerable_ids(session=session)
    selected = st.session_state.get("generate_ids") or []
    choices = {
        f"Missing an image ({len(missing):,})": missing,
        f"All except uploaded ({len(everything):,})": everything,
    }
    if selected:
        choices = {f"Selected on Solutions ({len(selected)})": selected, **choices}
    return choices[st.radio("Solutions", list(choices), horizontal=True)]


def choose_options() -> pipeline.GenerateOptions:
    with ui.db() as session:
        template_refs = templates.version_refs(session=session)
        template_labels = templates.all_labels(session=session)
    c1, c2, c3, c4 = st.columns(4)
    providers = provider_registry.provider_names()
    provider = c1.selectbox(
        "Provider",
        providers,
        index=providers.index(provider_registry.chosen(settings))
        if provider_registry.chosen(settings) in providers
        else 0,
        format_func=lambda name: provider_registry.provider_class(name).label,
    )
    chosen = provider_registry.get_provider(provider, settings)
    model_options = provider_registry.model_names(provider)
    if chosen.serves(settings.image_model) and settings.image_model not in model_options:
        model_options.insert(0, settings.image_model)
    default = settings.image_model if settings.image_model in model_options else chosen.default_model
    model = c2.selectbox(
        "Model",
        model_options,
        index=model_options.index(default),
        disabled=len(model_options) == 1,
    )
    size = c3.selectbox("Size", list(dict.fromkeys([settings.dalle_image_size, *STANDARD_SIZES[:3]])))
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
    return pipeline.GenerateOptions(
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


def notices(options: pipeline.GenerateOptions) -> None:
    """What the chosen settings need to know before anything runs; stops the page when it cannot run."""
    provider = provider_registry.get_provider(options.provider or provider_registry.chosen(settings), settings)
    notice = provider.notice(options.model or provider.default_model, date.today())
    if notice:
        st.warning(ui.literal(notice), icon=":material/schedule:")
    if settings.quality_notice:
        st.info(ui.literal(settings.quality_notice))
    if missing := provider.missing():
        st.error(ui.literal(f"The {provider.name} provider cannot run here: {missing}"), icon=":material/key_off:")
        st.stop()


@st.cache_data(ttl=30, show_spinner=False, max_entries=20)
def cached_estimate(database: str, selection: str, _ids: list[str], options: pipeline.GenerateOptions) -> Estimate:
    """The estimate for a selection (keyed by its digest: Streamlit hashes 10,000 ids in ~40 ms of CPU) and
    options, kept 30 s rather than redone on every rerun; an action through ui.attempt or ui.write clears it."""
    return batch.estimate_batch(ui.engine(), settings, _ids, options)


def show_estimate(ids: list[str], options: pipeline.GenerateOptions) -> None:
    selection = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    database = str(ui.base_settings().database_url)
    estimate = ui.read(lambda: cached_estimate(database, selection, ids, options))
    if estimate is None:
        st.stop()
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Images", f"{len(ids) * options.candidates:,}")
    m2.metric(
        "Paid calls",
        f"{estimate.calls:,}",
        help=f"{estimate.expected_cache_hits:,} expected from the cache, free",
    )
    auto = "auto" in (options.size, options.quality)
    m3.metric(
        "Estimated cost",
        ui.money(estimate.cost_usd),
        help="With size or quality auto the service chooses, so this is the most it can cost."
        if auto
        else "Expected output tokens for this size and quality, plus the prompt's tokens.",
    )
    left = estimate.budget_left_usd
    m4.metric("Budget left", "no cap" if left is None else ui.money(left))
    if not estimate.fits_budget:
        st.warning("The estimate is more than the budget has left: calls past the cap will fail as over budget.")


def queue(ids: list[str], options: pipeline.GenerateOptions) -> None:
    """Queue the batch as a job for the workers: closing the page stops nothing, Stop cancels it."""
    job = ui.attempt(lambda: jobs.enqueue_generate(ui.engine(), settings, ids, options))
    if job is not None:  # its batch id: Review's "?batch=" finds this run's candidates
        st.session_state.update(generate_ids=[], last_job_id=job.id, last_batch_id=job.batch_id)


def last_run() -> None:
    """The last job queued here: its live progress (Stop, failures by title), then what it made."""
    job_id = st.session_state.get("last_job_id")
    if not job_id:
        return
    with ui.db() as session:
        job = session.get(Job, job_id)
    if job is None:
        return
    st.subheader("Last run")
    st.caption("A worker runs it: leave or close this page whenever you like; Jobs shows every job.")
    jobs_panel.job_progress(job_id, actor)  # reruns the page when the job ends, so the table below appears
    if job.status in ACTIVE:
        st.caption("Its results are listed here when it ends; new candidates reach Review as they come.")
    else:
        results_table(job)
    run_id = st.session_state.get("last_batch_id")
    ui.page_link(
        "pages/review.py", "Review the new candidates", ":material/fact_check:", {"batch": run_id} if run_id else None
    )


def results_table(job: Job) -> None:
    """What the job made, from its attempts: titles, thumbnails and plain columns."""
    with ui.db() as session:
        results = jobs.results(session=session, job=job, limit=LAST_RUN_ROWS)
        table = batch.results_table(session=session, results=results) if results else None
    if table is None:
        return
    data_dir = str(ui.base_settings().data_dir)
    table.insert(0, "Image", [ui.thumb_uri(data_dir, path) for path in table.pop("thumb_path")])
    if job.done > LAST_RUN_ROWS:
        st.caption(f"The first {LAST_RUN_ROWS:,} of {job.done:,} results; every one is on Review and Metrics.")
    st.dataframe(
        table,
        hide_index=True,
        row_height=56,
        column_config={
            "Image": st.column_config.ImageColumn("Image", width="small"),
            "Solution": st.column_config.TextColumn("Solution", width="medium"),
            "Details": st.column_config.TextColumn("Details", width="large"),
        },
    )


ids = choose_solutions()
options = choose_options()
notices(options)
if ids:
    show_estimate(ids, options)
    if st.button("Generate", type="primary", icon=":material/auto_awesome:", help="Queued as a job for the workers."):
        queue(ids, options)
else:  # the last run (below) may be what just emptied this choice
    st.success(
        "Nothing to do here: every solution in this choice has an image. Pick another choice above.",
        icon=":material/task_alt:",
    )
last_run()
