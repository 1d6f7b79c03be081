"""The follow-up plan (flow "plan"): ``/rencana`` lets a head or admin add an improvement action
for an SKM element, or mark an open one in progress or done.

Add: element (U1..U9) -> service (or all) -> what -> who -> due date (dd-mm-yyyy) -> confirm.
Update: pick an open action -> in progress, or done with what was done. The runtime checks the
role and stores the actions (bot.runtime.plan, bot.reports.periodic.plan); this only talks.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flows.helpers.skm import ELEMENTS
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice

MAX_LISTED = 8  # open actions offered as buttons
TEXT_MAX = 500


def parse_due(text: str) -> date | None:
    """A date typed as dd-mm-yyyy (also with / or . and a two-digit year); None if not a date."""
    m = re.fullmatch(r"\s*(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})\s*", text)
    if not m:
        return None
    day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    try:
        return date(year + 2000 if year < 100 else year, month, day)
    except ValueError:
        return None


def start(turn: Turn) -> None:
    """``/rencana``: the plan's menu, once the runtime says who is asking."""
    turn.goto("plan", "menu", {}, push=False)
    turn.call("plan_open")


def finish(turn: Turn) -> None:
    """Back to the menu; someone who never agreed as a resident is not shown the resident menu."""
    turn.home()
    turn.ask_after = turn.consented


def _element(turn: Turn, e: int) -> str:
    return f"U{e} {turn.t(f'skm.{ELEMENTS[e - 1]}.name')}"


@register("plan", "menu")
class PlanMenu(StepSpec):
    def ask(self, turn: Turn) -> Question:
        actions = turn.data.get("actions", [])
        choices = [Choice("new", turn.t("plan.new"))]
        choices += [Choice(f"a:{a['id']}", a["label"][:60]) for a in actions[:MAX_LISTED]]
        return Question(turn.t("plan.menu" if actions else "plan.menu_empty"), tuple(choices))

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        if not result.get("ok"):
            turn.say("plan.refused")
            finish(turn)
            return
        turn.state["data"] = {"actions": result.get("actions", []), "services": result.get("services", [])}

    def choice(self, turn: Turn, choice: str) -> None:
        services = turn.data.get("services", [])
        if choice == "new":
            turn.goto("plan", "element", {"services": services})
            return
        for a in turn.data.get("actions", []):
            if f"a:{a['id']}" == choice:
                turn.goto("plan", "action", {"id": a["id"], "label": a["label"]})
                return
        turn.say("not_understood")


@register("plan", "element")
class PlanElement(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("plan.ask_element"),
                        tuple(Choice(f"e{e}", _element(turn, e)) for e in range(1, len(ELEMENTS) + 1)))

    def choice(self, turn: Turn, choice: str) -> None:
        e = int(choice[1:]) if re.fullmatch(r"e[1-9]", choice) else 0
        if not 1 <= e <= len(ELEMENTS):
            turn.say("not_understood")
            return
        turn.goto("plan", "service", {**turn.data, "element": e})


@register("plan", "service")
class PlanService(StepSpec):
    def ask(self, turn: Turn) -> Question:
        choices = [Choice("s:all", turn.t("plan.all_services"))]
        choices += [Choice(f"s:{s['id']}", s["name"][:60]) for s in turn.data.get("services", [])]
        return Question(turn.t("plan.ask_service"), tuple(choices))

    def choice(self, turn: Turn, choice: str) -> None:
        name = turn.t("plan.all_services")
        service: int | None = None
        for s in turn.data.get("services", []):
            if f"s:{s['id']}" == choice:
                service, name = int(s["id"]), str(s["name"])
        if service is None and choice != "s:all":
            turn.say("not_understood")
            return
        turn.goto("plan", "what", {**turn.data, "service": service, "service_name": name})


class _Typed(StepSpec):
    key = ""
    prompt = ""
    next_step = ""

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t(self.prompt), free_text=True)

    def text(self, turn: Turn, text: str) -> None:
        text = " ".join(text.split())[:TEXT_MAX]
        if len(text) < 3:
            turn.say("plan.too_short")
            return
        turn.goto("plan", self.next_step, {**turn.data, self.key: text})


@register("plan", "what")
class PlanWhat(_Typed):
    key, prompt, next_step = "what", "plan.ask_what", "who"


@register("plan", "who")
class PlanWho(_Typed):
    key, prompt, next_step = "who", "plan.ask_who", "due"


@register("plan", "due")
class PlanDue(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("plan.ask_due"), free_text=True)

    def text(self, turn: Turn, text: str) -> None:
        due = parse_due(text)
        if due is None:
            turn.say("plan.bad_date")
            return
        turn.goto("plan", "confirm", {**turn.data, "due": due.isoformat()})


@register("plan", "confirm")
class PlanConfirm(StepSpec):
    def ask(self, turn: Turn) -> Question:
        d = turn.data
        due = date.fromisoformat(d["due"])
        return Question(
            turn.t("plan.confirm", element=_element(turn, int(d["element"])), service=d.get("service_name", ""),
                   what=d.get("what", ""), who=d.get("who", ""), due=f"{due.day:02d}-{due.month:02d}-{due.year}"),
            (Choice("yes", turn.t("plan.save")), Choice("no", turn.t("plan.discard"))),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if choice != "yes":
            turn.say("plan.discarded")
            finish(turn)
            return
        d = turn.data
        turn.call("plan_save", element=int(d["element"]), service=d.get("service"), what=d["what"],
                  who=d["who"], due=d["due"])

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        if result.get("ok"):
            turn.say("plan.saved")
        else:
            turn.say(f"plan.refused_save.{result.get('reason', 'role')}")
        finish(turn)


@register("plan", "action")
class PlanAction(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("plan.action", label=turn.data.get("label", "")),
                        (Choice("progress", turn.t("plan.mark_progress")), Choice("done", turn.t("plan.mark_done"))))

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "done":
            turn.goto("plan", "done", dict(turn.data))
        elif choice == "progress":
            turn.call("plan_update", id=turn.data["id"], status="in_progress", text="")
        else:
            turn.say("not_understood")

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.say("plan.updated" if result.get("ok") else "plan.refused")
        finish(turn)


@register("plan", "done")
class PlanDone(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("plan.ask_done"), free_text=True)

    def text(self, turn: Turn, text: str) -> None:
        text = " ".join(text.split())[:TEXT_MAX]
        if len(text) < 3:
            turn.say("plan.too_short")
            return
        turn.call("plan_update", id=turn.data["id"], status="done", text=text)

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.say("plan.updated" if result.get("ok") else "plan.refused")
        finish(turn)
