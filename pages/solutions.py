"""Solutions: search and page the catalogue, import/export, add/edit, upload an author image."""

import pandas as pd
import streamlit as st

import ui
from aixchange_images import bulk, bulkfiles, catalogue, records, review
from aixchange_images.models import ImageStatus, Solution

PAGE_SIZE = 25
EXPORT_NAME = "aixchange-solutions.json"
EXPORT_ZIP = "aixchange-solutions.zip"
actor = ui.guard("view")
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
                "image": ui.thumb_uri(data_dir, thumbs.get(s.id)),
                "title": s.title,
                "category": s.category,
                "status": s.image_status,
                "imageUrl": s.image_url,
                "updated": s.updated_at,
                "id": s.id,
            }
            for s in rows
        ],
        columns=["image", "title", "category", "status", "imageUrl", "updated", "id"],
    )
    return total, frame


@st.cache_data(ttl=300, show_spinner=False)
def category_list() -> list[str]:
    with ui.db() as session:
        return catalogue.categories(session=session)


tabs = ["Browse"] + (["Import / export", "Add or edit", "Upload image"] if actor.can("edit_catalogue") else [])
browse, *admin_tabs = st.tabs(tabs)

with browse:
    c1, c2, c3 = st.columns([3, 1.2, 1.6])
    text = c1.text_input("Search", placeholder="title, description or id", label_visibility="collapsed")
    status = c2.selectbox(
        "Image status",
        [None] + [s.value for s in ImageStatus],
        format_func=lambda s: "any status" if s is None else s,
        label_visibility="collapsed",
    )
    category = c3.selectbox(
        "Category",
        [None] + category_list(),
        format_func=lambda c: "any category" if c is None else c,
        label_visibility="collapsed",
    )
    total, _ = page_of(status, category, text, 0)
    if total == 0:
        st.info(
            "No solutions match. Clear the filters, or import solutions on the next tab.", icon=":material/search_off:"
        )
    else:
        offset = ui.pager("solutions-page", total, PAGE_SIZE)
        total, frame = page_of(status, category, text, offset)
        st.caption(f"{total:,} solution(s); showing {offset + 1:,}–{offset + len(frame):,}")
        event = st.dataframe(
            frame,
            key="solutions-table",
            hide_index=True,
            on_select="rerun",
            selection_mode="multi-row",
            row_height=64,
            height=64 * 10 + 40,
            column_config={
                "image": st.column_config.ImageColumn("Image", width="small"),
                "title": st.column_config.TextColumn("Title", width="medium"),
                "imageUrl": st.column_config.TextColumn("imageUrl", width="medium"),
                "updated": st.column_config.DatetimeColumn("Updated", format="YYYY-MM-DD HH:mm"),
                "id": st.column_config.TextColumn("ID", width="small"),
            },
        )
        chosen = frame.iloc[event.selection.rows]["id"].tolist() if event.selection.rows else []
        st.session_state["selected_ids"] = chosen
        if chosen and actor.can("generate"):
            if st.button(f"Generate for {len(chosen)} selected", type="primary", icon=":material/auto_awesome:"):
                st.session_state["generate_ids"] = chosen
                st.switch_page(ui.page_path("pages/generate.py"))
        elif actor.can("generate"):
            st.caption("Select rows to send them to Generate, or to edit one.")
        if len(chosen) == 1:
            ui.page_link(
                "pages/solution.py", "Open its page: history and rollback", ":material/history:", {"id": chosen[0]}
            )

if admin_tabs:
    import_tab, edit_tab, upload_tab = admin_tabs
    with import_tab:
        st.markdown(
            'Import AIXchange bulk JSON (`{"solutions": [...]}`), CSV with the same columns, or what the '
            "marketplace hands out: its *Download JSON* and its admin API's array of rows. A solution that "
            "comes again is updated in place: by `id` when the record has one, else by title."
        )
        upload = st.file_uploader("Catalogue file", type=["json", "csv"])
        if upload is not None and st.button("Import", type="primary"):
            bar = st.progress(0.0, text="Checking the records…")

            def run_import() -> bulk.ImportReport:
                records = bulkfiles.parse_bulk(upload.name, upload.getvalue())
                return bulk.import_bulk(
                    ui.engine(),
                    records,
                    actor=actor,
                    source=upload.name,
                    progress=lambda done, total: bar.progress(done / total, text=f"{done:,} of {total:,} written"),
                )

            report = ui.attempt(run_import)
            bar.empty()
            if report is not None:
                st.success(f"Imported {report.imported}, updated {report.updated}, refused {len(report.errors)}.")
                if report.errors:
                    st.dataframe(pd.DataFrame(report.errors), hide_index=True)
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
            parts, refused = st.session_state["export"]
            if len(parts) == 1:
                st.download_button(
                    f"Download {EXPORT_NAME}", parts[0][1], file_name=EXPORT_NAME, mime="application/json"
                )
            elif parts:
                st.download_button(
                    f"Download {len(parts)} files ({EXPORT_ZIP})",
                    bulkfiles.zip_parts(parts),
                    file_name=EXPORT_ZIP,
                    mime="application/zip",
                )
            if refused:
                st.warning(f"{len(refused)} solution(s) left out: the marketplace would refuse them.")
                st.dataframe(pd.DataFrame(refused), hide_index=True)

    with edit_tab:
        selected = st.session_state.get("selected_ids") or []
        editing = None
        if selected:
            with ui.db() as session:
                editing = session.get(Solution, selected[0])
        st.caption(
            f"Editing **{editing.title}** (selected on Browse)."
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
        if saved:
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

            def save():
                with ui.db(write=True) as session:
                    solution = catalogue.save_solution(
                        session=session, actor=actor, fields=fields, solution_id=editing.id if editing else None
                    )
                    session.commit()
                    return solution

            if ui.attempt(save, "Saved."):
                st.rerun()

    with upload_tab:
        selected = st.session_state.get("selected_ids") or []
        if not selected:
            st.info("Select one solution on Browse, then upload its author's image here.", icon=":material/touch_app:")
        else:
            with ui.db() as session:
                target = session.get(Solution, selected[0])
            st.write(
                f"Upload an image for **{target.title}**. It is checked, published at once and "
                "marked *uploaded*, so generation leaves it alone."
            )
            image = st.file_uploader("Image (PNG, JPEG or WebP, up to 20 MB)", type=["png", "jpg", "jpeg", "webp"])
            if image is not None and st.button("Publish this image", type="primary"):

                def publish():
                    with ui.db(write=True) as session:
                        pub = review.upload(
                            session=session,
                            settings=ui.settings(),
                            solution_id=target.id,
                            data=image.getvalue(),
                            actor=actor,
                        )
                        session.commit()
                        return pub

                pub = ui.attempt(publish, "Image published.")
                if pub is not None:
                    st.success(f"Published as `{pub.image_url}`.")
