"""The signable PDF of the periodic report (fpdf2), one function per section.

``SECTIONS`` lists the section functions in their printed order; each takes the document being
built and adds its heading, tables and pictures. A new section (for example the respondent
profile or the minimum sample) is one more function and one more entry in the list.

Text is set in DejaVu Sans, taken from matplotlib's own data folder (matplotlib is already a
dependency), so Indonesian text, "≥" and "→" render without downloading a font. The document
carries no creation time in its visible text; rebuilding it from the same database gives the
same pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from io import BytesIO
from pathlib import Path
from typing import Any

from bot.i18n import TEXTS
from bot.reports import ikm
from bot.reports.digest.fmt import Fmt
from bot.reports.periodic import chart
from bot.reports.periodic.model import ReportData
from bot.reports.periodic.text import (
    change,
    days,
    hours,
    nrr_text,
    period_name,
    period_span,
    plan_moved,
    plan_status,
    title_of,
)
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts

FONT = "DejaVu"
MARGIN = 18
BLUE = (46, 109, 164)
# PermenPANRB 14/2017: perception value, NRR interval, IKM interval, grade (mutu); the unit's
# performance (kinerja) is the grade's label.
GRADE_TABLE = (
    ("1", "1,00 - 2,5996", "25,00 - 64,99", "D"),
    ("2", "2,60 - 3,064", "65,00 - 76,60", "C"),
    ("3", "3,0644 - 3,532", "76,61 - 88,30", "B"),
    ("4", "3,5324 - 4,00", "88,31 - 100,00", "A"),
)


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@dataclass
class Doc:
    pdf: Any
    data: ReportData
    f: Fmt

    @property
    def width(self) -> float:
        return float(self.pdf.epw)

    def heading(self, key: str) -> None:
        pdf = self.pdf
        if pdf.get_y() > pdf.h - 60:
            pdf.add_page()
        pdf.ln(3)
        pdf.set_font(FONT, "B", 11.5)
        pdf.set_text_color(*BLUE)
        pdf.multi_cell(0, 6.5, self.f.t(key), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font(FONT, "", 9.5)
        pdf.ln(1)

    def para(self, text: str, size: float = 9.5, style: str = "") -> None:
        self.pdf.set_font(FONT, style, size)
        self.pdf.multi_cell(0, 5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(FONT, "", 9.5)

    def table(self, rows: Sequence[Sequence[str]], widths: Sequence[float],
              align: Sequence[str] | None = None, bold_last: bool = False, header: bool = True) -> None:
        pdf = self.pdf
        # keep a table of up to a dozen rows on one page (rows are about 6 mm)
        height = 6.2 * len(rows)
        if height < 80 and pdf.get_y() + height > pdf.h - pdf.b_margin:
            pdf.add_page()
        pdf.set_font(FONT, "", 8.5)
        with pdf.table(col_widths=tuple(widths), text_align=tuple(align or ["LEFT"] * len(widths)),
                       first_row_as_headings=header, line_height=4.6, padding=1.2,
                       headings_style=_headings(), width=self.width) as table:
            for i, row in enumerate(rows):
                r = table.row()
                for value in row:
                    if bold_last and i == len(rows) - 1:
                        from fpdf.fonts import FontFace

                        r.cell(value, style=FontFace(emphasis="BOLD"))
                    else:
                        r.cell(value)
        pdf.set_font(FONT, "", 9.5)
        pdf.ln(2)

    def image(self, png: bytes, height: float) -> None:
        pdf = self.pdf
        if pdf.get_y() + height > pdf.h - pdf.b_margin:
            pdf.add_page()
        pdf.image(BytesIO(png), x=pdf.l_margin, w=self.width, h=height, keep_aspect_ratio=True)
        pdf.ln(2)


def _headings() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(220, 230, 242))


def _ikm_words(d: Doc, value: ikm.Ikm) -> str:
    return d.f.ikm(value) if value.value is not None else d.f.t("digest.no_data")


def identity(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.identity")
    rows = [
        [f.t("report.field.agency"), title_of(f, data)],
        [f.t("report.field.period"), period_name(f, data.period)],
        [f.t("report.field.dates"), period_span(f, data.period)],
        [f.t("report.field.timezone"), data.timezone],
    ]
    d.table(rows, (45, 125), header=False)


def method(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.method")
    d.para(f.t("report.method.text"))
    d.pdf.ln(1)
    rows = [
        [f.t("report.field.respondents"), f.count(data.respondents)],
        [f.t("report.field.complete"), f.count(data.complete)],
        [f.t("report.field.weighting"), f.weighting(data.weighting)],
    ]
    sample = data.sample
    if sample is not None and sample.minimum is not None:
        rows += [
            [f.t("report.field.population"), f.count(sample.population or 0)],
            [f.t("report.field.minimum"), f.count(sample.minimum)],
        ]
    d.table(rows, (90, 80), header=False)
    if sample is not None and sample.minimum is not None:
        line = f.t("digest.sample", n=f.count(sample.respondents), minimum=f.count(sample.minimum),
                   population=f.count(sample.population or 0))
        d.para(line if sample.enough else line + " " + f.t("digest.not_representative"))
    else:
        d.para(f.t("report.sample.no_population"))


def profile(d: Doc) -> None:
    """Respondents and IKM per group of the respondent profile; a group under 5 is not shown."""
    f, data = d.f, d.data
    if not data.profile:
        return
    d.heading("report.section.profile")
    for name, groups in data.profile.items():
        rows = [[f.t(f"profile.{name}.title"), f.t("report.col.respondents"), "IKM"]]
        for g in groups:
            label = f.t(f"profile.{name}.{g.code}") if g.code else f.t("report.profile.not_stated")
            rows.append([label, g.shown, f.ikm(g.ikm) if g.ikm is not None and g.ikm.value is not None
                         else "-"])
        d.table(rows, (80, 40, 50), align=("LEFT", "RIGHT", "RIGHT"))
    d.para(f.t("report.profile.note"), size=8.5)


def _weight(data: ReportData) -> Fraction:
    return ikm.WEIGHTS[data.weighting]


def elements(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.elements")
    d.image(chart.elements_png(data, f), 88)
    rows = [[f.t("report.col.code"), f.t("report.col.element"), f.t("report.col.answered"),
             f.t("report.col.skipped"), "NRR", f.t("report.col.nrr_weighted")]]
    weighted_sum = Fraction(0)
    for e in range(1, len(ELEMENTS) + 1):
        t = data.tallies.get(e, ikm.ElementTally())
        v = data.ikm.nrr[e - 1]
        weighted = "-" if v is None else f.num(v * _weight(data), 3)
        if v is not None:
            weighted_sum += v * _weight(data)
        rows.append([f"U{e}", f.element(e), f.count(t.answered), f.count(data.skipped.get(e, 0)),
                     nrr_text(f, data, e), weighted])
    rows.append(["", f.t("report.ikm.sum"), "", "", "", f.num(weighted_sum, 3)])
    d.table(rows, (12, 74, 20, 20, 18, 26), ("CENTER", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
            bold_last=True)


def ikm_section(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.ikm")
    if data.ikm.value is None:
        d.para(f.t("report.ikm.unavailable", elements=", ".join(f"U{e}" for e in data.ikm.missing)), style="B")
    else:
        rows = [
            [f.t("report.ikm.value"), f.num(data.ikm.value)],
            [f.t("report.ikm.mutu"), str(data.ikm.grade)],
            [f.t("report.ikm.kinerja"), f.t(f"digest.grade.{data.ikm.grade}")],
        ]
        d.pdf.set_font(FONT, "B", 11)
        d.table(rows, (110, 60), ("LEFT", "CENTER"), header=False)
    d.para(f.t("report.grade_table"), size=8.5, style="B")
    rows = [[f.t("report.col.perception"), f.t("report.col.nrr_interval"), f.t("report.col.ikm_interval"),
             f.t("report.col.mutu"), f.t("report.col.kinerja")]]
    for value, nrr, ikm_range, letter in GRADE_TABLE:
        nrr_shown = nrr if f.lang == "id" else nrr.replace(",", ".")
        ikm_shown = ikm_range if f.lang == "id" else ikm_range.replace(",", ".")
        rows.append([value, nrr_shown, ikm_shown, letter, f.t(f"digest.grade.{letter}")])
    d.table(rows, (24, 38, 40, 24, 44), ("CENTER",) * 5)


def services(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.services")
    regency = data.scope == "*"
    if regency:
        rows = [[f.t("report.col.agency"), f.t("report.col.respondents"), "IKM", f.t("report.col.grade")]]
        for a in data.agencies:
            rows.append([a.name, f.count(a.respondents), _num(f, a.ikm.value), a.ikm.grade or "-"])
        d.para(f.t("report.section.agencies"), style="B")
        d.table(rows, (100, 25, 25, 20), ("LEFT", "RIGHT", "RIGHT", "CENTER"))
    head = [f.t("report.col.service"), f.t("report.col.respondents"), "IKM", f.t("report.col.grade")]
    rows = [([f.t("report.col.agency")] if regency else []) + head]
    for s in data.services:
        rows.append(([s.agency] if regency else []) + [s.name, f.count(s.respondents), _num(f, s.ikm.value),
                                                        s.ikm.grade or "-"])
    widths = (36, 70, 24, 20, 20) if regency else (100, 25, 25, 20)
    d.table(rows, widths, (("LEFT",) if regency else ()) + ("LEFT", "RIGHT", "RIGHT", "CENTER"))


def _num(f: Fmt, value: Decimal | None) -> str:
    return f.num(value) if value is not None else "-"


def trend(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.trend")
    d.para(change(f, data))
    d.pdf.ln(1)
    d.image(chart.trend_png(data, f), 72)
    rows = [[f.t("report.col.code"), f.t("report.col.element"), period_name(f, data.period.previous()),
             period_name(f, data.period)]]
    for e in range(1, len(ELEMENTS) + 1):
        before = data.prev_tallies.get(e, ikm.ElementTally()).nrr
        now = data.ikm.nrr[e - 1]
        rows.append([f"U{e}", f.element(e), f.num(before) if before is not None else "-",
                     f.num(now) if now is not None else "-"])
    d.table(rows, (12, 98, 30, 30), ("CENTER", "LEFT", "RIGHT", "RIGHT"))


def weak(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.weak")
    if not data.weak:
        d.para(f.t("report.weak.none"))
        return
    d.para(f.t("report.weak.intro"), size=8.5)
    for w in data.weak:
        d.pdf.ln(1)
        d.para(f"U{w.element} {f.element(w.element)}: NRR {f.num(w.nrr)}", style="B")
        said = False
        if w.words:
            d.para(f.t("digest.words", words=", ".join(w.words)))
            said = True
        for theme, n in w.themes:
            d.para(f"• \"{theme}\" ({f.count(n)})")
            said = True
        if not said:
            d.para(f.t("report.weak.nothing_said"))
        for p in data.plan:
            if p.element == w.element:
                d.para(f"→ {p.what} ({p.who}, {f.day_of(p.due_on)}): {plan_status(f, p)}", size=8.5)


def complaints(d: Doc) -> None:
    f, c = d.f, d.data.complaints
    d.heading("report.section.complaints")
    rows = [
        [f.t("report.complaints.received"), f.count(c.received)],
        [f.t("report.complaints.resolved"), f.count(c.resolved)],
        [f.t("report.complaints.within"), f.count(c.within_deadline)],
        [f.t("report.complaints.first"), hours(f, c.median_first_response_hours)],
        [f.t("report.complaints.resolution"), days(f, c.median_resolution_days)],
    ]
    if c.by_category:
        rows.append([f.t("report.complaints.by_category"),
                     ", ".join(f"{f.t(f'cat.{k}')} {n}" for k, n in c.by_category)])
    d.table(rows, (80, 90), header=False)


def plan(d: Doc) -> None:
    f, data = d.f, d.data
    d.heading("report.section.plan")
    if not data.plan:
        d.para(f.t("report.plan.none"))
        return
    rows = [[f.t("report.col.code"), f.t("report.col.what"), f.t("report.col.who"), f.t("report.col.due"),
             f.t("report.col.status"), f.t("report.col.done")]]
    for p in data.plan:
        done = p.done_text or ""
        moved = plan_moved(f, p)
        if moved:
            done = f"{done}\n{moved}".strip()
        what = p.what + f"\n({p.service or f.t('plan.all_services')})"
        rows.append([f"U{p.element}", what, p.who, f.day_of(p.due_on), plan_status(f, p), done])
    d.table(rows, (12, 50, 26, 24, 25, 33), ("CENTER", "LEFT", "LEFT", "LEFT", "LEFT", "LEFT"))


def publication(d: Doc) -> None:
    f, data = d.f, d.data
    if d.pdf.get_y() > d.pdf.h - 105:  # the statement and the signature on one page
        d.pdf.add_page()
    d.heading("report.section.publication")
    d.para(f.t("report.publication", agency=title_of(f, data)))
    d.para(f.t("report.masked"), size=8)
    pdf = d.pdf
    pdf.ln(8)
    x = pdf.l_margin + d.width * 0.5
    role = f.t("report.signature.role", agency=data.name) if data.scope != "*" else f.t("report.signature.role_all")
    for text, gap in ((f.t("report.signature.place"), 0), (role, 22), (f.t("report.signature.name"), 0),
                      (f.t("report.signature.nip"), 0)):
        pdf.set_x(x)
        pdf.multi_cell(d.width * 0.5, 5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)


Section = Callable[[Doc], None]
SECTIONS: list[Section] = [identity, method, profile, elements, ikm_section, services, trend, weak, complaints,
                           plan, publication]


def render_pdf(data: ReportData, path: Path, lang: str = "id", texts: Texts = TEXTS,
               sections: Sequence[Section] = SECTIONS, created: datetime | None = None) -> Path:
    from fpdf import FPDF

    f = Fmt(texts, lang)

    class Report(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(FONT, "", 7.5)
            self.set_text_color(110, 110, 110)
            self.cell(0, 5, f.t("report.footer", page=self.page_no()), align="C")

    pdf = Report(format="A4")
    pdf.set_margins(MARGIN, 16, MARGIN)
    pdf.set_auto_page_break(True, 18)
    fonts = font_dir()
    pdf.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
    title = f"{f.t('report.title')} - {title_of(f, data)} - {period_name(f, data.period)}"
    pdf.set_title(title)
    pdf.set_author("Prima")
    pdf.set_creator("Prima")
    if created is not None:
        pdf.set_creation_date(created)
    pdf.add_page()
    pdf.set_font(FONT, "B", 14)
    pdf.multi_cell(0, 7, f.t("report.title"), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "B", 12)
    pdf.multi_cell(0, 6.5, title_of(f, data).upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    pdf.multi_cell(0, 5.5, f"{period_name(f, data.period)} ({period_span(f, data.period)})", align="C",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 8.5)
    pdf.multi_cell(0, 5, f.t("report.subtitle"), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_draw_color(*BLUE)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0, 0, 0)
    pdf.ln(2)
    pdf.set_font(FONT, "B", 12)
    pdf.multi_cell(0, 7, f"IKM: {_ikm_words(Doc(pdf, data, f), data.ikm)}", align="C",
                   new_x="LMARGIN", new_y="NEXT")
    doc = Doc(pdf, data, f)
    for section in sections:
        section(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
