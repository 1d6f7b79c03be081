"""The digest as plain text for a phone screen, and the caption under the chart.

Bribery reports come first (a confidential one only counted), then the IKM of the week
against last week and the year with the weighting used, the elements below grade A with their
themes, every element and service, and the complaints. People read weeks as dates
("16-22 November 2026"), never ISO labels, and never "n/a" or "dari 0 responden".
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.i18n import TEXTS
from bot.reports import ikm
from bot.reports.digest.fmt import Fmt, shorten
from bot.reports.digest.mask import mask_personal
from bot.reports.digest.model import DigestData
from bot.reports.digest.period import week_monday
from bot.reports.sample import TREND_FLOOR, Sample
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts

TEXT_LIMIT = 4096  # Telegram message
CAPTION_LIMIT = 1024  # Telegram photo/document caption


def render_text(data: DigestData, lang: str = "id", texts: Texts = TEXTS) -> str:
    """The digest as plain text for a phone screen (split into messages by :func:`split_text`)."""
    f = Fmt(texts, lang)
    tz = ZoneInfo(data.timezone)
    parts: list[str] = [
        f.t("digest.title", agency=data.short_name) + "\n" + f.t(
            "digest.period_week", span=week_span(f, data),
            zone=data.start.astimezone(tz).tzname() or data.timezone,
        )
    ]
    bribery = data.complaints.bribery
    if bribery:
        shown = data.complaints.bribery_shown
        lines = [f.t("digest.bribery", n=len(bribery))]
        lines += [f"• {r.ticket} ({r.service}): {shorten(mask_personal(r.description, r.names), 80)}"
                  for r in shown[:5]]
        if len(shown) > 5:
            lines[-1] += f.t("digest.more", n=len(shown) - 5)
        hidden = len(bribery) - len(shown)
        if hidden:
            lines.append(f.t("digest.confidential", n=hidden))
        parts.append("\n".join(lines))

    w, p = data.week_ikm, data.prev_ikm
    if data.respondents_week == 0 and not data.week_tallies:
        parts.append(f.t("digest.no_responses"))
    else:
        lines = [f.t("digest.ikm_week_n", ikm=f.ikm(w),
                     respondents=respondents(f, data.respondents_week, "digest.respondents_from"))]
        if w.missing:
            lines.append(f.t("digest.ikm_missing", elements=", ".join(f.element(e) for e in w.missing)))
        lines += _sample(f, data.sample_week)
        if w.value is not None and p.value is not None and not data.trend_ok:
            lines.append(f.t("digest.change_few", prev=f.num(p.value), floor=TREND_FLOOR))
        elif w.value is not None and p.value is not None:
            delta = w.value - p.value
            key = "digest.change_up" if delta > 0 else "digest.change_down" if delta < 0 else "digest.change_same"
            lines.append(f.t(key, prev=f.num(p.value), delta=f.num(abs(delta))))
        else:
            lines.append(f.t("digest.change_none"))
        parts.append("\n".join(lines))
    parts.append("\n".join([
        f.t("digest.ikm_ytd_n", since=f.day_of(data.ytd_from), ikm=f.ikm(data.ytd_ikm),
            respondents=respondents(f, data.respondents_ytd, "digest.respondents_from")),
        *_sample(f, data.sample_ytd),
        f.t("digest.weighting_line", weighting=f.weighting(data.weighting))]))

    if data.week_tallies and not data.focus and not w.missing:  # every element rated, all A
        parts.append(f.t("digest.focus_none", target=f.t("digest.target.grade_a")))
    if data.focus:
        lines = [f.t("digest.focus_below", target=f.t("digest.target.grade_a"))]
        for i, fo in enumerate(data.focus, 1):
            lines.append(f"{i}. {f.element(fo.element)}: NRR {f.num(fo.nrr)}")
            if fo.words:
                lines.append("   " + f.t("digest.words", words=", ".join(fo.words)))
            for theme, count in fo.themes:
                lines.append("   " + f.t("digest.theme", text=theme, n=count))
        parts.append("\n".join(lines))

    if data.plans:  # the follow-up plan, one line per action, by element (/rencana)
        items = [f"U{p.element} {shorten(p.what, 60)} ({p.who}, {p.due_on:%d-%m-%Y}, "
                 f"{f.t(f'plan.status.{p.status}')})" for p in data.plans[:5]]
        parts.append(f.t("digest.plan", items="; ".join(items)))

    if data.week_tallies:
        lines = [f.t("digest.nrr_all")]
        for e in range(1, len(ELEMENTS) + 1):
            nrr = data.week_tallies.get(e, ikm.ElementTally()).nrr
            lines.append(f"{e}. {f.element(e)}: " + (f.num(nrr) if nrr is not None else f.t("digest.no_answers")))
        parts.append("\n".join(lines))

    rated = [s for s in data.services if s.respondents_week or s.respondents_ytd]
    if rated:
        lines = [f.t("digest.services")]
        for s in rated:
            lines.append(f.t("digest.service_line", name=s.title(f.lang),
                             week=_brief(f, s.week, s.respondents_week),
                             ytd=_brief(f, s.ytd, s.respondents_ytd)))
        parts.append("\n".join(lines))

    if data.kiosks:  # counter tablets: counts, and a burst that may be ballot stuffing
        lines = [f.t("digest.kiosks", items=", ".join(
            f"{k.name} ({k.service_en if f.lang == 'en' else k.service}) {f.count(k.count)}" for k in data.kiosks))]
        lines += [f.t("digest.kiosk_burst", name=k.name, n=k.burst[0],
                      at=f"{k.burst[1].astimezone(tz):%d-%m-%Y %H.%M} {k.burst[1].astimezone(tz).tzname()}")
                  for k in data.kiosks if k.burst]
        parts.append("\n".join(lines))

    c = data.complaints
    lines = [f.t("digest.complaints", new=c.new, resolved=c.resolved, open=c.open,
                 overdue=c.overdue)]
    if c.overdue_cases:
        lines.append(f.t("digest.cases_overdue", n=c.overdue_cases))
    if c.median_days is not None:
        lines.append(f.t("digest.median", days=f.num(c.median_days, 1)))
    if c.by_category:
        lines.append(f.t("digest.by_category", items=", ".join(
            f"{f.t(f'cat.{cat}')} {n}" for cat, n in c.by_category)))
    if c.by_service:
        lines.append(f.t("digest.by_service", items=", ".join(
            f"{(f.lang == 'en' and c.names_en.get(name)) or name} {n}" for name, n in c.by_service)))
    parts.append("\n".join(lines))
    parts.append(f.t("digest.footer_masked"))
    return "\n\n".join(parts)


def _sample(f: Fmt, sample: Sample | None) -> list[str]:
    """"27 dari 346 responden minimum", and "not yet representative" below it (no population: nothing)."""
    if sample is None or sample.minimum is None:
        return []
    line = f.t("digest.sample", n=f.count(sample.respondents), minimum=f.count(sample.minimum),
               population=f.count(sample.population or 0))
    return [line if sample.enough else line + " " + f.t("digest.not_representative")]


def _brief(f: Fmt, value: ikm.Ikm, n: int) -> str:
    if not n and value.value is None:
        return f.t("digest.respondents_none")
    shown = f.num(value.value) + f" {value.grade}" if value.value is not None else f.t("digest.no_data")
    return f"{shown} ({f.count(n)})"


def respondents(f: Fmt, n: int, key: str = "digest.respondents") -> str:
    """"27 responden" ("dari 27 responden" with digest.respondents_from), or "belum ada
    responden" (never "dari 0 responden")."""
    return f.t(key, n=f.count(n)) if n else f.t("digest.respondents_none")


def week_span(f: Fmt, data: DigestData) -> str:
    """The digest's week as people write it ("23-29 November 2026"), never "2026-W48"."""
    return f.week(week_monday(data.week))



def caption(data: DigestData, lang: str = "id", texts: Texts = TEXTS) -> str:
    f = Fmt(texts, lang)
    return shorten(f.t("digest.caption_week", agency=data.short_name, span=week_span(f, data),
                       ikm=f.ikm(data.week_ikm), respondents=respondents(f, data.respondents_week)),
                   CAPTION_LIMIT)
