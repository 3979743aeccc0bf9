"""Solutions: search and page the catalogue, import/export, add/edit, upload an author image."""

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

import jobs_panel
import ui
from aixchange_images import bulk, bulkfiles, catalogue, jobs, records, review, wording
from aixchange_images.models import ImageStatus, Solution

PAGE_SIZE = 25
COLUMNS = ["Image", "Title", "Category", "Image status", "Image URL", "Updated", "ID"]
SELECT_HINTS = {  # what a selection does, for each role
    "admin": "Select rows to send them to Generate; select one to open its page, edit it or upload its image.",
    "product": "Select rows to send them to Generate, or one to open its page.",
    "manager": "Select a row to open its page: its image history.",
}
EXPORT_NAME = "aixchange-solutions.json"
EXPORT_ZIP = "aixchange-solutions.zip"
actor = ui.guard("view")
LARGE_IMPORT = bulk.CHUNK_SIZE  # records: a file with more is imported by the workers, as a job
st.title("Solutions")


@st.cache_data(ttl=60, show_spinner=False)
def page_of(status: str | None, category: str | None, text: str, offset: int) -> tuple[int, pd.DataFrame]:
    with ui.db() as session:
        total = catalogue.count_solutions(session=session, status=status, category=category, text=text)
        rows = catalogue.list_solutions(
            session=session, status=status, category=category, text=text, offset=offset, limit=PAGE_SIZE
        )
        thumbs = review.thumbnails_for(session=session, solution_ids=[s.id for s in rows])
    data_dir = str(ui.base_settings().data_dir)
    frame = pd.DataFrame(
        [
            {
                "Image": ui.thumb_uri(data_dir, thumbs.get(s.id)),
                "Title": s.title,
                "Category": s.category,
                "Image status": wording.image_status(s.image_status),
                "Image URL": s.image_url or "",
                "Updated": s.updated_at,
                "ID": s.id,
            }
            for s in rows
        ],
        columns=COLUMNS,
    )
    return total, frame


@st.cache_data(ttl=300, show_spinner=False)
def category_list() -> list[str]:
    with ui.db() as session:
        return catalogue.categories(session=session)


def status_choice(status: str | None) -> str:
    return "any status" if status is None else wording.image_status(status)


def browse_tab() -> None:
    c1, c2, c3 = st.columns([3, 1.2, 1.6])
    text = c1.text_input("Search", placeholder="title, description or id", label_visibility="collapsed")
    status = c2.selectbox(
        "Image status", [None] + [s.value for s in ImageStatus], format_func=status_choice, label_visibility="collapsed"
    )
    category = c3.selectbox(
        "Category",
        [None] + category_list(),
        format_func=lambda c: "any category" if c is None else c,
        label_visibility="collapsed",
    )
    total, _ = page_of(status, category, text, 0)
    if total == 0:
        hint = " or import solutions on the next tab" if actor.can("edit_catalogue") else ""
        st.info(f"No solutions match. Clear the filters{hint}.", icon=":material/search_off:")
        return
    offset = ui.pager("solutions-page", total, PAGE_SIZE)
    total, frame = page_of(status, category, text, offset)
    st.caption(f"{total:,} solution(s); showing {offset + 1:,}–{offset + len(frame):,}")
    chosen = solutions_table(frame)
    st.session_state["selected_ids"] = chosen
    if chosen and actor.can("generate"):
        if st.button(f"Generate for {len(chosen)} selected", type="primary", icon=":material/auto_awesome:"):
            st.session_state["generate_ids"] = chosen
            st.switch_page(ui.page_path("pages/generate.py"))
    elif not chosen:
        st.caption(SELECT_HINTS[actor.role])
    if len(chosen) == 1:
        label = "Open its page: history and rollback" if actor.can("review") else "Open its page: its image history"
        ui.page_link("pages/solution.py", label, ":material/history:", {"id": chosen[0]})


def solutions_table(frame: pd.DataFrame) -> list[str]:
    """The page of solutions: several rows go to Generate, one opens its page (all a manager can do)."""
    event = st.dataframe(
        frame,
        key="solutions-table",
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row" if actor.can("generate") else "single-row",
        row_height=64,
        height=64 * 10 + 40,
        column_config={
            "Image": st.column_config.ImageColumn("Image", width="small"),
            "Title": st.column_config.TextColumn("Title", width="medium"),
            "Image URL": st.column_config.TextColumn("Image URL", width="medium"),
            "Updated": st.column_config.DatetimeColumn("Updated (UTC)", format="YYYY-MM-DD HH:mm"),
            "ID": st.column_config.TextColumn("ID", width="small"),
        },
    )
    if not event.selection.rows:
        return []
    return frame.iloc[event.selection.rows]["ID"].tolist()


def import_tab() -> None:
    st.markdown(
        'Import AIXchange bulk JSON (`{"solutions": [...]}`), CSV with the same columns, or what the '
        "marketplace hands out: its *Download JSON* and its admin API's array of rows. A solution that "
        "comes again is updated in place: by `id` when the record has one, else by title."
    )
    upload = st.file_uploader("Catalogue file", type=["json", "csv"])
    if upload is not None and st.button("Import", type="primary"):
        run_import(upload)
    if job_id := st.session_state.get("import_job_id"):
        st.caption("A worker imports this file: leave or close this page whenever you like; Jobs shows every job.")
        jobs_panel.job_progress(job_id, actor)
    st.divider()
    st.caption(
        "Export writes files the marketplace's bulk import accepts: at most 100 solutions each, so a larger "
        "catalogue comes as a zip of numbered files. A solution it would refuse is listed, not written."
    )
    if st.button("Prepare export", icon=":material/download:"):
        with ui.db() as session:
            export = bulk.export_records(session=session)
        st.session_state["export"] = (bulkfiles.export_parts(export.records, EXPORT_NAME), export.refused)
    if "export" in st.session_state:
        export_downloads(*st.session_state["export"])


