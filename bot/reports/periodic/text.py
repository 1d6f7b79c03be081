"""The periodic report as plain text: the CLI's output, the document captions, the PDF's words.

Every renderer names periods, statuses and complaint figures through these helpers, so the
PDF, the spreadsheet and the text say the same thing in the same words.
"""

from __future__ import annotations

from bot.i18n import TEXTS
from bot.reports.digest.fmt import Fmt, shorten
from bot.reports.periodic.model import PlanLine, ReportData
from bot.reports.periodic.period import Period
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts

ROMAN = ("I", "II", "III", "IV")
CAPTION_LIMIT = 1000


def period_name(f: Fmt, period: Period) -> str:
    """"Triwulan IV 2026", "Semester II 2026", "Tahun 2026"."""
    return f.t(f"report.period.{period.kind}", n=ROMAN[period.number - 1], year=period.year)


def period_span(f: Fmt, period: Period) -> str:
    """"1 Oktober - 31 Desember 2026"."""
    first, last = period.first_day, period.last_day
    return f"{first.day} {f.t(f'digest.month.{first.month}')} - {f.day_of(last)}"


def title_of(f: Fmt, data: ReportData) -> str:
    return data.name if data.scope != "*" else f.t("report.regency")


def nrr_text(f: Fmt, data: ReportData, e: int) -> str:
    v = data.ikm.nrr[e - 1]
    return f.num(v) if v is not None else f.t("digest.no_answers")


def change(f: Fmt, data: ReportData) -> str:
    """The comparison with the previous period, in words."""
    now, before = data.ikm.value, data.prev_ikm.value
    prev = period_name(f, data.period.previous())
    if now is None or before is None:
        return f.t("report.change.none", prev=prev)
    diff = now - before
    key = "report.change.up" if diff > 0 else "report.change.down" if diff < 0 else "report.change.same"
    return f.t(key, prev=prev, before=f.num(before), diff=f.num(abs(diff)))


def plan_status(f: Fmt, line: PlanLine) -> str:
    return f.t(f"plan.status.{line.status}")


def plan_moved(f: Fmt, line: PlanLine) -> str | None:
    """"NRR 2,41 -> 2,87 (naik)" for an action done before the period, else None."""
    if line.nrr_before is None or line.nrr_after is None:
        return None
    diff = line.nrr_after - line.nrr_before
    word = f.t("report.moved.up" if diff > 0 else "report.moved.down" if diff < 0 else "report.moved.same")
    return f"NRR {f.num(line.nrr_before)} → {f.num(line.nrr_after)} ({word})"


def hours(f: Fmt, value: float | None) -> str:
    return f.t("report.none") if value is None else f.t("report.hours", n=f.num(value, 1))


def days(f: Fmt, value: float | None) -> str:
    return f.t("report.none") if value is None else f.t("report.days", n=f.num(value, 1))


def render_text(data: ReportData, lang: str = "id", texts: Texts = TEXTS) -> str:
    f = Fmt(texts, lang)
    lines = [
        f.t("report.title"),
        f"{title_of(f, data)}",
        f"{period_name(f, data.period)} ({period_span(f, data.period)})",
        "",
        f.t("report.text.ikm", ikm=f.ikm(data.ikm)),
        f.t("report.text.respondents", n=f.count(data.respondents), complete=f.count(data.complete)),
        f.t("digest.weighting_line", weighting=f.weighting(data.weighting)),
        *_sample(f, data),
        change(f, data),
        "",
        f.t("report.section.elements"),
    ]
    for e in range(1, len(ELEMENTS) + 1):
        lines.append(f"U{e} {f.element(e)}: {nrr_text(f, data, e)}")
    lines += ["", f.t("report.section.services")]
    for s in data.services:
        shown = f.ikm(s.ikm) if s.respondents else f.t("digest.respondents_none")
        prefix = f"{s.agency} · " if data.scope == "*" else ""
        lines.append(f"- {prefix}{s.name}: {shown} ({f.count(s.respondents)})")
    if data.scope == "*":
        lines += ["", f.t("report.section.agencies")]
        for a in data.agencies:
            lines.append(f"- {a.short_name}: {f.ikm(a.ikm)} ({f.count(a.respondents)})")
    lines += ["", f.t("report.section.weak")]
    if not data.weak:
        lines.append(f.t("report.weak.none"))
    for w in data.weak:
        lines.append(f"U{w.element} {f.element(w.element)}: NRR {f.num(w.nrr)}")
        if w.words:
            lines.append("  " + f.t("digest.words", words=", ".join(w.words)))
        for theme, n in w.themes:
            lines.append(f"  \"{theme}\" ({f.count(n)})")
    c = data.complaints
    lines += ["", f.t("report.section.complaints"),
              f.t("report.complaints.line", received=f.count(c.received), resolved=f.count(c.resolved),
                  within=f.count(c.within_deadline)),
              f.t("report.complaints.median", first=hours(f, c.median_first_response_hours),
                  resolution=days(f, c.median_resolution_days))]
    lines += ["", f.t("report.section.plan")]
    if not data.plan:
        lines.append(f.t("report.plan.none"))
    for p in data.plan:
        moved = plan_moved(f, p)
        lines.append(f"- U{p.element} {f.element(p.element)}: {p.what} ({p.who}, "
                     f"{f.day_of(p.due_on)}) - {plan_status(f, p)}" + (f"; {moved}" if moved else ""))
    return "\n".join(lines)


def caption(data: ReportData, lang: str = "id", texts: Texts = TEXTS) -> str:
    f = Fmt(texts, lang)
    return shorten(f.t("report.caption", title=title_of(f, data), period=period_name(f, data.period),
                       ikm=f.ikm(data.ikm), n=f.count(data.respondents)), CAPTION_LIMIT)


def _sample(f: Fmt, data: ReportData) -> list[str]:
    """"27 dari 346 responden minimum" and "not yet representative" below it (no population: nothing)."""
    sample = data.sample
    if sample is None or sample.minimum is None:
        return []
    line = f.t("digest.sample", n=f.count(sample.respondents), minimum=f.count(sample.minimum),
               population=f.count(sample.population or 0))
    return [line if sample.enough else line + " " + f.t("digest.not_representative")]
