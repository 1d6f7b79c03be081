"""The resident's data rights under UU 27/2022 (flow "data"): see what is kept, change the
respondent profile (flows/steps/profile.py), delete it all."""

from __future__ import annotations

from typing import Any

from flows.helpers.profile import FIELD_NAMES
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice
from flows.steps import profile


@register("data", "show")
class DataShow(StepSpec):
    def ask(self, turn: Turn) -> Question:
        d = turn.data
        return Question(
            turn.t(
                "data.summary",
                channel=d.get("channel", "-"),
                name=d.get("name") or "-",
                language=turn.t(f"lang.name.{turn.lang}"),
                consent=d.get("consent", "-"),
                surveys=d.get("surveys", 0),
                complaints=d.get("complaints", 0),
                tickets=", ".join(d.get("tickets", [])) or "-",
            ) + self.requests(turn, d.get("requests") or [])
            + "\n\n" + self.profile(turn, d.get("profile") or {}) + self.staff(turn, d.get("staff") or []),
            (Choice("profile", turn.t("data.profile_edit")), Choice("delete", turn.t("data.delete"))),
        )

    @staticmethod
    def requests(turn: Turn, items: list[dict[str, Any]]) -> str:
        """The "talk to a person" requests kept, one short line each (empty when none)."""
        if not items:
            return ""
        lines = [turn.t("data.request", ticket=r["ticket"], agency=r["agency"],
                        status=turn.t(f"complaint_status.{r['status']}"), sent=r["sent"],
                        replies=r["replies"]) for r in items]
        return "\n\n" + turn.t("data.requests") + "\n" + "\n".join(lines)

    @staticmethod
    def profile(turn: Turn, values: dict[str, Any]) -> str:
        """The respondent profile as kept: "-" for what was not given."""
        shown = {f: turn.t(f"profile.{f}.{values[f]}") if values.get(f) else "-" for f in FIELD_NAMES}
        return turn.t("data.profile", **shown)

    @staticmethod
    def staff(turn: Turn, items: list[dict[str, Any]]) -> str:
        """Staff registrations of this chat (empty when none): deleting removes them too."""
        if not items:
            return ""
        return "\n\n" + "\n".join(turn.t("data.staff", role=turn.t(f"staff.role.{r['role']}"),
                                           agency=r["agency"]) for r in items)

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "profile":
            profile.start(turn, origin="data")
            return
        turn.goto("data", "confirm", {"staff": bool(turn.data.get("staff"))})

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.state["data"] = dict(result)


@register("data", "confirm")
class DataConfirm(StepSpec):
    def ask(self, turn: Turn) -> Question:
        warning = "\n\n" + turn.t("data.confirm_staff") if turn.data.get("staff") else ""
        return Question(
            turn.t("data.confirm") + warning,
            (Choice("yes", turn.t("data.confirm_yes")), Choice("no", turn.t("data.confirm_no"))),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "no":
            turn.home()
            return
        turn.call("delete_my_data")

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.say("data.deleted")
        lang = turn.lang
        turn.state.clear()
        turn.state["lang"] = lang
        turn.consented = False
        turn.ask_after = False
