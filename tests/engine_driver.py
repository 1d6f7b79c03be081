"""Drive the pure engine in tests, answering its Calls from memory like the runtime would."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.catalog import catalog_from_spec, read_catalog
from bot.i18n import Texts
from flows import engine
from flows.machine.types import (
    Call,
    Context,
    Effect,
    Event,
    RecordConsent,
    Reply,
    SaveProfile,
    SetLanguage,
    UpsertSurvey,
)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = catalog_from_spec(read_catalog(ROOT / "catalog.yaml"))


class StrictTexts(Texts):
    """Fails the test on a message id missing from a catalog, instead of logging it."""

    def __call__(self, lang: str, key: str, **params: Any) -> str:
        from bot.i18n import translations

        if translations(lang).gettext(key) == key:
            raise AssertionError(f"message id {key!r} missing from the {lang!r} catalog")
        return super().__call__(lang, key, **params)


STRICT = StrictTexts()


@dataclass
class Driver:
    now: datetime = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    consented: bool = False
    language: str = "id"
    state: dict[str, Any] = field(default_factory=dict)
    effects: list[Effect] = field(default_factory=list)
    surveys: dict[str, UpsertSurvey] = field(default_factory=dict)
    complaints: dict[str, dict[str, Any]] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    # The respondent profile (SaveProfile); True: already asked, so surveys end at the menu.
    profile_asked: bool = True
    profile: dict[str, str | None] = field(default_factory=dict)
    # One questionnaire per visit: when set, a second survey of a rated service is refused.
    once_per_visit: bool = False
    rated: dict[str, str] = field(default_factory=dict)

    def ctx(self) -> Context:
        return Context(now=self.now, catalog=CATALOG, texts=STRICT, language=self.language,
                       consented=self.consented, timeout=timedelta(minutes=30))

    def send(self, event: Event) -> list[Reply]:
        """Feed one event; return the replies of this turn (after answering any calls)."""
        result = engine.step(self.state, event, self.ctx())
        out: list[Reply] = []
        for _ in range(8):
            call = None
            for eff in result.effects:
                self.effects.append(eff)
                if isinstance(eff, Reply):
                    out.append(eff)
                elif isinstance(eff, RecordConsent):
                    self.consented = True
                elif isinstance(eff, SetLanguage):
                    self.language = eff.language
                elif isinstance(eff, UpsertSurvey):
                    self.surveys[eff.key] = eff
                    self.rated.setdefault(eff.service, eff.key)
                elif isinstance(eff, SaveProfile):
                    self.profile_asked = True
                    if eff.field:
                        self.profile[eff.field] = eff.value
                elif isinstance(eff, Call):
                    call = eff
            if call is None:
                break
            answer = self.answer(call)
            answer["call"] = call.name
            result = engine.step(result.state, Event("result", event.event_id, result=answer), self.ctx())
        self.state = json.loads(json.dumps(result.state))  # as the sessions table would
        return out

    def answer(self, call: Call) -> dict[str, Any]:
        if call.name == "create_complaint":
            ticket = f"T{next(self.counter):03d}-AAAA"
            self.complaints[ticket] = dict(call.args)
            return {"ticket": ticket}
        if call.name == "my_tickets":
            return {"tickets": list(self.complaints)}
        if call.name == "lookup_ticket":
            t = call.args["ticket"]
            if t in self.complaints:
                return {"found": True, "ticket": t, "service": self.complaints[t]["service"],
                        "status": "new", "created": "x", "updated": "y"}
            return {"found": False, "ticket": t}
        if call.name == "my_data":
            return {"channel": "console", "surveys": len(self.surveys), "complaints": len(self.complaints),
                    "tickets": list(self.complaints), "profile": dict(self.profile)}
        if call.name == "survey_check":
            prev = self.rated.get(call.args["service"]) if self.once_per_visit else None
            if prev is None:
                return {"allowed": True, "profile_asked": self.profile_asked}
            return {"allowed": False, "profile_asked": self.profile_asked, "key": prev, "at": "09.00"}
        if call.name == "decline_consent":
            return {}
        if call.name == "delete_my_data":
            self.consented = False
            return {}
        if call.name == "request_person":
            return {"ok": True, "agency": call.args.get("agency", ""), "ticket": "CASE-0001", "due": "x"}
        if call.name == "register_staff":
            return {"ok": False, "reason": "invalid"}
        if call.name == "followup":  # the runtime checks ownership; unknown ids are "gone"
            return {"ok": False, "reason": "unknown"}
        raise AssertionError(f"unexpected call {call.name}")

    def _id(self) -> str:
        return f"e{next(self.counter)}"

    def text(self, text: str) -> list[Reply]:
        return self.send(Event("text", self._id(), text=text))

    def press(self, label_or_id: str) -> list[Reply]:
        """Press a button of the last question, by its id or its exact label."""
        q = self.last_question()
        for c in q.choices:
            if label_or_id in (c.id, c.label):
                return self.send(Event("choice", self._id(), choice=c.id, q=q.q))
        raise AssertionError(f"no button {label_or_id!r} in {[c.label for c in q.choices]}")

    def last_question(self) -> Reply:
        for eff in reversed(self.effects):
            if isinstance(eff, Reply) and eff.choices:
                return eff
        raise AssertionError("no question asked yet")

    def later(self, **kw: float) -> None:
        self.now += timedelta(**kw)

    def onboard(self) -> None:
        self.text("/start")
        self.press("agree")

    def with_(self, **kw: Any) -> Driver:
        return replace(self, **kw)
