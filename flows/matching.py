"""Free-text service matching with rapidfuzz.

Residents type "ktp", "e ktp", "akta lahir", "pajak motor". We score the text against every
name and alias, keep the best score per target, and only decide when the winner is clearly
ahead of the runner-up; otherwise the engine asks with buttons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

SURE = 86.0  # a score this high, clearly ahead of the next target, is taken without asking
MARGIN = 8.0  # how far ahead of the runner-up a winner must be
FLOOR = 62.0  # below this a target is not even offered as a candidate


def _scorer(query: str, choice: str, **kwargs: object) -> float:
    """WRatio, with two fixes for how residents type.

    A name that stands whole inside a longer message ("bayar pbb") is a full match, and a
    short query must match a whole word (stops "pbb" matching "pkb").
    """
    if len(choice) >= 2 and f" {choice} " in f" {query} ":
        return 100.0
    if len(query) <= 4:
        words = choice.split()
        best = max((fuzz.ratio(query, w) for w in words), default=0.0)
        return max(best, fuzz.ratio(query, choice))
    return fuzz.WRatio(query, choice)


@dataclass(frozen=True)
class Match:
    """``decided`` is set when the text clearly means one target; ``candidates`` otherwise."""

    decided: str | None
    candidates: tuple[str, ...]


class ServiceMatcher:
    """Targets are service codes, or ``@agency-slug`` for a whole agency."""

    def __init__(
        self, targets: Sequence[tuple[str, Sequence[str]]], parents: dict[str, str] | None = None
    ) -> None:
        self._parents = parents or {}
        self._keys: list[str] = []
        self._names: list[str] = []
        for key, names in targets:
            for name in names:
                if utils.default_process(name):
                    self._keys.append(key)
                    self._names.append(name)

    def match(self, text: str, limit: int = 4) -> Match:
        if not utils.default_process(text):
            return Match(None, ())
        hits = process.extract(
            text,
            self._names,
            scorer=_scorer,
            processor=utils.default_process,
            limit=len(self._names),
        )
        best: dict[str, float] = {}
        for _name, score, idx in hits:
            key = self._keys[idx]
            if score > best.get(key, -1.0):
                best[key] = score
        # "ktp di kantor capil": the service wins over its own agency when both match well.
        for key, score in list(best.items()):
            parent = self._parents.get(key)
            if parent in best and score >= best[parent] - 5:
                del best[parent]
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        ranked = [(k, s) for k, s in ranked if s >= FLOOR]
        if not ranked:
            return Match(None, ())
        top_key, top = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if top >= SURE and top - second >= MARGIN:
            return Match(top_key, (top_key,))
        close = tuple(k for k, s in ranked[:limit] if top - s < 15.0)
        return Match(None, close)
