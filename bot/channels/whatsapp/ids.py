"""The identifiers WhatsApp traffic carries, shared by parsing, rendering, sending and storage.

A resident is a ``wa_id`` (their phone number in digits) or a business-scoped user id; a
choice travels as a reply id ``"<question number>:<choice id>"``; a delivery is de-duplicated
on a hash of its message id.
"""

from __future__ import annotations

import hashlib

from bot.channels.common import decode_choice, encode_choice

CHANNEL = "whatsapp"
MAX_BUTTON_ID = 256
MAX_ROW_ID = 200


def is_phone(chat_id: str) -> bool:
    """A ``wa_id`` is the phone number in digits; a business-scoped user id (``ID.1234...``,
    parent ``ID.ENT.1234...``) has a country code and a period."""
    return chat_id.isdigit()


def address(chat_id: str) -> dict[str, str]:
    """Meta's Messages API: ``to`` takes a phone number, ``recipient`` a business-scoped user id."""
    return {"to": chat_id} if is_phone(chat_id) else {"recipient": chat_id}


def reply_id(q: int | None, choice_id: str, limit: int = MAX_BUTTON_ID) -> str:
    """``"<question number>:<choice id>"``: the engine refuses a choice whose question is gone."""
    data = encode_choice(q, choice_id)
    if len(data) > limit:
        raise ValueError(f"reply id over {limit} characters: {data!r}")
    return data


def parse_reply_id(data: str | None) -> tuple[int, str] | None:
    """``"12:agree"`` -> (12, "agree"); anything malformed -> None (never raises)."""
    if not data or len(data) > MAX_BUTTON_ID:
        return None
    return decode_choice(data)


def event_key(message_id: str | None) -> str | None:
    """The de-duplication key of a delivery: a hash, because a ``wamid`` is the sender's phone
    number in base64 and the key outlives an erasure."""
    if not message_id:
        return None
    return "h:" + hashlib.sha256(message_id.encode()).hexdigest()
