"""The report's two pictures (matplotlib PNG): the nine NRR over the grade bands, and the IKM of
this period and the ones before it. Numbers are written as in the text (decimal comma in
Indonesian); a period without an IKM is an empty slot, never a bar of zero.
"""

from __future__ import annotations

import io
import textwrap

from bot.reports import ikm
from bot.reports.digest.chart import BAND_COLORS
from bot.reports.digest.fmt import Fmt
from bot.reports.periodic.model import ReportData
from bot.reports.periodic.text import period_name
from flows.helpers.skm import ELEMENTS

DPI = 200


def _pyplot() -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def elements_png(data: ReportData, f: Fmt) -> bytes:
    """Horizontal bars of the nine NRR over the A-D bands; the weakest elements in red."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=DPI)  # type: ignore[attr-defined]
    weak = {w.element for w in data.weak}
    names = [textwrap.fill(f"U{e} {f.element(e)}", 34) for e in range(1, len(ELEMENTS) + 1)]
    ys = list(range(len(names)))[::-1]
    for lo, hi, letter in ikm.NRR_BANDS:
        ax.axvspan(lo, hi, color=BAND_COLORS[letter], zorder=0)
        ax.text((lo + hi) / 2 if letter != "D" else 1.9, len(names) - 0.3, letter, ha="center",
                fontsize=8, fontweight="bold", color="#555555")
    for y, e in zip(ys, range(1, len(ELEMENTS) + 1), strict=True):
        v = data.ikm.nrr[e - 1]
        if v is None:
            ax.text(1.05, y, f.t("digest.no_answers"), va="center", fontsize=7, color="#777777")
            continue
        ax.barh(y, float(v) - 1, left=1, height=0.6, zorder=2,
                color="#c0392b" if e in weak else "#2e6da4")
        ax.text(float(v) + 0.03, y, f.num(v), va="center", fontsize=7, zorder=3)
    ax.set_yticks(ys, names, fontsize=7)
    ax.set_xlim(1, 4.35)
    ax.set_ylim(-0.6, len(names) + 0.2)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xticks([1, 2, 3, 4], [f.num(x, 0) for x in (1, 2, 3, 4)])
    ax.set_title(f.t("report.chart.elements", period=period_name(f, data.period)), fontsize=9)
    return _save(plt, fig)


def trend_png(data: ReportData, f: Fmt) -> bytes:
    """The IKM of each of the last periods as bars over the grade bands, respondents below."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=DPI)  # type: ignore[attr-defined]
    for lo, hi, letter in ikm.NRR_BANDS:
        ax.axhspan(lo * 25, hi * 25, color=BAND_COLORS[letter], zorder=0)
    labels = []
    known = [float(v) for _, v, _ in data.trend if v is not None]
    low = max(25.0, min(known, default=60.0) - 10)
    for x, (per, value, n) in enumerate(data.trend):
        labels.append(f"{period_name(f, per)}\n({f.count(n)})")
        if value is None:
            ax.text(x, low + 2, f.t("report.chart.no_data"), ha="center", fontsize=6, color="#777777")
            continue
        ax.bar(x, float(value) - low, bottom=low, width=0.6, zorder=2,
               color="#2e6da4" if x == len(data.trend) - 1 else "#8fb3d9")
        ax.text(x, float(value) + 1, f.num(value), ha="center", fontsize=7, zorder=3)
    ax.set_ylim(low, 104)
    ax.set_xticks(range(len(labels)), labels, fontsize=6)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel("IKM", fontsize=7)
    ax.set_title(f.t("report.chart.trend"), fontsize=9)
    return _save(plt, fig)


def _save(plt: object, fig: object) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(buf, format="png", metadata={"Software": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    return buf.getvalue()
