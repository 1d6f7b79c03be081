"""Step specifications and the registry the engine dispatches on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from flows.types import Choice

if TYPE_CHECKING:
    from flows.turn import Turn


@dataclass(frozen=True)
class Question:
    """What a step asks. ``free_text`` steps take typed text; ``accepts`` names media kinds."""

    text: str
    choices: tuple[Choice, ...] = ()
    free_text: bool = False
    accepts: frozenset[str] = frozenset()
    nav: bool = True


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
        """Resume after a :class:`flows.types.Call` this step issued."""


STEPS: dict[tuple[str, str], StepSpec] = {}
S = TypeVar("S", bound=StepSpec)


def register(flow: str, step: str) -> Callable[[type[S]], type[S]]:
    def deco(cls: type[S]) -> type[S]:
        STEPS[(flow, step)] = cls()
        return cls

    return deco
