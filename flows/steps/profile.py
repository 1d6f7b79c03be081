"""The respondent profile (flow "profile"): four short questions, each skippable, asked once.

Asked at the end of a resident's first questionnaire (never before it: the survey is what
they came for), and from "Data saya" to change it. Every answer is saved at once
(``SaveProfile``), so stopping half way keeps what was given and it is not asked again.
"""

from __future__ import annotations

from flows.helpers.profile import CODES, FIELD_NAMES
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice, SaveProfile

SKIP = "skip"


def start(turn: Turn, survey_key: str | None = None, origin: str = "survey") -> None:
    """Open the first question; ``origin`` "data" comes back to "Data saya" at the end."""
    if origin == "survey":
        turn.emit(SaveProfile("", None, survey_key))  # asked: never again after a survey
        turn.say("profile.intro")
    turn.goto("profile", FIELD_NAMES[0], {"key": survey_key, "origin": origin}, push=origin == "data")


def _ask(turn: Turn, field: str) -> Question:
    choices = tuple(Choice(code, turn.t(f"profile.{field}.{code}")) for code in CODES[field])
    n = FIELD_NAMES.index(field) + 1
    text = turn.t("profile.progress", n=n, total=len(FIELD_NAMES)) + "\n" + turn.t(f"profile.{field}.q")
    # with back and cancel: a resident may stop at any question (and WhatsApp then shows a
    # list, whose rows fit "Tidak ingin menjawab" uncut)
    return Question(text, (*choices, Choice(SKIP, turn.t("profile.skip"))))


def _answer(turn: Turn, field: str, choice: str) -> None:
    value = None if choice == SKIP else choice
    turn.emit(SaveProfile(field, value, turn.data.get("key")))
    idx = FIELD_NAMES.index(field)
    if idx + 1 < len(FIELD_NAMES):
        turn.goto("profile", FIELD_NAMES[idx + 1], dict(turn.data))
        return
    turn.say("profile.thanks")
    if turn.data.get("origin") == "data":
        turn.state["stack"] = []
        turn.goto("data", "show", {}, push=False)
        turn.call("my_data")
    else:
        turn.home()


def _step(field: str) -> type[StepSpec]:
    class ProfileStep(StepSpec):
        def ask(self, turn: Turn) -> Question:
            return _ask(turn, field)

        def choice(self, turn: Turn, choice: str) -> None:
            _answer(turn, field, choice)

    ProfileStep.__name__ = ProfileStep.__qualname__ = f"Profile_{field.replace('-', '_')}"
    return register("profile", field)(ProfileStep)


for _field in FIELD_NAMES:
    _step(_field)
