"""The one text splitter: every long text (a reply, a case card, the digest) is cut here.

Platforms cap one message (Telegram and WhatsApp at 4,096 characters, WhatsApp's interactive
body at 1,024). A cut prefers a paragraph break, then a line break, and only cuts a line that is
itself too long; the break it cuts at is dropped, and no part is ever empty.
"""

from __future__ import annotations


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at the best break that fits."""
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text.strip("\n") or "-"
    parts: list[str] = []
    while len(text) > limit:
        window = text[: limit + 1]  # a break right after the limit still leaves a full part
        cut = window.rfind("\n\n")
        if cut <= 0:
            cut = window.rfind("\n")
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip("\n"))
        text = text[cut:].lstrip("\n") or "-"
    parts.append(text)
    return parts
