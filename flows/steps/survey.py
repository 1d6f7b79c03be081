"""The satisfaction survey (flow "survey"): nine SKM elements, a suggestion, the fee flag.

Every answer is saved at once (``UpsertSurvey``, idempotent by key), so a survey left half
way is kept as partial. One questionnaire per resident, service and period (the catalog's
``survey_once_per``): the runtime is asked first (``survey_check``), and a second attempt is
offered to change the earlier answers instead. A resident's first questionnaire ends with
the respondent profile (flows/steps/profile.py).
"""

from __future__ import annotations

import re
from typing import Any

from flows.helpers.skm import ELEMENTS, FEE_ELEMENT
from flows.helpers.smalltalk import dont_know
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice, UpsertSurvey
from flows.steps import profile
from flows.steps.common import complaint_next, meaningful

MAX_SUGGESTION = 1000
# A lone number in brackets or with punctuation around it: "(3)", "[4]", "3!", "- 2 -".
_LONE_NUMBER = re.compile(r"^[\s()\[\]{}<>.,:;!?*#'\"-]*(\d+)[\s()\[\]{}<>.,:;!?*#'\"-]*$")


def _answers(turn: Turn) -> dict[str, int | None]:
    answers: dict[str, int | None] = turn.data.setdefault("answers", {})
    return answers


def _upsert(turn: Turn, status: str, suggestion: str | None = None) -> None:
    answers = {int(k): v for k, v in _answers(turn).items()}
    turn.emit(
        UpsertSurvey(
            key=turn.data["key"],
            service=turn.data["service"],
            answers=answers,
            status="complete" if status == "complete" else "partial",
            suggestion=suggestion,
        )
    )


def begin(turn: Turn, service: str, push: bool = True) -> None:
    """A questionnaire for ``service``: first ask the runtime whether one was given already."""
    turn.goto("survey", "check", {"service": service, "key": turn.event.event_id, "answers": {}}, push=push)
    turn.call("survey_check", service=service)


@register("survey", "check")
class SurveyCheck(StepSpec):
    """Waits for ``survey_check``: {"allowed", "profile_asked", and for a repeat "key", "at",
    "partial" (the earlier one was left unfinished)}."""

    def ask(self, turn: Turn) -> Question:  # shown only if the answer never came
        return Question(turn.t("still_working"))

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        data = {**turn.data, "ask_profile": not result.get("profile_asked", True)}
        if result.get("allowed", True):
            turn.goto("survey", "element", data, push=False)
        else:
            turn.goto("survey", "repeat", {**data, "prev": result.get("key"), "at": result.get("at", ""),
                                           "partial": bool(result.get("partial"))}, push=False)


@register("survey", "repeat")
class SurveyRepeat(StepSpec):
    """A second questionnaire inside the period: say so, and offer to change the first one
    (or, when it was left unfinished, to fill it in again: not "you just rated")."""

    def ask(self, turn: Turn) -> Question:
        svc = turn.ctx.catalog.service(turn.data["service"])
        partial = bool(turn.data.get("partial"))
        text = turn.t("survey.repeat_partial" if partial else "survey.repeat",
                      service=svc.title(turn.lang) if svc else "?", at=turn.data.get("at", ""))
        update = turn.t("survey.repeat_again" if partial else "survey.repeat_update")
        return Question(text, (Choice("update", update), Choice("cancel", turn.t("survey.repeat_cancel"))),
                        nav=False)

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "update" and turn.data.get("prev"):
            data = {**turn.data, "key": turn.data["prev"], "answers": {}, "update": True}
            for k in ("prev", "at", "partial"):
                data.pop(k, None)
            turn.goto("survey", "element", data, push=False)
        else:
            turn.home()


