"""The digest's PNG (matplotlib): the nine NRR over the grade bands and the 12-week IKM trend.

matplotlib is imported only when a chart is drawn, so the rest of the bot starts without it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from bot.i18n import TEXTS
from bot.reports import ikm
from bot.reports.digest.fmt import Fmt
from bot.reports.digest.model import DigestData
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts


def render_chart(data: DigestData, path: Path, lang: str = "id", texts: Texts = TEXTS) -> Path:
    """PNG for a phone: the nine NRR as bars over the grade bands, and the 12-week IKM trend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = Fmt(texts, lang)
    band_colors = {"D": "#f4c7c3", "C": "#fce8b2", "B": "#d9ead3", "A": "#b7e1cd"}
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 9), dpi=150, gridspec_kw={"height_ratios": [3, 2]}
    )
    fig.suptitle(f.t("digest.chart.title", agency=data.short_name, week=data.week), fontsize=13,
                 fontweight="bold")
    names = [textwrap.fill(f"{e}. {f.element(e)}", 24) for e in range(1, len(ELEMENTS) + 1)]
    values = [data.week_ikm.nrr_float(e) for e in range(1, len(ELEMENTS) + 1)]
    for lo, hi, letter in ikm.NRR_BANDS:
        top.axvspan(lo, hi, color=band_colors[letter], zorder=0)
        top.text((lo + hi) / 2 if letter != "D" else 1.9, -0.9, letter, ha="center", va="center",
                 fontsize=10, fontweight="bold", color="#555555")
    ys = list(range(len(names)))[::-1]
    focus = {fo.element for fo in data.focus}
    for y, v, e in zip(ys, values, range(1, len(ELEMENTS) + 1), strict=True):
        if v is None:
            top.text(1.05, y, f.t("digest.no_answers"), va="center", fontsize=9, color="#777777")
            continue
        top.barh(y, v - 1, left=1, color="#c0392b" if e in focus else "#2e6da4", height=0.6, zorder=2)
        top.text(v + 0.03, y, f.num(v), va="center", fontsize=9, zorder=3)
    top.set_yticks(ys, names, fontsize=9)
    top.set_xlim(1, 4.3)
    top.set_ylim(-1.4, len(names) - 0.4)
    top.set_xlabel(textwrap.fill(f.t("digest.chart.nrr"), 50), fontsize=9)
    top.tick_params(axis="x", labelsize=9)

    labels = [w[-3:] for w, _, _ in data.trend]
    points = [(i, float(v)) for i, (_, v, _) in enumerate(data.trend) if v is not None]
    for lo, hi, letter in ikm.NRR_BANDS:
        bottom.axhspan(lo * 25, hi * 25, color=band_colors[letter], zorder=0)
    if points:
        xs, vs = zip(*points, strict=True)
        bottom.plot(xs, vs, marker="o", color="#2e6da4", linewidth=2, zorder=2)
        bottom.annotate(f.num(vs[-1]), (xs[-1], vs[-1]), textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=9)
        low = max(25.0, min(vs) - 10)
    else:
        bottom.text(0.5, 0.5, f.t("digest.chart.no_data"), transform=bottom.transAxes, ha="center")
        low = 50.0
    bottom.set_ylim(low, 100)
    bottom.set_xlim(-0.5, len(labels) - 0.2)
    bottom.set_xticks(range(len(labels)), labels, fontsize=8, rotation=45)
    bottom.set_title(f.t("digest.chart.trend"), fontsize=11)
    bottom.set_ylabel("IKM", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
