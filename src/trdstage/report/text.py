"""Plain-text and Markdown renderings of an assessment: the ten-second summary first."""

from __future__ import annotations

from trdstage.domain.advice import Recommendation
from trdstage.domain.results import Assessment, TrialVerdict

ROMAN = ["0", "I", "II", "III", "IV", "V"]


def _fmt_outcome(value: str) -> str:
    return value.replace("_", " ")


def headline(a: Assessment) -> list[tuple[str, str]]:
    s = a.staging
    msm = (f"{s.maudsley.score} ({s.maudsley.band})" if s.maudsley.score is not None
           else "not applicable" if not s.maudsley.counted else "not computable")
    reg = "met" if s.regulatory.met else "not met"
    if s.regulatory.failed_agents:
        reg += f" ({', '.join(s.regulatory.failed_agents)})"
    return [
        ("Thase & Rush", f"stage {ROMAN[s.thase_rush.stage]}: {s.thase_rush.stage_label}"),
        ("MGH-S", f"{s.mgh.score:g}"),
        ("Maudsley (MSM)", msm),
        ("European", s.european.category),
        ("Regulatory TRD", reg),
    ]


def _trial_line(t: TrialVerdict) -> str:
    end = "ongoing" if t.ongoing else (t.end.isoformat() if t.end else "?")
    dose = f"max {t.max_daily_dose_mg:g} mg/day" if t.max_daily_dose_mg is not None else "dose ?"
    verdict = "FAILED" if t.failed else "not failed"
    scope = "" if t.in_scope else " [out of scope]"
    return (f"{t.id} {', '.join(t.agents)} ({t.mechanism_label}) {t.start.isoformat()} -> {end}, "
            f"{t.weeks:g} wk, {dose}; {'adequate' if t.adequate else 'not adequate'}, "
            f"{_fmt_outcome(t.outcome.value)}: {verdict}{scope}")


def _caveats(a: Assessment) -> list[str]:
    out = []
    for result in a.staging.model_dump().values():
        for caveat in result["caveats"]:
            out.append(f"{result['name']}: {caveat}")
    return out


