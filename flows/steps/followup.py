"""Answers to follow-up messages the bot sent by itself (check-ins, survey reminders).

Their buttons are not the current question, so their ids carry a namespace the engine
handles before its stale-button check: ``fu:<kind>:<id>:<answer>`` with kind ``c`` (a
complaint check-in: yes / notyet / no), ``r`` (a 1-5 rating of how it was handled) or ``s``
(an unfinished survey: resume / stop). The runtime checks ownership and applies the answer
(the ``followup`` call); these steps only talk.
"""

from __future__ import annotations

from typing import Any

from flows.helpers.skm import ELEMENTS
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice

PREFIX = "fu:"
KINDS = ("c", "r", "s")


def parse(choice: str) -> tuple[str, int, str] | None:
    """``fu:c:12:yes`` -> ("c", 12, "yes"); anything malformed -> None."""
    parts = choice.split(":")
    if len(parts) != 4 or parts[0] != "fu" or parts[1] not in KINDS or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2]), parts[3][:16]


def dispatch(turn: Turn, choice: str, expired: bool) -> None:
    """A follow-up button was pressed, whatever the conversation was doing."""
    parsed = parse(choice)
    if parsed is None:
        turn.say("stale_button")
        return
    kind, ident, answer = parsed
    if expired or turn.where is None or turn.state.get("wait"):
        turn.home()
    turn.goto("followup", "answer", {"kind": kind, "id": ident, "answer": answer})
    turn.call("followup", kind=kind, id=ident, answer=answer)


def finish(turn: Turn) -> None:
    """Back to whatever the resident was doing before the follow-up, or the menu."""
    if not turn.back():
        turn.home()


@register("followup", "answer")
class FollowupAnswer(StepSpec):
    def ask(self, turn: Turn) -> Question:  # only reached if a result never came
        return Question(turn.t("menu.ask"), nav=False)

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        if not result.get("ok"):
            reason = result.get("reason", "unknown")
            turn.say(f"followup.gone.{reason}", ticket=result.get("ticket", ""))
            finish(turn)
            return
        kind, answer = result.get("kind"), result.get("answer")
        if kind == "c" and answer == "yes":
            turn.say("followup.resolved", ticket=result["ticket"])
            turn.state["stack"] = []
            turn.goto("followup", "rating", {"id": turn.data["id"], "ticket": result["ticket"]},
                      push=False)
        elif kind == "c" and answer == "no":
            turn.say("followup.reopened", ticket=result["ticket"])
            finish(turn)
        elif kind == "c":
            if result.get("days"):
                turn.say("followup.notyet", ticket=result["ticket"], days=result["days"])
            else:
                turn.say("followup.notyet_last", ticket=result["ticket"])
            finish(turn)
        elif kind == "r":
            turn.say("followup.rating_thanks")
            finish(turn)
        elif kind == "s" and answer == "resume":
            answers = dict(result.get("answers") or {})
            step = "element" if len(answers) < len(ELEMENTS) else "suggestion"
            turn.state["stack"] = []
            turn.goto("survey", step,
                      {"service": result["service"], "key": result["key"], "answers": answers},
                      push=False)
        else:
            turn.say("followup.survey_stopped")
            finish(turn)


@register("followup", "rating")
class FollowupRating(StepSpec):
    """How satisfied is the resident with how the complaint was handled (1-5)."""

    def ask(self, turn: Turn) -> Question:
        choices = tuple(Choice(str(n), turn.t(f"followup.rating.{n}"), key=str(n)) for n in (5, 4, 3, 2, 1))
        return Question(
            turn.t("followup.rating", ticket=turn.data.get("ticket", "")),
            (*choices, Choice("skip", turn.t("skip"))),
            nav=False,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        turn.call("followup", kind="r", id=int(turn.data["id"]), answer=choice)

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        if result.get("ok") and result.get("answer") != "skip":
            turn.say("followup.rating_thanks")
        turn.home()
