"""Figures written for people: money, shares, durations and sizes, and the `stats` command's lines."""

from __future__ import annotations

from typing import Any

LABEL = 17  # width of the label column


def money(usd: float | None) -> str:
    return "—" if usd is None else f"${usd:,.2f}"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def seconds(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.2f} s"


def size(count: int) -> str:
    """Bytes in decimal units (kB, MB, GB), as file managers show them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def stats_text(figures: dict[str, Any]) -> str:
    """`stats` for a person: one line per subject, money in dollars, times in seconds."""
    lines = [
        ("Attempts", _attempts(figures)),
        ("Generation time", _times(figures)),
        ("Spend", _spend(figures)),
        ("Cache", f"{figures['cache_hits']:,} hit(s), saving {money(figures['cache_saved_usd'])}"),
        ("Approved images", _approved(figures)),
        ("Storage", f"{size(figures['storage_bytes'])} ({figures['storage_bytes']:,} bytes)"),
    ]
    if "budget" in figures:
        lines.append(("Budget", _budget(figures["budget"])))
    return "\n".join(f"{label:<{LABEL}}{text}" for label, text in lines)


def _attempts(f: dict[str, Any]) -> str:
    if not f["attempts"]:
        return "none yet"
    return f"{f['attempts']:,} ({f['succeeded']:,} succeeded, {f['failed']:,} failed: {share(f['success_rate'])} succeeded)"


def _times(f: dict[str, Any]) -> str:
    if f["p50_ms"] is None:
        return "— (no image made by a provider yet)"
    return f"p50 {seconds(f['p50_ms'])}, p95 {seconds(f['p95_ms'])}"


def _spend(f: dict[str, Any]) -> str:
    rejected = f.get("rejected_spend_usd") or 0.0
    return money(f["spend_usd"]) + (f", {money(rejected)} of it on images later rejected" if rejected else "")


def _approved(f: dict[str, Any]) -> str:
    each = f["cost_per_approved_usd"]
    return f"{f['approved']:,}" + (f", {money(each)} each" if each is not None else "")


def _budget(b: dict[str, Any]) -> str:
    def part(spent: float, cap: float | None) -> str:
        return f"{money(spent)} of {money(cap)}" if cap is not None else f"{money(spent)} (no cap)"

    return f"today {part(b['spent_today_usd'], b['daily_cap_usd'])}, this month {part(b['spent_month_usd'], b['monthly_cap_usd'])}"


def jobs_text(payload: dict[str, Any]) -> str:
    """`jobs` for a person: one line per job, newest first; `jobs cancel|retry`: one sentence."""
    if "jobs" not in payload:
        if "retry_of" in payload:
            return f"Job {payload['retry_of']}'s unfinished part is job {payload['job_id']}, {payload['status']}."
        state = "stopping: calls in flight finish" if payload["status"] in ("queued", "running") else payload["status"]
        return f"Job {payload['job_id']}: {state}."
    lines = [f"{'id':>5}  {'status':<9}  {'kind':<16}  {'done':>11}  {'failed':>6}  {'cost':>9}  who"]
    for job in payload["jobs"]:
        stopping = " (stopping)" if job["cancel_requested"] and job["status"] in ("queued", "running") else ""
        lines.append(
            f"{job['id']:>5}  {job['status']:<9}  {job['kind']:<16}  {job['done']:>5}/{job['total']:<5}  "
            f"{job['failed']:>6}  {'$' + format(job['cost_usd'], '.4f'):>9}  {job['actor']}{stopping}"
        )
    return "\n".join(lines if payload["jobs"] else ["No jobs yet."])


def providers_text(payload: dict[str, Any]) -> str:
    """`providers` for a person: one paragraph per provider."""
    lines = []
    for p in payload["providers"]:
        state = "ready" if p["ready"] else f"not ready: {p['missing']}"
        can = "generates and refines" if p["edits"] else "generates (no refine)"
        lines.append(f"{p['name']} ({p['label']}): {state}")
        lines.append(f"  {can}; models: {', '.join(p['models'])}")
        if p["variables"]:
            lines.append(f"  reads {', '.join(p['variables'])}")
    return "\n".join(lines)


def candidates_text(payload: dict[str, Any]) -> str:
    """`candidates` for a person: one line per candidate, newest first, with what it was refined from."""
    rows = payload["candidates"]
    lines = [f"{'id':>6}  {'status':<11}  {'made by':<24}  {'cost':>9}  file"]
    for c in rows:
        made = "/".join(part for part in (c["provider"], c["model"]) if part) or "upload"
        lines.append(
            f"{c['id']:>6}  {c['status']:<11}  {made[:24]:<24}  {'$' + format(c['cost_usd'], '.4f'):>9}  {c['path']}"
        )
        if c["parent_id"] is not None:
            lines.append(f"{'':>6}  refined from #{c['parent_id']}: {c['instruction']!r}")
        lines += _verdict_lines(c)
    return "\n".join([*lines, f"{len(rows)} candidate(s)"])


def _verdict_lines(c: dict[str, Any]) -> list[str]:
    """Under a candidate: what the automatic checks found, in plain words, each flag with its sentence."""
    if c["checked_at"] is None:
        return [f"{'':>6}  not checked yet"]
    if not c["flags"]:
        return [f"{'':>6}  checks: no flag"]
    lines = [f"{'':>6}  flagged: {', '.join(_label(name) for name in c['flags'])}"]
    for name in c["flags"]:
        if name in c["checks"]:
            lines.append(f"{'':>8}{_label(name)}: {c['checks'][name]['sentence']}")
    return lines


def _label(name: str) -> str:
    from .checks import LABELS  # here, not at the top: the command line's parser loads this module

    return LABELS.get(name, name)


def checks_text(payload: dict[str, Any]) -> str:
    """`checks` for a person: how many were checked, how many each check flagged, what could not be checked."""
    flagged = [f"{_label(name)} {count:,}" for name, count in payload["flagged"].items()]
    lines = [
        f"Checked {payload['checked']:,} candidate(s): {payload['no_flag']:,} with no flag.",
        f"Flagged: {', '.join(flagged) if flagged else 'no check is on'}.",
    ]
    missed = payload["not_checked"]
    if missed:
        lines.append(f"Not checked: {len(missed):,} candidate(s).")
        lines += [f"  #{m['candidate_id']}: {m['problem']}" for m in missed]
    return "\n".join(lines)


def refine_text(payload: dict[str, Any]) -> str:
    """`refine` for a person: the new candidate, or why there is none."""
    r, parent = payload["results"][0], payload["summary"]["parent_id"]
    if r["status"] == "failed":
        return f"Candidate #{parent} was not refined ({r['error_kind']}): {r['error']}"
    cache = " from the cache" if r["cache_hit"] else ""
    return f"Candidate #{r['candidate_id']} refined from #{parent}{cache}: {money(r['cost_usd'])} in {seconds(r['duration_ms'])}."
