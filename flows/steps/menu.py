"""The main menu (flow "menu"): its items, and typed words on it (a ticket, a service, an intent)."""

from __future__ import annotations

from flows.helpers.tickets import find_ticket, normalise_ticket
from flows.helpers.triggers import asks_for_person
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice
from flows.steps.person import PersonAgency
from flows.steps.service import SvcChoose

COMPLAINT_WORDS = ("lapor", "adu", "aduan", "keluh", "keluhan", "komplain", "pengaduan", "complain")
SURVEY_WORDS = ("nilai", "survei", "survey", "rating", "puas", "penilaian", "rate")
STATUS_WORDS = ("status", "tiket", "ticket", "cek")


@register("menu", "main")
class Menu(StepSpec):
    ITEMS = ("survey", "complaint", "status", "data", "lang", "help", "person")

    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("menu.ask"),
            tuple(Choice(item, turn.t(f"menu.{item}")) for item in self.ITEMS),
            free_text=True,
            nav=False,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "survey":
            SvcChoose().start(turn, "survey")
        elif choice == "complaint":
            SvcChoose().start(turn, "complaint")
        elif choice == "status":
            turn.goto("status", "ask")
            turn.call("my_tickets")
        elif choice == "data":
            turn.goto("data", "show")
            turn.call("my_data")
        elif choice == "lang":
            turn.goto("lang", "choose")
        elif choice == "help":
            turn.say("help")
        elif choice == "person":  # escalation to human review (flows/steps/person.py, bot/desk/cases.py)
            PersonAgency().start(turn)

    def text(self, turn: Turn, text: str) -> None:
        """Typed words on the menu: a ticket number, a service name, or an intent."""
        if asks_for_person(text):
            PersonAgency().start(turn)
            return
        ticket = normalise_ticket(text) if any(ch.isdigit() for ch in text) else None
        ticket = ticket or find_ticket(text)
        if ticket:
            turn.goto("status", "ask")
            turn.call("lookup_ticket", ticket=ticket)
            return
        words = set(text.lower().replace(",", " ").split())
        intent = None
        if any(w.startswith(COMPLAINT_WORDS) for w in words):
            intent = "complaint"
        elif any(w.startswith(SURVEY_WORDS) for w in words):
            intent = "survey"
        elif any(w.startswith(STATUS_WORDS) for w in words):
            intent = "status"
        match = turn.ctx.catalog.matcher.match(text, lang=turn.lang)
        service = match.decided if match.decided and not match.decided.startswith("@") else None
        agency = match.decided[1:] if match.decided and match.decided.startswith("@") else None
        if intent in ("survey", "complaint"):
            SvcChoose().start(turn, intent, service=service)
            if agency and not service:
                SvcChoose().agency(turn, agency)
        elif intent == "status":
            self.choice(turn, "status")
        elif service:
            turn.goto("menu", "intent", {"service": service})
        elif agency:  # "rsud", "samsat", "hospital": rate it or complain, then its services
            turn.goto("menu", "intent", {"agency": agency})
        else:
            turn.say("menu.not_understood")


@register("menu", "intent")
class MenuIntent(StepSpec):
    """The resident typed a service (or agency) name on the menu: rate it or complain about it?"""

    def ask(self, turn: Turn) -> Question:
        if turn.data.get("agency"):
            agency = turn.ctx.catalog.agency(turn.data["agency"])
            key, name = "menu.intent_agency", agency.title(turn.lang) if agency else "?"
        else:
            svc = turn.ctx.catalog.service(turn.data["service"])
            key, name = "menu.intent", svc.title(turn.lang) if svc else "?"
        return Question(
            turn.t(key, service=name),
            (Choice("survey", turn.t("menu.survey")), Choice("complaint", turn.t("menu.complaint"))),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if turn.data.get("agency"):
            agency = turn.data["agency"]
            SvcChoose().start(turn, choice)
            SvcChoose().agency(turn, agency)  # the agency's services (« Kembali: all agencies)
        else:
            SvcChoose().start(turn, choice, service=turn.data["service"])
