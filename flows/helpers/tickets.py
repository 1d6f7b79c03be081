"""Ticket numbers: eight Crockford base-32 characters shown as ``K7QM-3XHD``.

Easy to read aloud (no I/L/O/U), 32^8 ≈ 1.1e12 values so they cannot be guessed, and
forgiving when typed back: case, spaces, dashes and look-alike letters are normalised.
Generation needs randomness, so it lives in the runtime (bot.storage.tickets).
"""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
_LOOKALIKE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def format_ticket(raw: str) -> str:
    return f"{raw[:4]}-{raw[4:]}"


def normalise_ticket(text: str) -> str | None:
    """Return the canonical ``XXXX-XXXX`` form, or None if the text is not a ticket number."""
    compact = "".join(ch for ch in text.upper() if ch.isalnum()).translate(_LOOKALIKE)
    if len(compact) != LENGTH or any(ch not in ALPHABET for ch in compact):
        return None
    return format_ticket(compact)


def split_ticket(text: str) -> tuple[str, str] | None:
    """A ticket at the start of ``text``, typed as forgivingly as :func:`normalise_ticket`
    takes it (``w61h x923``, ``W61H-X923``, ``w61hx923``), and the rest of the text:
    ``"w61h x923 Baik, Bu"`` -> ("W61H-X923", "Baik, Bu"). None without a ticket there."""
    seen = 0
    for word in re.finditer(r"\S+", text):
        seen += sum(ch.isalnum() for ch in word.group())
        if seen > LENGTH:
            return None
        if seen == LENGTH:
            ticket = normalise_ticket(text[:word.end()])
            return (ticket, text[word.end():].strip()) if ticket is not None else None
    return None


def find_ticket(text: str) -> str | None:
    """A ticket among other words ("cek tiket k7qm 3xhd", "status K7QM-3XHD ya"): the first run
    of one or two words that reads as a ticket and has a digit (so plain words never do)."""
    words = [w.strip(".,;:!?()#") for w in re.findall(r"\S+", text)]
    for i, word in enumerate(words):
        # as tickets are written: one word of eight ("K7QM-3XHD", "k7qm3xhd") or two of four
        pair = words[i:i + 2]
        candidates = [word] if len(word.replace("-", "")) == LENGTH else []
        if len(pair) == 2 and all(len(w) == LENGTH // 2 for w in pair):
            candidates.append(" ".join(pair))
        for part in candidates:
            ticket = normalise_ticket(part) if any(ch.isdigit() for ch in part) else None
            if ticket is not None:
                return ticket
    return None
