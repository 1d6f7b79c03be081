"""The official periodic SKM report (PermenPANRB 14/2017): quarters, semesters and years.

period: periods (2026-Q4, 2026-S2, 2026) and their bounds in the agency's zone.
model: the dataclasses one report is made of.
plan: the follow-up plan (rencana tindak lanjut): storing, listing and updating actions.
themes: what residents said about the weakest elements (one scan for all of them).
data: the SQL aggregation that fills the report, for one agency or the whole regency.
text: the plain-text summary (CLI, captions).
chart: the element bar chart and the trend over the last periods (matplotlib PNG).
pdf: the signable PDF (fpdf2), one function per section.
xlsx: the data workbook (openpyxl), one function per sheet.
files: PDF and XLSX of one language written to a directory.
job: produce and queue each report once per (scope, period) when the period has ended.
"""
