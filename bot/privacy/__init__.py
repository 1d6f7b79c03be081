"""Personal data under UU 27/2022: scrubbing it out of text, erasing a resident on request,
and keeping each kind only as long as its retention period.

- scrub: the scrubber that replaces NIK, phone numbers, e-mail addresses and names in text
- erasure: erase_contact (anonymise what the agency keeps, sweep every table), forget_unconsented
- files: scrubbing stored files (digests) that name the erased person
- purge: erasure confirmations, deleted once sent, and the scheduler's purge job
- retention: each kind of personal data deleted or anonymised once its period ends (daily job)
- media: saved photos on disk: which a complaint names, which nobody does, deleting them
"""