@register("survey", "element")
class SurveyElement(StepSpec):
    def ask(self, turn: Turn) -> Question:
        idx = len(_answers(turn))
        key = ELEMENTS[min(idx, len(ELEMENTS) - 1)]
        svc = turn.ctx.catalog.service(turn.data["service"])
        intro_key = "survey.update_intro" if turn.data.get("update") else "survey.intro"
        intro = turn.t(intro_key, service=svc.title(turn.lang) if svc else "?") + "\n\n" if idx == 0 else ""
        text = intro + turn.t(
            "survey.progress", n=idx + 1, total=len(ELEMENTS), element=turn.t(f"skm.{key}.name")
        )
        text += "\n" + turn.t(f"skm.{key}.q")
        # The score is the key: a typed "4" is always the 4 shown beside "Sangat ...".
        choices = tuple(Choice(str(s), turn.t(f"skm.{key}.{s}"), key=str(s)) for s in (4, 3, 2, 1))
        # Typed text the buttons' own matching did not take comes to ``text`` below.
        return Question(text, (*choices, Choice("skip", turn.t("survey.skip"))), free_text=True,
                        own_words=False)  # typed text is only another way to answer

    def text(self, turn: Turn, text: str) -> None:
        """"gak tau", "not sure" mean "Tidak tahu"; "(3)" means 3; other numbers are not a score.

        The engine has already tried the buttons' keys and labels (``match_choice``), so this
        only sees what they missed.
        """
        number = _LONE_NUMBER.match(text)
        score = (number.group(1).lstrip("0") or "0") if number else ""
        if dont_know(text):
            picked = "skip"
        elif score in ("1", "2", "3", "4"):
            picked = score
        elif number:
            turn.say("choice.bad_number", keys="4, 3, 2, 1")
            return
        else:
            turn.say("not_understood")
            return
        label = next(c.label for c in self.ask(turn).choices if c.id == picked)
        turn.say("echo.chosen", label=label)
        self.choice(turn, picked)

    def choice(self, turn: Turn, choice: str) -> None:
        answers = _answers(turn)
        idx = len(answers)
        score = None if choice == "skip" else int(choice)
        new = {**answers, str(idx + 1): score}
        turn.goto("survey", "element" if len(new) < len(ELEMENTS) else "suggestion",
                  {**turn.data, "answers": new})
        _upsert(turn, "partial")


@register("survey", "suggestion")
class SurveySuggestion(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("survey.suggestion"), (Choice("skip", turn.t("survey.no_suggestion")),), free_text=True
        )

    def choice(self, turn: Turn, choice: str) -> None:
        self.finish(turn, None)

    def text(self, turn: Turn, text: str) -> None:
        if len(text) > MAX_SUGGESTION:
            turn.say("too_long", limit=MAX_SUGGESTION, length=len(text))
        elif _LONE_NUMBER.match(text):
            # A bare number is a button that is not there (1 is "Tidak ada saran", 2 and 3 are
            # « Kembali and Batal), not a suggestion: answered as on every other question.
            turn.say("choice.bad_number", keys="1, 2, 3")
        elif not meaningful(text):
            turn.say("not_understood")
        else:
            self.finish(turn, text)

    def finish(self, turn: Turn, suggestion: str | None) -> None:
        # Thanks first: a staff notice the final save may cause (a very low survey) comes
        # right after it, before the menu.
        turn.say("survey.thanks")
        _upsert(turn, "complete", suggestion)
        svc = turn.ctx.catalog.service(turn.data["service"])
        fee = _answers(turn).get(str(FEE_ELEMENT))
        if svc and svc.free_by_law and fee is not None and fee < 4:
            turn.state["stack"] = []
            turn.goto("survey", "fee_flag", {"service": svc.code}, push=False)
        elif turn.data.get("ask_profile"):
            turn.state["stack"] = []
            profile.start(turn, turn.data["key"])
        else:
            turn.home()


@register("survey", "fee_flag")
class SurveyFeeFlag(StepSpec):
    """Dukcapil documents are free by law (UU 24/2013 Pasal 79A): a reported fee is a red flag."""

    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("survey.fee_flag"),
            (Choice("report", turn.t("survey.fee_report")), Choice("menu", turn.t("nav.menu"))),
            nav=False,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        service = turn.data["service"]
        turn.home()
        if choice == "report":
            carry = {"service": service, "category": "pungli", "key": turn.event.event_id}
            complaint_next(turn, carry)
