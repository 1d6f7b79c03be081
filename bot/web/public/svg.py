"""Inline SVG for the public pages: the IKM trend chart and the QR code to the bot, no network.

The chart has a ``<title>`` and ``<desc>`` (the page also prints the same figures as a table),
so a screen reader reads what a sighted person sees.
"""

from __future__ import annotations

import io
from html import escape
from typing import Any

import qrcode
import qrcode.image.svg

W, H, PAD = 640, 240, 36
LO, HI = 25.0, 100.0  # the IKM scale


def trend_chart(rows: list[dict[str, Any]], title: str, desc: str) -> str:
    """A line of the IKM per quarter; quarters without a published IKM leave a gap."""
    n = max(len(rows), 1)
    step = (W - 2 * PAD) / max(n - 1, 1)

    def y(v: float) -> float:
        return H - PAD - (v - LO) / (HI - LO) * (H - 2 * PAD)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
             f'aria-labelledby="ct cd" class="chart"><title id="ct">{escape(title)}</title>'
             f'<desc id="cd">{escape(desc)}</desc>']
    for v in (25, 50, 75, 100):
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                     f'<text x="2" y="{y(v) + 4:.1f}" class="axis">{v}</text>')
    points: list[str] = []
    for i, r in enumerate(rows):
        x = PAD + i * step
        parts.append(f'<text x="{x:.1f}" y="{H - 8}" class="axis" text-anchor="middle">'
                     f'{escape(r["period"][2:])}</text>')
        if r.get("ikm") is None:
            if len(points) > 1:
                parts.append(f'<polyline points="{" ".join(points)}" class="line"/>')
            points = []
            continue
        points.append(f"{x:.1f},{y(r['ikm']):.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y(r["ikm"]):.1f}" r="5" class="dot"/>')
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(points)}" class="line"/>')
    parts.append("</svg>")
    return "".join(parts)


def qr(link: str, label: str) -> str:
    """The QR code of ``link`` as an inline SVG path (qrcode's own SVG writer)."""
    img = qrcode.make(link, image_factory=qrcode.image.svg.SvgPathImage, box_size=6, border=2)
    out = io.BytesIO()
    img.save(out)
    svg = out.getvalue().decode()
    svg = svg[svg.index("<svg"):]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" class="qr" ', 1)