def render_text(a: Assessment) -> str:
    ep = a.episode
    lines = [
        f"trdstage: patient {a.patient_id}, as of {a.as_of.isoformat()} (policy {a.policy})",
        f"Current episode: onset {ep.onset.isoformat()}, {ep.duration_months:g} months, "
        f"severity {ep.severity.value if ep.severity else 'not recorded'}"
        + (", psychotic features" if ep.psychotic_features else ""),
        "",
    ]
    width = max(len(k) for k, _ in headline(a))
    lines += [f"  {k.ljust(width)}  {v}" for k, v in headline(a)]
    lines += ["", "Trials:"]
    if not a.trials:
        lines.append("  none recorded")
    for t in a.trials:
        lines.append(f"  {_trial_line(t)}")
        lines += [f"      - {r}" for r in t.reasons]
    if a.ect:
        lines += ["", "ECT courses:"]
        for c in a.ect:
            lines.append(f"  {c.id} {c.start.isoformat()} {c.laterality.value}, "
                         f"{c.sessions if c.sessions is not None else '?'} sessions, "
                         f"{_fmt_outcome(c.outcome.value)}: "
                         f"{'FAILED' if c.failed else 'not failed'}")
            lines += [f"      - {r}" for r in c.reasons]
    if a.courses:
        lines += ["", "Other courses:"]
        lines += [f"  {c.id} {c.kind.value} {c.start.isoformat()}: {_fmt_outcome(c.outcome.value)}"
                  for c in a.courses]
    lines += ["", "Why:"]
    for result in a.staging.model_dump().values():
        lines.append(f"  {result['name']}")
        lines += [f"    - {r}" for r in result["reasons"]]
    caveats = _caveats(a)
    if caveats:
        lines += ["", "Caveats:"] + [f"  - {c}" for c in caveats]
    if a.warnings:
        lines += ["", "Warnings:"] + [
            f"  - {w.where + ': ' if w.where else ''}{w.message}" for w in a.warnings]
    lines += advice_text(a)
    lines += ["", a.disclaimer]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(a: Assessment) -> str:
    ep = a.episode
    out = [
        f"# TRD staging: patient {a.patient_id}",
        "",
        f"As of **{a.as_of.isoformat()}**, policy `{a.policy}`. Current episode from "
        f"{ep.onset.isoformat()} ({ep.duration_months:g} months), severity "
        f"{ep.severity.value if ep.severity else 'not recorded'}"
        + (", psychotic features" if ep.psychotic_features else "") + ".",
        "",
        "| Model | Result |",
        "|---|---|",
    ]
    out += [f"| {k} | {_cell(v)} |" for k, v in headline(a)]
    out += ["", "## Trials", "", "| Id | Agent | Class | Start | End | Weeks | Max dose (mg/day) "
            "| Adequate | Outcome | Failed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in a.trials:
        end = "ongoing" if t.ongoing else (t.end.isoformat() if t.end else "")
        dose = f"{t.max_daily_dose_mg:g}" if t.max_daily_dose_mg is not None else ""
        out.append(f"| {t.id} | {', '.join(t.agents)} | {t.mechanism_label} | "
                   f"{t.start.isoformat()} | {end} | {t.weeks:g} | {dose} | "
                   f"{'yes' if t.adequate else 'no'} | {_fmt_outcome(t.outcome.value)} | "
                   f"{'**yes**' if t.failed else 'no'} |")
    for t in a.trials:
        out += ["", f"**{t.id} {', '.join(t.agents)}**", ""] + [f"- {_cell(r)}" for r in t.reasons]
    if a.ect:
        out += ["", "## ECT courses", ""]
        for c in a.ect:
            out.append(f"- **{c.id}** {c.start.isoformat()}, {c.laterality.value}, "
                       f"{c.sessions if c.sessions is not None else '?'} sessions: "
                       f"{'failed' if c.failed else 'not failed'} ({'; '.join(c.reasons)})")
    out += ["", "## Why"]
    for result in a.staging.model_dump().values():
        out += ["", f"### {result['name']}", ""] + [f"- {_cell(r)}" for r in result["reasons"]]
        if result["sources"]:
            out += ["", "Sources: " + "; ".join(_cell(s) for s in result["sources"])]
    caveats = _caveats(a)
    if caveats:
        out += ["", "## Caveats", ""] + [f"- {_cell(c)}" for c in caveats]
    if a.warnings:
        out += ["", "## Warnings", ""] + [
            f"- {_cell((w.where + ': ') if w.where else '')}{_cell(w.message)}" for w in a.warnings]
    out += advice_markdown(a)
    out += ["", f"> {a.disclaimer}", ""]
    return "\n".join(out)


def _grades(r: Recommendation) -> str:
    return "; ".join(f"{g.guideline}: {g.grade}" for g in r.grades)


def _rec_head(r: Recommendation) -> str:
    flags = []
    if r.blocked:
        flags.append("BLOCKED")
    if r.previously_tried is not None:
        flags.append("TRIED BEFORE")
    mark = f" [{', '.join(flags)}]" if flags else ""
    return f"{r.rank}. {r.label} ({r.category.value}){mark}"


def advice_text(a: Assessment) -> list[str]:
    """Next steps, alerts, the reassessment checklist and monitoring, as plain text."""
    lines: list[str] = []
    if a.alerts:
        lines += ["", "Alerts:"]
        lines += [f"  [{al.severity.value.upper()}] {al.code}: {al.message}" for al in a.alerts]
    if a.recommendations:
        lines += ["", "Next steps (ranked; the stage-to-option mapping is the project's design, "
                  "the grades are each guideline's own):"]
        for r in a.recommendations:
            lines.append(f"  {_rec_head(r)}")
            if r.blocked_reason:
                lines.append(f"      blocked: {r.blocked_reason}")
            if r.dose_range:
                lines.append(f"      dose: {r.dose_range.text}")
            if r.grades:
                lines.append(f"      grades: {_grades(r)}")
            lines += [f"      - {x}" for x in r.rationale]
            if r.previously_tried:
                lines.append(f"      tried: {r.previously_tried.summary}")
            lines += [f"      ! [{al.severity.value}] {al.message}" for al in r.alerts
                      if al.severity.value != "info"]
            lines += [f"      PGx {f.drug}: {f.recommendation}"
                      + (f" ({f.strength})" if f.strength else "") for f in r.pharmacogenomics]
            lines.append(f"      sources: {', '.join(r.source_keys)}")
    if a.reassessment:
        lines += ["", "Reassessment checklist:"]
        for c in a.reassessment:
            mark = "FOUND" if c.status.value == "found" else "to check"
            lines.append(f"  [{mark}] {c.check}")
            lines += [f"      - {e}" for e in c.evidence]
    m = a.monitoring
    if m.scales or m.notes:
        lines += ["", "Symptom monitoring:"]
        for s in m.scales:
            resp = "" if s.reduction_pct is None else f", {s.reduction_pct:g}% from baseline"
            lines.append(f"  {s.scale}: latest {s.latest:g} ({s.latest_band}){resp}; response "
                         f"{'yes' if s.response else 'no'}, remission "
                         f"{'yes' if s.remission else 'no'} ({s.remission_threshold})")
        for t in m.trials:
            early = "" if t.early_improvement is None else (
                f", early improvement {'yes' if t.early_improvement else 'no'}")
            lines.append(f"  {t.trial_id} {t.label} on {t.scale}: {t.baseline:g} -> "
                         f"{t.endpoint:g} ({t.reduction_pct:g}%){early}")
        lines += [f"  - {n}" for n in m.notes]
    return lines


def advice_markdown(a: Assessment) -> list[str]:
    """The same sections in Markdown."""
    out: list[str] = []
    if a.alerts:
        out += ["", "## Alerts", ""]
        out += [f"- **{al.severity.value}** `{al.code}`: {_cell(al.message)}" for al in a.alerts]
    if a.recommendations:
        out += ["", "## Next steps", "",
                "Ranked. The stage-to-option mapping is the project's design (no guideline "
                "indexes options by stage); each guideline's grade is given in its own terms.",
                "", "| # | Option | Category | Grades | Dose | Status |",
                "|---|---|---|---|---|---|"]
        for r in a.recommendations:
            status = ("blocked: " + r.blocked_reason) if r.blocked_reason else (
                "tried before" if r.previously_tried else "")
            out.append(f"| {r.rank} | {_cell(r.label)} | {r.category.value} | "
                       f"{_cell(_grades(r))} | {_cell(r.dose_range.text if r.dose_range else '')}"
                       f" | {_cell(status)} |")
        for r in a.recommendations:
            out += ["", f"**{r.rank}. {_cell(r.label)}**", ""]
            out += [f"- {_cell(x)}" for x in r.rationale]
            if r.previously_tried:
                out.append(f"- tried: {_cell(r.previously_tried.summary)}")
            out += [f"- {al.severity.value}: {_cell(al.message)}" for al in r.alerts]
            out += [f"- PGx {f.drug}: {_cell(f.recommendation)}" for f in r.pharmacogenomics]
            out.append(f"- sources: {', '.join(r.source_keys)}")
    if a.reassessment:
        out += ["", "## Reassessment checklist", "", "| Status | Check | Evidence |",
                "|---|---|---|"]
        out += [f"| {c.status.value} | {_cell(c.check)} | {_cell('; '.join(c.evidence))} |"
                for c in a.reassessment]
    m = a.monitoring
    if m.scales:
        out += ["", "## Symptom monitoring", "", "| Scale | Latest | Band | Change % | Response "
                "| Remission |", "|---|---|---|---|---|---|"]
        out += [f"| {s.scale} | {s.latest:g} | {s.latest_band} | "
                f"{'' if s.reduction_pct is None else f'{s.reduction_pct:g}'} | "
                f"{'yes' if s.response else 'no'} | {'yes' if s.remission else 'no'} |"
                for s in m.scales]
    if m.notes:
        out += [""] + [f"- {_cell(n)}" for n in m.notes]
    return out


def render_json(a: Assessment) -> str:
    return a.model_dump_json(indent=2) + "\n"
