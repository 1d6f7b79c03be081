"""A complaint (flow "complaint"): one question per field, a summary to confirm or edit.

The field order and ``complaint_next`` are in common.py; the runtime files the complaint
(the ``create_complaint`` call) and answers with its ticket number.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flows.helpers.skm import CATEGORIES
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice
from flows.steps.common import asks_phone, complaint_next, meaningful, yes_no
from flows.steps.service import SvcChoose

MAX_DESCRIPTION = 2000
MIN_DESCRIPTION = 15
MAX_PHOTOS = 5


class ComplaintStep(StepSpec):
    field = ""

    def set(self, turn: Turn, value: Any, **extra: Any) -> None:
        complaint_next(turn, {**turn.data, self.field: value, **extra})


@register("complaint", "description")
class ComplaintDescription(ComplaintStep):
    field = "description"

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("complaint.description"), free_text=True)

    def text(self, turn: Turn, text: str) -> None:
        if len(text) > MAX_DESCRIPTION:
            turn.say("too_long", limit=MAX_DESCRIPTION, length=len(text))
        elif len(text) < MIN_DESCRIPTION or not meaningful(text):
            turn.say("complaint.description_short")
        else:
            self.set(turn, text)


@register("complaint", "category")
class ComplaintCategory(ComplaintStep):
    field = "category"

    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("complaint.category"),
            tuple(Choice(c, turn.t(f"cat.{c}")) for c in CATEGORIES),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, choice)


@register("complaint", "occurred")
class ComplaintWhen(ComplaintStep):
    field = "occurred"

    def ask(self, turn: Turn) -> Question:
        opts = ("today", "yesterday", "week", "earlier")
        return Question(
            turn.t("complaint.when"),
            tuple(Choice(o, turn.t(f"when.{o}")) for o in opts),
            free_text=True,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        svc = turn.ctx.catalog.service(turn.data.get("service", ""))
        agency = turn.ctx.catalog.agency(svc.agency) if svc else None
        tz = ZoneInfo(agency.timezone if agency else "Asia/Jakarta")
        today = turn.ctx.now.astimezone(tz).date()
        if choice == "today":
            value = today.isoformat()
        elif choice == "yesterday":
            value = (today - timedelta(days=1)).isoformat()
        elif choice == "week":
            value = f"{(today - timedelta(days=7)).isoformat()}..{today.isoformat()}"
        else:
            value = f"..{(today - timedelta(days=7)).isoformat()}"
        self.set(turn, value)

    def text(self, turn: Turn, text: str) -> None:
        if not meaningful(text) or len(text) > 200:
            turn.say("complaint.when_invalid")
        else:
            self.set(turn, text)


@register("complaint", "photos_done")
class ComplaintPhoto(ComplaintStep):
    field = "photos_done"

    def ask(self, turn: Turn) -> Question:
        photos = turn.data.get("photos", [])
        if photos:
            # Photos already sent stay (after « Kembali or "Ubah"); removing them is a choice.
            key = "complaint.photo_more" if turn.event.kind == "photo" else "complaint.photo_kept"
            return Question(
                turn.t(key, n=len(photos)),
                (Choice("done", turn.t("next")), Choice("clear", turn.t("complaint.photo_clear"))),
                accepts=frozenset({"photo"}),
            )
        return Question(
            turn.t("complaint.photo"), (Choice("done", turn.t("skip")),), accepts=frozenset({"photo"})
        )

    def photo(self, turn: Turn, media: dict[str, Any]) -> None:
        photos = [*turn.data.get("photos", []), media][:MAX_PHOTOS]  # kept ones count too
        if len(photos) >= MAX_PHOTOS:
            self.set(turn, True, photos=photos)
        else:
            turn.data["photos"] = photos

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "clear":
            turn.data.pop("photos", None)
            turn.say("complaint.photo_cleared")
            return
        self.set(turn, True)


@register("complaint", "location_done")
class ComplaintLocation(ComplaintStep):
    field = "location_done"

    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("complaint.location"),
            (Choice("skip", turn.t("skip")),),
            free_text=True,
            accepts=frozenset({"location"}),
        )

    def location(self, turn: Turn, location: tuple[float, float]) -> None:
        lat, lon = location
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            turn.say("complaint.location_ok", location=f"{lat:.5f}, {lon:.5f}")
            self.set(turn, True, location=[lat, lon])
        else:
            turn.say("location_not_expected")

    def text(self, turn: Turn, text: str) -> None:
        if not meaningful(text) or len(text) > 300:
            turn.say("complaint.location_invalid")
        else:
            self.set(turn, True, location_text=text)

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, True)


@register("complaint", "location_public")
class ComplaintLocationPublic(ComplaintStep):
    """Whether the sent location may be shown, without a name, on the public map (Open311):
    one yes/no after a location; skipping it means no."""

    field = "location_public"

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("complaint.location_public"), (*yes_no(turn), Choice("skip", turn.t("skip"))))

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, choice == "yes")


@register("complaint", "confidential")
class ComplaintConfidential(ComplaintStep):
    field = "confidential"

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("complaint.confidential"), yes_no(turn))

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, choice == "yes")


@register("complaint", "contact_ok")
class ComplaintContact(ComplaintStep):
    field = "contact_ok"

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("complaint.contact"), yes_no(turn))

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, choice == "yes")


def when_text(turn: Turn, value: str | None) -> str:
    """When it happened as people write it: "24 November 2026", "24-30 November 2026",
    "24 November - 1 Desember 2026", "sebelum 24 November 2026" (stored as ISO dates and
    ``a..b`` ranges); what the resident typed is shown as typed."""
    if not value:
        return "-"

    def day(d: date, year: bool = True) -> str:
        text = f"{d.day} {turn.t(f'digest.month.{d.month}')}"
        return f"{text} {d.year}" if year else text

    try:
        if ".." not in value:
            return day(date.fromisoformat(value))
        first, last = value.split("..", 1)
        if not first:
            return turn.t("complaint.when_before", date=day(date.fromisoformat(last)))
        a, b = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        return value
    if (a.year, a.month) == (b.year, b.month):
        return f"{a.day}-{day(b)}"
    return f"{day(a, year=a.year != b.year)} - {day(b)}"


def complaint_summary(turn: Turn, data: dict[str, Any]) -> str:
    svc = turn.ctx.catalog.service(data.get("service", ""))
    description = data.get("description", "")
    if len(description) > 300:
        description = description[:300] + "…"
    if data.get("location"):
        lat, lon = data["location"]
        location = f"{lat:.5f}, {lon:.5f}"
    else:
        location = data.get("location_text") or "-"
    text = turn.t(
        "complaint.summary",
        service=svc.title(turn.lang) if svc else "?",
        description=description,
        category=turn.t(f"cat.{data.get('category', 'lainnya')}"),
        occurred=when_text(turn, data.get("occurred")),
        photos=len(data.get("photos", [])),
        location=location,
        confidential=turn.t("yes" if data.get("confidential") else "no"),
        contact=turn.t("yes" if data.get("contact_ok") else "no") if asks_phone(turn) else NOT_ASKED,
    )
    return "\n".join(line for line in text.split("\n") if NOT_ASKED not in line)


NOT_ASKED = "\x00"  # a summary line for a question this channel does not ask: left out
EDITABLE = ("service", "description", "category", "occurred", "photos_done", "location_done",
            "confidential", "contact_ok")


@register("complaint", "confirm")
class ComplaintConfirm(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(
            complaint_summary(turn, turn.data),
            (Choice("send", turn.t("complaint.send")), Choice("edit", turn.t("complaint.edit"))),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "edit":
            turn.goto("complaint", "edit", turn.data)
            return
        data = turn.data
        turn.call(
            "create_complaint",
            key=data["key"],
            service=data["service"],
            description=data["description"],
            category=data["category"],
            occurred=data.get("occurred"),
            photos=data.get("photos", []),
            location=data.get("location"),
            location_text=data.get("location_text"),
            location_public=bool(data.get("location_public")) and bool(data.get("location")),
            confidential=bool(data.get("confidential")),
            contact_ok=bool(data.get("contact_ok")),
        )

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.say("complaint.done", ticket=result["ticket"])
        if result.get("escalated"):  # a serious complaint went straight to staff (bot/desk/cases.py)
            turn.say("case.escalated", ticket=result["ticket"])
        turn.home()


@register("complaint", "edit")
class ComplaintEdit(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("complaint.edit_which"),
            tuple(Choice(f, turn.t(f"complaint.field.{f}")) for f in EDITABLE
                  if f != "contact_ok" or asks_phone(turn)),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        data = {k: v for k, v in turn.data.items() if k != choice}
        if choice == "location_done":
            data.pop("location", None)
            data.pop("location_text", None)
            data.pop("location_public", None)
        if choice == "service":
            SvcChoose().start(turn, "complaint", carry=data)
        else:
            complaint_next(turn, data)
