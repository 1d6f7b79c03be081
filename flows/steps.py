"""Every question the resident can be asked, grouped by flow.

Flows: start (consent), menu, svc (choose a service, shared by survey and complaint),
survey (nine SKM elements + suggestion), complaint, status, data (rights under UU 27/2022),
lang.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flows.helpers.skm import CATEGORIES, ELEMENTS, FEE_ELEMENT
from flows.helpers.tickets import normalise_ticket
from flows.helpers.triggers import asks_for_person
from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice, RecordConsent, SetLanguage, UpsertSurvey
from flows.person import PersonAgency

MAX_DESCRIPTION = 2000
MIN_DESCRIPTION = 15
MAX_SUGGESTION = 1000
MAX_PHOTOS = 5

COMPLAINT_WORDS = ("lapor", "adu", "aduan", "keluh", "keluhan", "komplain", "pengaduan", "complain")
SURVEY_WORDS = ("nilai", "survei", "survey", "rating", "puas", "penilaian", "rate")
STATUS_WORDS = ("status", "tiket", "ticket", "cek")


def meaningful(text: str) -> bool:
    """At least two letters or digits: emoji-only or punctuation-only text is not an answer."""
    return sum(ch.isalnum() for ch in text) >= 2


def yes_no(turn: Turn) -> tuple[Choice, ...]:
    return (Choice("yes", turn.t("yes")), Choice("no", turn.t("no")))


# ---------------------------------------------------------------- start / consent / menu


@register("start", "consent")
class Consent(StepSpec):
    def ask(self, turn: Turn) -> Question:
        other = "en" if turn.lang == "id" else "id"
        return Question(
            turn.t("consent.notice"),
            (
                Choice("agree", turn.t("consent.agree")),
                Choice("decline", turn.t("consent.decline")),
                Choice(f"lang:{other}", turn.t(f"lang.name.{other}")),
            ),
            nav=False,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "agree":
            turn.emit(RecordConsent())
            turn.consented = True
            deep = turn.data.get("deep")
            turn.say("consent.thanks")
            turn.home()
            if deep and turn.ctx.catalog.service(deep):
                SvcChoose().start(turn, "survey", service=deep)
        elif choice == "decline":
            turn.call("decline_consent")  # the runtime forgets the contact (bot/privacy.py)
        elif choice.startswith("lang:"):
            lang = choice.split(":", 1)[1]
            turn.state["lang"] = lang
            turn.emit(SetLanguage(lang))

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.say("consent.declined")
        # Leave the consent question: a later "1" must not count as a yes unseen.
        turn.goto("start", "declined", push=False)
        turn.ask_after = False


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
        elif choice == "person":  # escalation to human review (flows/person.py, bot/cases.py)
            PersonAgency().start(turn)

    def text(self, turn: Turn, text: str) -> None:
        """Typed words on the menu: a ticket number, a service name, or an intent."""
        if asks_for_person(text):
            PersonAgency().start(turn)
            return
        ticket = normalise_ticket(text)
        if ticket and any(ch.isdigit() for ch in text):
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
        if intent in ("survey", "complaint"):
            SvcChoose().start(turn, intent, service=service)
        elif intent == "status":
            self.choice(turn, "status")
        elif service:
            turn.goto("menu", "intent", {"service": service})
        else:
            turn.say("menu.not_understood")


@register("menu", "intent")
class MenuIntent(StepSpec):
    """The resident typed a service name on the menu: rate it or complain about it?"""

    def ask(self, turn: Turn) -> Question:
        svc = turn.ctx.catalog.service(turn.data["service"])
        name = svc.title(turn.lang) if svc else "?"
        return Question(
            turn.t("menu.intent", service=name),
            (Choice("survey", turn.t("menu.survey")), Choice("complaint", turn.t("menu.complaint"))),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        SvcChoose().start(turn, choice, service=turn.data["service"])


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


# ---------------------------------------------------------------- choosing a service


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
            data = {"service": code, "key": turn.event.event_id, "answers": {}}
            turn.goto("survey", "element", data, push=push)


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


# ---------------------------------------------------------------- survey (SKM)


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


# ---------------------------------------------------------------- complaint

COMPLAINT_FIELDS = (
    "service",
    "description",
    "category",
    "occurred",
    "photos_done",
    "location_done",
    "confidential",
    "contact_ok",
)


def complaint_next(turn: Turn, data: dict[str, Any], push: bool = True) -> None:
    """Go to the first question not answered yet: nothing is ever asked twice."""
    for field in COMPLAINT_FIELDS:
        if field not in data:
            turn.goto("complaint", field, data, push=push)
            return
    turn.goto("complaint", "confirm", data, push=push)


class ComplaintStep(StepSpec):
    field = ""

    def set(self, turn: Turn, value: Any, **extra: Any) -> None:
        complaint_next(turn, {**turn.data, self.field: value, **extra})


@register("complaint", "description")
class ComplaintDescription(ComplaintStep):
    field = "description"

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("complaint.description"), free_text=True)

    def text(self, turn: Turn, text: str) -> None:
        if len(text) > MAX_DESCRIPTION:
            turn.say("too_long", limit=MAX_DESCRIPTION, length=len(text))
        elif len(text) < MIN_DESCRIPTION or not meaningful(text):
            turn.say("complaint.description_short")
        else:
            self.set(turn, text)


@register("complaint", "category")
class ComplaintCategory(ComplaintStep):
    field = "category"

    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("complaint.category"),
            tuple(Choice(c, turn.t(f"cat.{c}")) for c in CATEGORIES),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, choice)


@register("complaint", "occurred")
class ComplaintWhen(ComplaintStep):
    field = "occurred"

    def ask(self, turn: Turn) -> Question:
        opts = ("today", "yesterday", "week", "earlier")
        return Question(
            turn.t("complaint.when"),
            tuple(Choice(o, turn.t(f"when.{o}")) for o in opts),
            free_text=True,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        svc = turn.ctx.catalog.service(turn.data.get("service", ""))
        agency = turn.ctx.catalog.agency(svc.agency) if svc else None
        tz = ZoneInfo(agency.timezone if agency else "Asia/Jakarta")
        today = turn.ctx.now.astimezone(tz).date()
        if choice == "today":
            value = today.isoformat()
        elif choice == "yesterday":
            value = (today - timedelta(days=1)).isoformat()
        elif choice == "week":
            value = f"{(today - timedelta(days=7)).isoformat()}..{today.isoformat()}"
        else:
            value = f"..{(today - timedelta(days=7)).isoformat()}"
        self.set(turn, value)

    def text(self, turn: Turn, text: str) -> None:
        if not meaningful(text) or len(text) > 200:
            turn.say("complaint.when_invalid")
        else:
            self.set(turn, text)


@register("complaint", "photos_done")
class ComplaintPhoto(ComplaintStep):
    field = "photos_done"

    def ask(self, turn: Turn) -> Question:
        photos = turn.data.get("photos", [])
        if photos:
            return Question(
                turn.t("complaint.photo_more", n=len(photos)),
                (Choice("done", turn.t("next")),),
                accepts=frozenset({"photo"}),
            )
        return Question(
            turn.t("complaint.photo"), (Choice("done", turn.t("skip")),), accepts=frozenset({"photo"})
        )

    def photo(self, turn: Turn, media: dict[str, Any]) -> None:
        photos = [*turn.data.get("photos", []), media]
        if len(photos) >= MAX_PHOTOS:
            self.set(turn, True, photos=photos)
        else:
            turn.data["photos"] = photos

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, True)


@register("complaint", "location_done")
class ComplaintLocation(ComplaintStep):
    field = "location_done"

    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("complaint.location"),
            (Choice("skip", turn.t("skip")),),
            free_text=True,
            accepts=frozenset({"location"}),
        )

    def location(self, turn: Turn, location: tuple[float, float]) -> None:
        lat, lon = location
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            turn.say("complaint.location_ok", location=f"{lat:.5f}, {lon:.5f}")
            self.set(turn, True, location=[lat, lon])
        else:
            turn.say("location_not_expected")

    def text(self, turn: Turn, text: str) -> None:
        if not meaningful(text) or len(text) > 300:
            turn.say("complaint.location_invalid")
        else:
            self.set(turn, True, location_text=text)

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, True)


@register("complaint", "confidential")
class ComplaintConfidential(ComplaintStep):
    field = "confidential"

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("complaint.confidential"), yes_no(turn))

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, choice == "yes")


@register("complaint", "contact_ok")
class ComplaintContact(ComplaintStep):
    field = "contact_ok"

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("complaint.contact"), yes_no(turn))

    def choice(self, turn: Turn, choice: str) -> None:
        self.set(turn, choice == "yes")


def complaint_summary(turn: Turn, data: dict[str, Any]) -> str:
    svc = turn.ctx.catalog.service(data.get("service", ""))
    description = data.get("description", "")
    if len(description) > 300:
        description = description[:300] + "…"
    if data.get("location"):
        lat, lon = data["location"]
        location = f"{lat:.5f}, {lon:.5f}"
    else:
        location = data.get("location_text") or "-"
    return turn.t(
        "complaint.summary",
        service=svc.title(turn.lang) if svc else "?",
        description=description,
        category=turn.t(f"cat.{data.get('category', 'lainnya')}"),
        occurred=data.get("occurred", "-"),
        photos=len(data.get("photos", [])),
        location=location,
        confidential=turn.t("yes" if data.get("confidential") else "no"),
        contact=turn.t("yes" if data.get("contact_ok") else "no"),
    )


EDITABLE = ("service", "description", "category", "occurred", "photos_done", "location_done",
            "confidential", "contact_ok")


@register("complaint", "confirm")
class ComplaintConfirm(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(
            complaint_summary(turn, turn.data),
            (Choice("send", turn.t("complaint.send")), Choice("edit", turn.t("complaint.edit"))),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "edit":
            turn.goto("complaint", "edit", turn.data)
            return
        data = turn.data
        turn.call(
            "create_complaint",
            key=data["key"],
            service=data["service"],
            description=data["description"],
            category=data["category"],
            occurred=data.get("occurred"),
            photos=data.get("photos", []),
            location=data.get("location"),
            location_text=data.get("location_text"),
            confidential=bool(data.get("confidential")),
            contact_ok=bool(data.get("contact_ok")),
        )

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.say("complaint.done", ticket=result["ticket"])
        if result.get("escalated"):  # a serious complaint went straight to staff (bot/cases.py)
            turn.say("case.escalated", ticket=result["ticket"])
        turn.home()


@register("complaint", "edit")
class ComplaintEdit(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("complaint.edit_which"),
            tuple(Choice(f, turn.t(f"complaint.field.{f}")) for f in EDITABLE),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        data = {k: v for k, v in turn.data.items() if k != choice}
        if choice == "photos_done":
            data.pop("photos", None)
        if choice == "location_done":
            data.pop("location", None)
            data.pop("location_text", None)
        if choice == "service":
            SvcChoose().start(turn, "complaint", carry=data)
        else:
            complaint_next(turn, data)


# ---------------------------------------------------------------- status of a complaint


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
        turn.say(
            "status.show",
            ticket=result["ticket"],
            service=svc.title(turn.lang) if svc else "-",
            status=turn.t(f"complaint_status.{result['status']}"),
            created=result.get("created", ""),
            updated=result.get("updated", ""),
        )
        turn.home()


# ---------------------------------------------------------------- data rights (UU 27/2022)


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
            ),
            (Choice("delete", turn.t("data.delete")),),
        )

    def choice(self, turn: Turn, choice: str) -> None:
        turn.goto("data", "confirm", {})

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.state["data"] = dict(result)


@register("data", "confirm")
class DataConfirm(StepSpec):
    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("data.confirm"),
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


# ---------------------------------------------------------------- staff registration


@register("staff", "register")
class StaffRegister(StepSpec):
    """``/daftar <code>``: become a head or staff member of an agency (bot/staff.py decides)."""

    def start(self, turn: Turn, code: str) -> None:
        if not code.strip():
            turn.say("staff.need_code")
            turn.ask_after = turn.consented
            return
        turn.goto("staff", "register", {})
        turn.call("register_staff", code=code.strip()[:64])

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("still_working"), nav=False)  # the call answers in the same turn

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        reason = str(result.get("reason", "invalid"))
        if result.get("ok"):
            role = turn.t(f"staff.role.{result.get('role', 'staff')}")
            turn.say(f"staff.{reason}", agency=result.get("agency", ""), role=role)
            turn.say("staff.privacy")
        else:
            turn.say(f"staff.refused.{reason}")
        if not turn.back():
            turn.home()
        # Someone who has not agreed as a resident is not pushed into the resident notice here.
        turn.ask_after = turn.consented
