"""The small data types that cross the engine's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from flows.helpers.catalog import Catalog

# "ask": nothing to answer, only show the current question (after a press outside the flow).
EventKind = Literal["text", "choice", "photo", "location", "unsupported", "result", "ask"]


@dataclass(frozen=True)
class Event:
    """One inbound thing from a resident, already channel-neutral.

    ``q`` is the question number a button belonged to (stale buttons are refused);
    ``result`` carries the runtime's answer to a :class:`Call`.
    """

    kind: EventKind
    event_id: str
    text: str = ""
    choice: str | None = None
    q: int | None = None
    media: dict[str, Any] | None = None
    location: tuple[float, float] | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class Choice:
    """One answer. ``key`` is what a resident may type for it ("4"), shown on every channel.

    A rating's choices carry their score as key, so a typed "4" is always the score 4 the
    resident sees beside "Sangat sesuai", whatever order the answers are listed in; other
    questions are numbered 1..n by the engine. A choice without a key is picked by its label.
    """

    id: str
    label: str
    nav: bool = False  # back / cancel / menu: channels may render these apart
    key: str = ""


@dataclass(frozen=True)
class Reply:
    text: str
    choices: tuple[Choice, ...] = ()
    q: int | None = None  # set when the message is a question whose buttons can be pressed


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class RecordConsent:
    pass


@dataclass(frozen=True)
class UpsertSurvey:
    """The whole survey so far; applied idempotently by ``key``."""

    key: str
    service: str
    answers: dict[int, int | None]
    status: Literal["partial", "complete"]
    suggestion: str | None = None


@dataclass(frozen=True)
class SurveyCancelled:
    """The resident cancelled a survey on purpose: no reminder should follow it."""

    key: str


@dataclass(frozen=True)
class SaveProfile:
    """One answer of the respondent profile (flows/helpers/profile.py); ``value`` None: not given.

    ``field`` empty only marks the profile as asked. ``survey_key``: the questionnaire it was
    asked after, whose snapshot of the profile takes the answer too.
    """

    field: str
    value: str | None = None
    survey_key: str | None = None


@dataclass(frozen=True)
class Call:
    """Ask the runtime for data or a write whose result the engine needs (resumed as a result event)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


Effect = Reply | SetLanguage | RecordConsent | UpsertSurvey | SurveyCancelled | SaveProfile | Call


class Texts(Protocol):
    def __call__(self, lang: str, key: str, **params: Any) -> str: ...


@dataclass(frozen=True)
class Context:
    """Everything the engine may know about the world for one step."""

    now: datetime
    catalog: Catalog
    texts: Texts
    language: str = "id"
    consented: bool = False
    timeout: timedelta = timedelta(minutes=30)
    channel: str = "console"


@dataclass
class StepResult:
    state: dict[str, Any]
    effects: list[Effect]

    @property
    def replies(self) -> list[Reply]:
        return [e for e in self.effects if isinstance(e, Reply)]
