"""Choosing the language (flow "lang"); back to where the resident was afterwards."""

from __future__ import annotations

from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice, SetLanguage


@register("lang", "choose")
class Language(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("lang.ask"),
            (Choice("id", turn.t("lang.name.id")), Choice("en", turn.t("lang.name.en"))),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        turn.state["lang"] = choice
        turn.emit(SetLanguage(choice))
        turn.say("lang.set")
        if not turn.back():
            turn.home()
