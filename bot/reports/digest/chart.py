"""The digest's PNG (matplotlib): the nine NRR over the grade bands and the 12-week IKM trend.

The picture stands on its own when forwarded: it names the week, the IKM with its grade and
the respondents. Numbers are written as in the text (decimal comma in Indonesian), a week
without data leaves a gap in the trend instead of a line bridging it, and the four grade bands
have clearly different colours. matplotlib is imported only when a chart is drawn, so the rest
of the bot starts without it.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from bot.i18n import TEXTS
from bot.reports import ikm
from bot.reports.digest.fmt import Fmt
from bot.reports.digest.model import DigestData
from bot.reports.digest.text import respondents, week_span
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts

# Grade bands: red, amber, blue and green, told apart at a glance (also on a dim phone).
BAND_COLORS = {"D": "#f5a9a3", "C": "#fde9a9", "B": "#c9daf8", "A": "#a8dcb0"}


def render_chart(data: DigestData, path: Path, lang: str = "id", texts: Texts = TEXTS) -> Path:
    """PNG for a phone: the nine NRR as bars over the grade bands, and the 12-week IKM trend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    f = Fmt(texts, lang)
    ticks = FuncFormatter(lambda v, _pos: f.num(v, 0 if float(v).is_integer() else 1))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 9), dpi=150, gridspec_kw={"height_ratios": [3, 2]}
    )
    fig.suptitle(f.t("digest.chart.title_week", agency=data.short_name, span=week_span(f, data))
                 + "\n" + f.t("digest.chart.headline", ikm=f.ikm(data.week_ikm),
                              respondents=respondents(f, data.respondents_week)),
                 fontsize=11, fontweight="bold")
    names = [textwrap.fill(f"{e}. {f.element(e)}", 24) for e in range(1, len(ELEMENTS) + 1)]
    exact = data.week_ikm.nrr
    values = [data.week_ikm.nrr_float(e) for e in range(1, len(ELEMENTS) + 1)]
    for lo, hi, letter in ikm.NRR_BANDS:
        top.axvspan(lo, hi, color=BAND_COLORS[letter], zorder=0)
        top.text((lo + hi) / 2 if letter != "D" else 1.9, -0.9, letter, ha="center", va="center",
                 fontsize=10, fontweight="bold", color="#555555")
    ys = list(range(len(names)))[::-1]
    focus = {fo.element for fo in data.focus}
    for y, v, e in zip(ys, values, range(1, len(ELEMENTS) + 1), strict=True):
        nrr = exact[e - 1]
        if v is None or nrr is None:
            top.text(1.05, y, f.t("digest.no_answers"), va="center", fontsize=9, color="#777777")
            continue
        top.barh(y, v - 1, left=1, color="#c0392b" if e in focus else "#2e6da4", height=0.6, zorder=2)
        top.text(v + 0.03, y, f.num(nrr), va="center", fontsize=9, zorder=3)
    top.set_yticks(ys, names, fontsize=9)
    top.set_xlim(1, 4.3)
    top.set_ylim(-1.4, len(names) - 0.4)
    top.set_xlabel(textwrap.fill(f.t("digest.chart.nrr"), 50), fontsize=9)
    top.tick_params(axis="x", labelsize=9)
    top.xaxis.set_major_formatter(ticks)

    labels = [f"{monday.day}/{monday.month}" for monday, _, _ in data.trend]
    # NaN breaks the line: a week without an IKM is a gap, not a straight line across it.
    series = [float(v) if v is not None else math.nan for _, v, _ in data.trend]
    known = [(i, v) for i, (_, v, _) in enumerate(data.trend) if v is not None]
    for lo, hi, letter in ikm.NRR_BANDS:
        bottom.axhspan(lo * 25, hi * 25, color=BAND_COLORS[letter], zorder=0)
    if known:
        bottom.plot(range(len(series)), series, marker="o", color="#2e6da4", linewidth=2, zorder=2)
        last_x, last_v = known[-1]
        bottom.annotate(f.num(last_v), (last_x, float(last_v)), textcoords="offset points",
                        xytext=(0, 8), ha="center", fontsize=9)
        low = max(25.0, min(float(v) for _, v in known) - 10)
    else:
        bottom.text(0.5, 0.5, f.t("digest.chart.no_data"), transform=bottom.transAxes, ha="center")
        low = 50.0
    bottom.set_ylim(low, 100)
    bottom.set_xlim(-0.5, len(labels) - 0.2)
    bottom.set_xticks(range(len(labels)), labels, fontsize=8, rotation=45)
    bottom.set_title(f.t("digest.chart.trend"), fontsize=11)
    bottom.set_ylabel("IKM", fontsize=9)
    bottom.yaxis.set_major_formatter(ticks)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
