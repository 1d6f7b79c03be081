"""The respondent profile of the SKM questionnaire (PermenPANRB 14/2017, its lampiran).

The official form asks jenis kelamin, umur, pendidikan terakhir and pekerjaan. Age is asked
as a band (a resident need not give a birth date); education and occupation follow the form's
lists (pelajar/mahasiswa added: many residents who renew a KTP or ask for a certificate are
students). Every question may be skipped: the answer is then stored as not given (NULL).
Message ids: ``profile.<field>.q`` and ``profile.<field>.<code>``.
"""

from __future__ import annotations

FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gender", ("l", "p")),
    ("age", ("u20", "20-29", "30-39", "40-49", "50-59", "60+")),
    ("education", ("sd", "smp", "sma", "d1-d3", "d4-s1", "s2")),
    ("job", ("pns", "tni-polri", "swasta", "wirausaha", "pelajar", "lainnya")),
)
FIELD_NAMES = tuple(name for name, _ in FIELDS)
CODES: dict[str, tuple[str, ...]] = dict(FIELDS)
