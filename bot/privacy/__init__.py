"""Personal data under UU 27/2022: scrubbing it out of text, and erasing a resident on request.

- scrub: the scrubber that replaces NIK, phone numbers, e-mail addresses and names in text
- erasure: erase_contact (anonymise what the agency keeps, sweep every table), forget_unconsented
- files: scrubbing stored files (digests) that name the erased person
- purge: erasure confirmations, deleted once sent, and the scheduler's purge job
"""
