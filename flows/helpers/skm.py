"""PermenPANRB 14/2017 survey elements and Ombudsman RI maladministration categories."""

from __future__ import annotations

# The nine SKM elements in their official order. Each has a question and four labelled
# answers scored 1-4 (message ids in locales/: skm.<key>.q and skm.<key>.1 .. skm.<key>.4).
ELEMENTS: tuple[str, ...] = (
    "persyaratan",
    "prosedur",
    "waktu",
    "biaya",
    "produk",
    "kompetensi",
    "perilaku",
    "pengaduan",
    "sarana",
)
FEE_ELEMENT = ELEMENTS.index("biaya") + 1  # 1-based element number of Biaya/Tarif

# Ombudsman RI maladministration categories, plus "lainnya" (message ids: cat.<key>).
CATEGORIES: tuple[str, ...] = (
    "penundaan",
    "tidak_melayani",
    "penyimpangan",
    "pungli",
    "tidak_kompeten",
    "wewenang",
    "diskriminasi",
    "tidak_patut",
    "berpihak",
    "konflik",
    "lainnya",
)
