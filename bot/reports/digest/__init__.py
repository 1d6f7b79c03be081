"""The weekly digest for agency heads: official IKM, what to improve, a chart, a spreadsheet.

period: weeks in agency-local time (ISO labels, UTC bounds); people see dates (fmt).
model: the dataclasses one digest is made of (DigestData and its parts).
data: the SQL aggregation that fills DigestData, and the agency lookup.
themes: frequent words and similar texts behind the weakest elements.
mask: masking of NIK, phone numbers, e-mail addresses and names in residents' texts.
fmt: numbers, dates and labels in the head's language, shared by the renderers.
text: the digest text and the chart caption.
chart: the PNG (matplotlib).
xlsx: the spreadsheet (openpyxl).
files: text, chart and spreadsheet of one language written to a directory.
job: produce and queue the digest once per (agency, week); the Monday schedule.
"""
