"""The status of a complaint (flow "status"): the resident's tickets, or one typed in."""

from __future__ import annotations

from typing import Any

from flows.helpers.tickets import normalise_ticket
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice


@register("status", "ask")
class StatusAsk(StepSpec):
    def ask(self, turn: Turn) -> Question:
        tickets = turn.data.get("tickets", [])
        return Question(
            turn.t("status.ask" if tickets else "status.ask_none"),
            tuple(Choice(f"t:{t}", t) for t in tickets[:5]),
            free_text=True,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        turn.call("lookup_ticket", ticket=choice.removeprefix("t:"))

    def text(self, turn: Turn, text: str) -> None:
        ticket = normalise_ticket(text)
        if ticket is None:
            turn.say("status.bad_format")
        else:
            turn.call("lookup_ticket", ticket=ticket)

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        if "tickets" in result:
            turn.data["tickets"] = result["tickets"]
            return
        if not result.get("found"):
            turn.say("status.unknown", ticket=result.get("ticket", ""))
            return
        svc = turn.ctx.catalog.service(result.get("service", ""))
        agency = turn.ctx.catalog.agency(result.get("agency", ""))
        turn.say(
            "status.show",
            ticket=result["ticket"],
            service=svc.title(turn.lang) if svc else agency.title(turn.lang) if agency else "-",
            status=turn.t(f"complaint_status.{result['status']}"),
            created=result.get("created", ""),
            updated=result.get("updated", ""),
        )
        turn.home()


CLAIM_PREFIX = "klaim_"  # /start klaim_<ticket>_<code>: a web chat complaint continued here


def start_claim(turn: Turn, payload: str) -> None:
    """A "continue on Telegram/WhatsApp" link from the web chat: the runtime moves the complaint."""
    turn.home()
    turn.goto("status", "claim")
    turn.call("claim_web", payload=payload[:64])


@register("status", "claim")
class StatusClaim(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("status.ask_none"), free_text=True)

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        if result.get("claimed"):
            turn.say("webchat.claimed", ticket=result.get("ticket", ""))
        else:
            turn.say("webchat.claim_failed")
        turn.home()
