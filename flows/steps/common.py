"""What several flows share: what counts as an answer, a yes/no pair, and the complaint's order.

The complaint's order lives here, not in complaint.py, because choosing a service
(service.py) and the fee flag after a survey (survey.py) both continue a complaint, and the
complaint's own "edit the service" goes back to choosing one.
"""

from __future__ import annotations

from typing import Any

from flows.machine.turn import Turn
from flows.machine.types import Choice


def meaningful(text: str) -> bool:
    """At least two letters or digits: emoji-only or punctuation-only text is not an answer."""
    return sum(ch.isalnum() for ch in text) >= 2


def yes_no(turn: Turn) -> tuple[Choice, ...]:
    return (Choice("yes", turn.t("yes")), Choice("no", turn.t("no")))


COMPLAINT_FIELDS = (
    "service",
    "description",
    "category",
    "occurred",
    "photos_done",
    "location_done",
    "location_public",  # asked only when a location was sent (see complaint_next)
    "confidential",
    "contact_ok",
)


NO_PHONE_CHANNELS = frozenset({"web"})  # an anonymous browser: staff have no number to call


def asks_phone(turn: Turn) -> bool:
    """Whether "may staff phone you?" makes sense on this channel."""
    return turn.ctx.channel not in NO_PHONE_CHANNELS


def complaint_next(turn: Turn, data: dict[str, Any], push: bool = True) -> None:
    """Go to the first question not answered yet: nothing is ever asked twice."""
    for field in COMPLAINT_FIELDS:
        if field == "location_public" and not data.get("location"):
            continue  # nothing to show on a map: not asked
        if field == "contact_ok" and not asks_phone(turn):
            continue
        if field not in data:
            turn.goto("complaint", field, data, push=push)
            return
    turn.goto("complaint", "confirm", data, push=push)
