"""Step specifications and the registry the engine dispatches on.

A step handles a :class:`~flows.machine.turn.Turn`, while a turn knows nothing of steps:
``step_at`` finds the step a turn stands at. The flows (flows/steps/) fill ``STEPS`` with
``@register`` when flows/engine.py imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flows.machine.turn import Turn
from flows.machine.types import Choice


@dataclass(frozen=True)
class Question:
    """What a step asks. ``free_text`` steps take typed text; ``accepts`` names media kinds.

    ``own_words``: typed text here is the resident's own words (a description, a suggestion, a
    date), so "2 kali saya datang" is that text, not choice 2. A question of choices that only
    wants typed text as another way to choose (a rating: "gak tau", "(3)") says False; unset,
    it follows ``free_text``.
    """

    text: str
    choices: tuple[Choice, ...] = ()
    free_text: bool = False
    accepts: frozenset[str] = frozenset()
    nav: bool = True
    own_words: bool | None = None

    @property
    def takes_own_words(self) -> bool:
        return self.free_text if self.own_words is None else self.own_words


class StepSpec:
    """One question of a flow. Handlers change ``turn``; the engine asks the next question."""

    def ask(self, turn: Turn) -> Question:
        raise NotImplementedError

    def choice(self, turn: Turn, choice: str) -> None:
        turn.say("not_understood")

    def text(self, turn: Turn, text: str) -> None:
        turn.say("not_understood")

    def photo(self, turn: Turn, media: dict[str, Any]) -> None:
        turn.say("photo_not_expected")

    def location(self, turn: Turn, location: tuple[float, float]) -> None:
        turn.say("location_not_expected")

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        """Resume after a :class:`flows.machine.types.Call` this step issued."""


STEPS: dict[tuple[str, str], StepSpec] = {}
S = TypeVar("S", bound=StepSpec)


def register(flow: str, step: str) -> Callable[[type[S]], type[S]]:
    def deco(cls: type[S]) -> type[S]:
        STEPS[(flow, step)] = cls()
        return cls

    return deco


def step_at(turn: Turn) -> StepSpec | None:
    """The step the conversation stands at, or None outside any flow."""
    where = turn.where
    return STEPS.get(where) if where else None