def problems_table(problems: list[dict]) -> None:
    """Records or solutions refused, by title, with the reason in words."""
    frame = pd.DataFrame(problems, columns=["title", "error"]).rename(columns={"title": "Title", "error": "Problem"})
    st.dataframe(frame.fillna(""), hide_index=True)


def run_import(upload: UploadedFile) -> None:
    """A small file is imported here and now; a large one is queued as a job for the workers."""
    found = ui.read(lambda: bulkfiles.parse_bulk(upload.name, upload.getvalue()))
    if found is None:
        return
    if len(found) > LARGE_IMPORT:
        job = ui.attempt(
            lambda: jobs.enqueue_import(
                ui.engine(), ui.settings(), actor=actor, source=upload.name, data=upload.getvalue()
            )
        )
        if job is not None:
            st.session_state["import_job_id"] = job.id
        return
    bar = st.progress(0.0, text="Checking the records…")

    def read_and_import() -> bulk.ImportReport:
        return bulk.import_bulk(
            ui.engine(),
            found,
            actor=actor,
            source=upload.name,
            progress=lambda done, total: bar.progress(done / total, text=f"{done:,} of {total:,} written"),
        )

    report = ui.attempt(read_and_import)
    bar.empty()
    if report is not None:
        st.success(f"Imported {report.imported}, updated {report.updated}, refused {len(report.errors)}.")
        if report.errors:
            problems_table(report.errors)


def export_downloads(parts: list, refused: list[dict]) -> None:
    if len(parts) == 1:
        st.download_button(f"Download {EXPORT_NAME}", parts[0][1], file_name=EXPORT_NAME, mime="application/json")
    elif parts:
        st.download_button(
            f"Download {len(parts)} files ({EXPORT_ZIP})",
            bulkfiles.zip_parts(parts),
            file_name=EXPORT_ZIP,
            mime="application/zip",
        )
    if refused:
        st.warning(f"{len(refused)} solution(s) left out: the marketplace would refuse them.")
        problems_table(refused)


def selected_solution() -> Solution | None:
    selected = st.session_state.get("selected_ids") or []
    if not selected:
        return None
    with ui.db() as session:
        return session.get(Solution, selected[0])


def edit_tab() -> None:
    editing = selected_solution()
    st.caption(
        ui.md("Editing **{}** (selected on Browse).", editing.title)
        if editing
        else "Adding a new solution. Select one row on Browse to edit it instead."
    )
    with st.form("solution-form"):
        title = st.text_input("Title", value=editing.title if editing else "", max_chars=100)
        description = st.text_area("Description", value=editing.description if editing else "", max_chars=1000)
        c1, c2 = st.columns(2)
        cat = c1.text_input("Category", value=editing.category if editing else "Generative AI")
        provider = c2.text_input("Provider", value=editing.provider if editing else "")
        launch = c1.text_input("Launch URL", value=editing.launch_url if editing else "https://")
        tags = c2.text_input("Tags (comma-separated, 1-5)", value=", ".join(editing.tags) if editing else "")
        saved = st.form_submit_button("Save", type="primary")
    if not saved:
        return
    fields = {
        "title": title,
        "description": description,
        "category": cat,
        "provider": provider,
        "launchUrl": launch,
        "tags": [t.strip() for t in tags.split(",") if t.strip()],
    }
    if editing:
        # The form holds only some fields: lay it over the whole record, so the others
        # (isPublished, sourceCodeUrl, status, ...) keep their values; metadata is left out, so
        # it stays as stored. Never the image: an approval since this page was drawn must not
        # be undone by an edit.
        omit = ("id", "imageUrl", "metadata")
        kept = {k: v for k, v in records.marketplace_record(editing).items() if k not in omit}
        fields = {**kept, **fields}
    saving = ui.write(
        lambda s: catalogue.save_solution(
            session=s, actor=actor, fields=fields, solution_id=editing.id if editing else None
        ),
        "Saved.",
    )
    if saving:
        st.rerun()


def upload_tab() -> None:
    target = selected_solution()
    if target is None:
        st.info("Select one solution on Browse, then upload its author's image here.", icon=":material/touch_app:")
        return
    st.markdown(
        ui.md("Upload an image for **{}**. ", target.title)
        + "It is checked, published at once and marked *uploaded*, so generation leaves it alone."
    )
    image = st.file_uploader("Image (PNG, JPEG or WebP, up to 20 MB)", type=["png", "jpg", "jpeg", "webp"])
    if image is not None and st.button("Publish this image", type="primary"):
        pub = ui.write(
            lambda s: review.upload(
                session=s, settings=ui.settings(), solution_id=target.id, data=image.getvalue(), actor=actor
            ),
            "Image published.",
        )
        if pub is not None:
            st.success(ui.md("Published as {}.", pub.image_url))


if actor.can("edit_catalogue"):
    tabs = st.tabs(["Browse", "Import / export", "Add or edit", "Upload image"])
    for tab, show in zip(tabs, (browse_tab, import_tab, edit_tab, upload_tab), strict=True):
        with tab:
            show()
else:
    browse_tab()
