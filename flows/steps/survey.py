"""The satisfaction survey (flow "survey"): nine SKM elements, a suggestion, the fee flag.

Every answer is saved at once (``UpsertSurvey``, idempotent by key), so a survey left half
way is kept as partial.
"""

from __future__ import annotations

from flows.helpers.skm import ELEMENTS, FEE_ELEMENT
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice, UpsertSurvey
from flows.steps.common import complaint_next, meaningful

MAX_SUGGESTION = 1000


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


@register("survey", "element")
class SurveyElement(StepSpec):
    def ask(self, turn: Turn) -> Question:
        idx = len(_answers(turn))
        key = ELEMENTS[min(idx, len(ELEMENTS) - 1)]
        svc = turn.ctx.catalog.service(turn.data["service"])
        intro = turn.t("survey.intro", service=svc.title(turn.lang) if svc else "?") + "\n\n" if idx == 0 else ""
        text = intro + turn.t(
            "survey.progress", n=idx + 1, total=len(ELEMENTS), element=turn.t(f"skm.{key}.name")
        )
        text += "\n" + turn.t(f"skm.{key}.q")
        # The score is the key: a typed "4" is always the 4 shown beside "Sangat ...".
        choices = tuple(Choice(str(s), turn.t(f"skm.{key}.{s}"), key=str(s)) for s in (4, 3, 2, 1))
        return Question(text, (*choices, Choice("skip", turn.t("survey.skip"))))

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
