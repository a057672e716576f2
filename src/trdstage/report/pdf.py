"""PDF reports with fpdf2: the same sections and words as the HTML report, charts as PNG.

Fonts: fpdf2's core fonts are Latin-1 only, and a history can hold names and symbols outside
it (Åsberg, ≥, –). We embed DejaVu Sans from matplotlib's own font folder
(matplotlib/mpl-data/fonts/ttf, found at run time; matplotlib is a dependency), so no font file
is bundled and every Unicode character the text uses prints. If those files were ever missing,
we fall back to Helvetica and map text to Latin-1 with `LATIN1_MAP` (documented below), with
'?' for anything else.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import TableCellFillMode, XPos, YPos
from fpdf.fonts import FontFace
from matplotlib.figure import Figure

from trdstage.domain.patient import Patient
from trdstage.domain.results import Assessment
from trdstage.report import charts
from trdstage.report.content import (
    CHECKLIST_COLUMNS,
    COURSE_COLUMNS,
    ECT_COLUMNS,
    MONITORING_COLUMNS,
    MONITORING_TRIAL_COLUMNS,
    TRIAL_COLUMNS,
    Audience,
    ClinicianReport,
    Row,
    build_clinician,
)
from trdstage.report.plain_language import PatientSummary, build_patient

ACCENT = (11, 83, 148)
INK = (31, 35, 40)
MUTED = (95, 102, 112)
LINE = (217, 221, 227)
SOFT = (245, 247, 250)
NOTICE = (255, 248, 225)
TONES = {"urgent": (123, 31, 162), "contraindicated": (176, 58, 46), "warning": (194, 106, 0),
         "info": (47, 111, 159), "found": (176, 58, 46), "failed": (176, 58, 46)}

# Used only without DejaVu: characters the reports use, to Latin-1 spellings.
LATIN1_MAP = {"–": "-", "—": "-", "−": "-", "≥": ">=", "≤": "<=", "→": "->", "‘": "'", "’": "'",
              "“": '"', "”": '"', "…": "...", "•": "-", "×": "x", "\u00a0": " "}


def _font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


class _Doc(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text
        self.set_margins(14, 14, 14)
        self.set_auto_page_break(auto=True, margin=16)
        self.alias_nb_pages()
        folder = _font_dir()
        files = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
        self.unicode = all((folder / f).is_file() for f in files.values())
        if self.unicode:
            for style, name in files.items():
                self.add_font("DejaVu", style, str(folder / name))
            self.family = "DejaVu"
        else:  # pragma: no cover - matplotlib always ships DejaVu
            self.family = "helvetica"
        self.set_font(self.family, size=9.5)
        self.set_text_color(*INK)

    def t(self, text: str) -> str:
        if self.unicode:
            return text
        for k, v in LATIN1_MAP.items():  # pragma: no cover - fallback only
            text = text.replace(k, v)
        return text.encode("latin-1", "replace").decode("latin-1")  # pragma: no cover

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(self.family, size=7)
        self.set_text_color(*MUTED)
        self.cell(0, 4, self.t(f"{self.footer_text}   ·   page {self.page_no()}/{{nb}}"),
                  align="C")
        self.set_text_color(*INK)

    # --- building blocks ---
    def h1(self, text: str) -> None:
        self.set_font(self.family, "B", 15)
        self.set_text_color(*ACCENT)
        self.multi_cell(0, 7, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*INK)

    def h2(self, text: str) -> None:
        if self.will_page_break(24):
            self.add_page()
        self.ln(3)
        self.set_font(self.family, "B", 11.5)
        self.set_text_color(*ACCENT)
        self.cell(0, 6, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*LINE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)
        self.set_text_color(*INK)

    def h3(self, text: str) -> None:
        if self.will_page_break(22):
            self.add_page()
        self.ln(1)
        self.set_font(self.family, "B", 9.5)
        self.cell(0, 5, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def para(self, text: str, size: float = 9.5, style: str = "",
             colour: tuple[int, int, int] = INK, h: float | None = None) -> None:
        self.set_font(self.family, style, size)
        self.set_text_color(*colour)
        self.multi_cell(0, h or size * 0.5, self.t(text), align="L", new_x=XPos.LMARGIN,
                        new_y=YPos.NEXT)
        self.set_text_color(*INK)

    def bullets(self, lines: Sequence[str], size: float = 8.8, indent: float = 4,
                colour: tuple[int, int, int] = INK) -> None:
        self.set_font(self.family, "", size)
        self.set_text_color(*colour)
        for line in lines:
            self.set_x(self.l_margin + indent)
            self.cell(3.5, size * 0.47, "•" if self.unicode else "-")
            self.multi_cell(0, size * 0.47, self.t(line), align="L", new_x=XPos.LMARGIN,
                            new_y=YPos.NEXT)
        self.set_text_color(*INK)

    def box(self, text: str, bold_lead: str = "", fill: tuple[int, int, int] = NOTICE,
            border: tuple[int, int, int] = (201, 162, 39), size: float = 8.8) -> None:
        self.set_fill_color(*fill)
        self.set_draw_color(*border)
        self.set_font(self.family, "", size)
        content = (f"**{self.t(bold_lead)}** " if bold_lead else "") + self.t(text)
        self.multi_cell(0, size * 0.5, content, border=1, fill=True, markdown=True, align="L",
                        padding=(2, 3, 2, 3), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)

    def grid(self, columns: Sequence[str], rows: Sequence[Sequence[str]],
             widths: Sequence[float] | None = None, size: float = 7.6,
             tones: Sequence[str] | None = None,
             details: Sequence[Sequence[str]] | None = None) -> None:
        """A table with a shaded header; `details[i]`, when given, prints as a small muted
        line block under row i, spanning all columns but the first."""
        self.set_font(self.family, "", size)
        self.set_draw_color(*LINE)
        self.set_fill_color(255, 255, 255)
        shares = list(widths) if widths else [1.0] * len(columns)
        caps = [_cell_cap(self.epw * w / sum(shares), size) for w in shares]
        detail_cap = _cell_cap(self.epw * sum(shares[1:]) / sum(shares), size) if shares[1:] \
            else caps[0]
        head = FontFace(emphasis="BOLD", fill_color=SOFT)
        small = FontFace(size_pt=size - 0.8, color=MUTED)
        with self.table(col_widths=tuple(widths) if widths else None, width=self.epw,
                        text_align="LEFT", v_align="TOP", line_height=size * 0.48,
                        headings_style=head,
                        borders_layout="HORIZONTAL_LINES", padding=(0.8, 1, 0.8, 1),
                        cell_fill_mode=TableCellFillMode.NONE) as table:
            header = table.row()
            for c in columns:
                header.cell(self.t(c))
            for i, cells in enumerate(rows):
                row = table.row()
                tone = tones[i] if tones else ""
                for j, cell in enumerate(cells):
                    style = None
                    if j == 0 and tone in TONES:
                        style = FontFace(emphasis="BOLD", color=TONES[tone])
                    row.cell(self.t(_clip(cell, caps[j])), style=style)
                lines = details[i] if details else []
                if lines and len(columns) > 1:
                    for block in _blocks([f"· {_clip(d, detail_cap)}" for d in lines],
                                         detail_cap):
                        extra = table.row()
                        extra.cell("")
                        extra.cell(self.t(block), style=small, colspan=len(columns) - 1)
        self.ln(1.5)

    def figure(self, fig: Figure | None) -> None:
        if fig is None:
            return
        png = charts.to_png(fig, dpi=200)
        width_in, height_in = fig.get_size_inches()
        w = min(self.epw, width_in * 25.4)
        h = w * height_in / width_in
        if self.will_page_break(h):
            self.add_page()
        self.image(io.BytesIO(png), x=self.l_margin + (self.epw - w) / 2, w=w, h=h)
        self.ln(1)


MAX_CELL_LINES = 40  # a table row must fit on one page: longer text is clipped, with a note


def _cell_cap(width_mm: float, size: float) -> int:
    """How many characters fit in MAX_CELL_LINES lines of a column `width_mm` wide."""
    per_line = max(8, int(width_mm / (size * 0.21)))
    return per_line * MAX_CELL_LINES


def _clip(text: str, cap: int) -> str:
    """`text`, or its start and a note saying how much is left out (the HTML and JSON
    outputs hold it whole)."""
    if len(text) <= cap:
        return text
    return (f"{text[:cap - 90]}… [{len(text) - cap + 90:,} more characters: see the HTML or "
            "JSON output]")


def _blocks(lines: Sequence[str], cap: int) -> list[str]:
    """Detail lines grouped into table rows of at most `cap` characters each."""
    out: list[str] = []
    for line in lines:
        if out and len(out[-1]) + len(line) + 1 <= cap and out[-1].count("\n") < 20:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def _rows_with_details(doc: _Doc, columns: Sequence[str], rows: Sequence[Row],
                       widths: Sequence[float] | None = None) -> None:
    """A table of `Row`s: detail lines (reasons, evidence) under each row, sources last."""
    with_sources = any(x.sources for x in rows)
    cells = [list(r.cells) + (["\n".join(r.sources)] if with_sources else []) for r in rows]
    cols = list(columns) + (["Sources"] if with_sources else [])
    doc.grid(cols, cells, widths, tones=[r.tone for r in rows],
             details=[r.details for r in rows])


def _clinician(doc: _Doc, r: ClinicianReport, patient: Patient, a: Assessment) -> None:
    doc.add_page()
    doc.h1("TRD staging and decision-support report")
    doc.para(r.patient_line, 9, colour=MUTED)
    doc.para(r.episode_line, 9, colour=MUTED)
    doc.ln(2)
    doc.box(r.disclaimer, "Decision-support notice.")

    doc.h2("At a glance")
    doc.grid(["Model", "Result"], [[n, v] for n, v in r.headline], widths=(40, 60), size=8.4)

    doc.h2("Alerts")
    if not r.advice_ran:
        doc.para(r.not_available, 8.8, "I", MUTED)
    elif not r.alerts:
        doc.para("No alert was raised for the current treatment or the options listed.", 8.8)
    else:
        _rows_with_details(doc, ["Severity", "Alert"], r.alerts, widths=(14, 66, 20))

    doc.h2("Staging across models")
    doc.grid(["Model", "Stage / score", "Reasons", "Sources"],
             [[s.name, s.result, "\n".join(f"· {x}" for x in s.reasons), "\n".join(s.sources)]
              for s in r.staging], widths=(19, 21, 44, 16))

    doc.h2("Treatment timeline")
    span = charts.shared_span(patient, a)
    doc.para("Each antidepressant trial is a bar coloured by mechanism class: solid when "
             "adequate, hatched when not; the outcome is written at its end. Added agents are "
             "thin grey bars under their trial; ECT and other courses follow. Faded bars are "
             "outside the assessment's scope.", 7.8, colour=MUTED)
    doc.figure(charts.timeline_figure(a, "clinician", span=span))
    doc.h3("Antidepressant trials")
    if r.trials:
        _rows_with_details(doc, TRIAL_COLUMNS, r.trials,
                           widths=(5, 13, 12, 12, 7, 10, 10, 10, 12, 9))
    else:
        doc.para("No antidepressant trial recorded.", 8.8, "I", MUTED)
    doc.h3("ECT courses")
    if r.ect:
        _rows_with_details(doc, ECT_COLUMNS, r.ect, widths=(10, 40, 12, 10, 16, 12))
    else:
        doc.para("No ECT course recorded.", 8.8, "I", MUTED)
    doc.h3("Other courses")
    if r.courses:
        _rows_with_details(doc, COURSE_COLUMNS, r.courses, widths=(14, 26, 20, 12, 28))
    else:
        doc.para("No other course recorded.", 8.8, "I", MUTED)

    doc.h2("Symptoms over time")
    symptom = charts.symptom_figure(patient, a, "clinician", span=span)
    if symptom is None:
        doc.para("No rating-scale reading recorded in the current episode.", 8.8, "I", MUTED)
    else:
        doc.figure(symptom)
        for note in r.scale_notes:
            doc.para(note, 7.8, colour=MUTED)
    if r.monitoring or r.monitoring_trials or r.monitoring_notes:
        doc.h3("Monitoring")
        if r.monitoring:
            _rows_with_details(doc, MONITORING_COLUMNS, r.monitoring)
        if r.monitoring_trials:
            _rows_with_details(doc, MONITORING_TRIAL_COLUMNS, r.monitoring_trials)
        doc.bullets(r.monitoring_notes, 7.8, colour=MUTED)
    elif not r.advice_ran:
        doc.h3("Monitoring")
        doc.para(r.not_available, 8.8, "I", MUTED)

    doc.h2("Next steps to consider")
    if not r.advice_ran:
        doc.para(r.not_available, 8.8, "I", MUTED)
    elif not r.options:
        doc.para("No option was ranked for this history.", 8.8)
    else:
        doc.para("Ranked options; each guideline's grade is quoted in its own vocabulary. "
                 "Options blocked by a contraindication stay listed with the reason.", 7.8,
                 colour=MUTED)
        for o in r.options:
            if doc.will_page_break(14):
                doc.add_page()
            title = f"{o.rank}. {o.label} ({o.category})"
            if o.sources:
                title += f"  [{', '.join(o.sources)}]"
            doc.para(title, 9, "B", MUTED if o.blocked else INK)
            if o.blocked:
                doc.para(f"Blocked: {o.blocked}", 8.6, "B", TONES["contraindicated"])
            lines = list(o.rationale)
            lines += [f"Dose: {o.dose}"] if o.dose else []
            lines += o.grades
            lines += [f"Why at this stage: {o.design_basis}"] if o.design_basis else []
            lines += [o.previously_tried] if o.previously_tried else []
            lines += [f"Alert: {x}" for x in o.alerts]
            lines += [f"Pharmacogenomics: {x}" for x in o.pharmacogenomics]
            doc.bullets(lines, 8.2)
            doc.ln(1)
        if r.more_options:
            doc.h3("Further options")
            doc.grid(["#", "Option", "Category", "Grades", "Sources"],
                     [[str(o.rank), o.label + (f"\n{o.previously_tried}" if o.previously_tried
                                               else ""), o.category, o.grades_short,
                       "\n".join(o.sources)] for o in r.more_options],
                     widths=(4, 28, 15, 35, 18))

    doc.h2("Reassessment checklist")
    if not r.advice_ran:
        doc.para(r.not_available, 8.8, "I", MUTED)
    elif not r.checklist:
        doc.para("No checklist item.", 8.8)
    else:
        _rows_with_details(doc, CHECKLIST_COLUMNS, r.checklist, widths=(16, 56, 10, 18))

    doc.h2("Caveats")
    if not r.caveats:
        doc.para("No model reported a caveat.", 8.8)
    for name, lines in r.caveats:
        doc.h3(name)
        doc.bullets(lines, 8.2)
    if r.warnings:
        doc.h3("Input warnings")
        doc.bullets(r.warnings, 8.2)

    doc.h2("Sources")
    doc.bullets([c for _, c in r.references], 7.4, colour=MUTED)
    doc.para("Tags: V verified, S secondary, U unverified, D derived, A project assumption.",
             7.4, colour=MUTED)
    doc.ln(3)
    doc.box(r.disclaimer, "Decision support, not a medical device.")


def _patient(doc: _Doc, s: PatientSummary, patient: Patient, a: Assessment) -> None:
    doc.add_page()
    doc.h1(s.title)
    doc.para(s.patient_line, 10, colour=MUTED)
    doc.ln(2)
    if s.urgent:
        doc.box(s.safety, s.urgent, fill=(253, 240, 238), border=TONES["contraindicated"],
                size=11)
    doc.box(" ".join(s.disclaimer[1:]), s.disclaimer[0], size=10.5)
    doc.para(s.intro, 11.5, h=6)
    doc.h2("What has been tried")
    doc.bullets(s.treatments or ["No treatment is recorded yet."], 11)
    doc.h2("What your stage means")
    doc.para(s.stage_intro, 11.5, h=6)
    doc.ln(1)
    doc.para(f"{s.stage_heading}: stage {s.stage_number}.", 11.5, "B", h=6)
    doc.para(s.stage_text, 11.5, h=6)
    doc.ln(1)
    doc.para(s.definition_text, 11.5, h=6)
    if s.maudsley_text:
        doc.ln(1)
        doc.para(s.maudsley_text, 11.5, h=6)
    if s.symptoms_intro:
        doc.h2("How your symptoms changed")
        doc.para(s.symptoms_intro, 11.5, h=6)
        doc.figure(charts.symptom_figure(patient, a, "patient",
                                         span=charts.shared_span(patient, a)))
        doc.bullets(s.symptom_lines, 11)
    doc.h2("What the options are")
    if s.options:
        doc.para(s.options_intro, 11.5, h=6)
        doc.bullets([o.explanation + (f" For example: {'; '.join(o.names)}." if o.names else "")
                     for o in s.options], 11)
    else:
        doc.para(s.options_none, 11.5, h=6)
    if s.blocked_note:
        doc.para(s.blocked_note, 11.5, h=6)
    doc.h2("Talk with your clinician")
    doc.bullets(s.disclaimer, 11)
    doc.ln(2)
    doc.box(s.safety, fill=(253, 240, 238), border=TONES["contraindicated"], size=11)


def render_pdf(patient: Patient, assessment: Assessment,
               audience: Audience = "clinician") -> bytes:
    """The report as PDF bytes (A4)."""
    footer = (f"trdstage · {assessment.patient_id} · as of {assessment.as_of.isoformat()} · "
              "decision support, not a medical device")
    doc = _Doc(footer)
    doc.set_creator("trdstage")
    # The assessment date, not the clock: the same input gives the same bytes.
    doc.set_creation_date(datetime.combine(assessment.as_of, time(), tzinfo=UTC))
    if audience == "patient":
        doc.set_title("Your depression treatment summary")
        _patient(doc, build_patient(patient, assessment), patient, assessment)
    else:
        doc.set_title(f"TRD staging report {assessment.patient_id}")
        _clinician(doc, build_clinician(patient, assessment), patient, assessment)
    return bytes(doc.output())
