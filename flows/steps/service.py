"""Choosing a service (flow "svc"), shared by the survey and the complaint.

By agency, then service; or typed words matched against the catalog, with a pick among
close candidates. The purpose in the step's data says where to go once chosen.
"""

from __future__ import annotations

from typing import Any

from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice
from flows.steps import survey
from flows.steps.common import complaint_next, meaningful


@register("svc", "choose")
class SvcChoose(StepSpec):
    def start(
        self, turn: Turn, purpose: str, service: str | None = None, carry: dict[str, Any] | None = None
    ) -> None:
        turn.goto("svc", "choose", {"purpose": purpose, "carry": carry or {}})
        if service:
            self.chosen(turn, service, push=False)

    def ask(self, turn: Turn) -> Question:
        agencies = turn.ctx.catalog.agencies
        choices = [Choice(f"a:{a.slug}", a.short_name) for a in agencies]
        if self.other(turn) is not None:
            choices.append(Choice("other", turn.t("svc.other")))
        return Question(
            turn.t(f"svc.ask.{turn.data.get('purpose', 'survey')}"),
            tuple(choices),
            free_text=True,
        )

    @staticmethod
    def other(turn: Turn) -> str | None:
        """The catch-all service a complaint about something unlisted is filed under (or None).

        Only for complaints: a survey rates a known service.
        """
        if turn.data.get("purpose") != "complaint":
            return None
        svc = turn.ctx.catalog.other_service()
        return svc.code if svc else None

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "other":
            code = self.other(turn)
            if code:
                self.chosen(turn, code)
            return
        self.agency(turn, choice.removeprefix("a:"))

    def agency(self, turn: Turn, slug: str) -> None:
        turn.goto("svc", "agency", {**turn.data, "agency": slug})

    def text(self, turn: Turn, text: str) -> None:
        if not meaningful(text):
            turn.say("not_understood")
            return
        match = turn.ctx.catalog.matcher.match(text, lang=turn.lang)
        if match.decided and match.decided.startswith("@"):
            self.agency(turn, match.decided[1:])
        elif match.decided:
            self.chosen(turn, match.decided, typed=True)
        elif match.candidates:
            turn.goto("svc", "pick", {**turn.data, "candidates": list(match.candidates)})
        else:
            # Nothing fits well: say so and show the agencies (not the old guesses again).
            while turn.where != ("svc", "choose") and turn.back():
                pass
            other = turn.ctx.catalog.agency(turn.ctx.catalog.default_agency)
            if self.other(turn) is not None and other is not None:
                turn.say("svc.not_found_other", text=text[:60], agency=other.short_name)
            else:
                turn.say("svc.not_found", text=text[:60])

    def chosen(self, turn: Turn, code: str, push: bool = True, typed: bool = False) -> None:
        purpose = turn.data.get("purpose", "survey")
        carry = dict(turn.data.get("carry") or {})
        if typed and purpose == "complaint":  # confirm what was understood before going on
            svc = turn.ctx.catalog.service(code)
            agency = turn.ctx.catalog.agency(svc.agency) if svc else None
            if svc:
                turn.say("complaint.service_chosen", service=svc.title(turn.lang),
                         agency=agency.short_name if agency else svc.agency)
        if purpose == "complaint":
            carry["service"] = code
            carry.setdefault("key", turn.event.event_id)
            complaint_next(turn, carry, push=push)
        else:
            survey.begin(turn, code, push=push)


@register("svc", "agency")
class SvcAgency(StepSpec):
    def ask(self, turn: Turn) -> Question:
        slug = turn.data.get("agency", "")
        agency = turn.ctx.catalog.agency(slug)
        services = turn.ctx.catalog.services_of(slug)
        return Question(
            turn.t("svc.ask_in_agency", agency=agency.title(turn.lang) if agency else slug),
            tuple(Choice(f"s:{s.code}", s.title(turn.lang)) for s in services),
            free_text=True,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        SvcChoose().chosen(turn, choice.removeprefix("s:"))

    def text(self, turn: Turn, text: str) -> None:
        SvcChoose().text(turn, text)


@register("svc", "pick")
class SvcPick(StepSpec):
    def ask(self, turn: Turn) -> Question:
        cat = turn.ctx.catalog
        choices = []
        for key in turn.data.get("candidates", []):
            if key.startswith("@"):
                agency = cat.agency(key[1:])
                if agency:
                    choices.append(Choice(f"a:{agency.slug}", agency.title(turn.lang)))
            else:
                svc = cat.service(key)
                ag = cat.agency(svc.agency) if svc else None
                if svc:
                    name = svc.title(turn.lang)
                    label = f"{name} ({ag.short_name})" if ag else name
                    choices.append(Choice(f"s:{svc.code}", label))
        choices.append(Choice("none", turn.t("svc.none_of_these")))
        return Question(turn.t("svc.pick"), tuple(choices), free_text=True)

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "none":
            turn.back()
            turn.say("svc.try_again")
        elif choice.startswith("a:"):
            SvcChoose().agency(turn, choice[2:])
        else:
            SvcChoose().chosen(turn, choice.removeprefix("s:"))

    def text(self, turn: Turn, text: str) -> None:
        SvcChoose().text(turn, text)
