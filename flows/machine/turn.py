"""A turn: the mutable working set while the engine handles one event.

It knows no step (flows/machine/registry.py looks up the step a turn stands at), so the
registry can name it without an import circle.
"""

from __future__ import annotations

from typing import Any

from flows.machine.types import Call, Context, Effect, Event, Reply

_CONTAINERS = (dict, list, tuple)
# Messages said while the resident is still in a flow whose wording depends on that flow:
# "the earlier conversation timed out, what you sent is kept" is untrue for a complaint draft,
# which is stored only when sent.
FLOW_VARIANTS = {("session.expired", "complaint"): "session.expired.complaint"}


def copy_state(value: Any) -> Any:
    """Deep copy of JSON-like data (dicts, lists, tuples, scalars).

    ``copy.deepcopy`` spent more time on its memo bookkeeping than on copying: the state
    carries the whole "back" stack, so it is copied on every step.
    """
    if isinstance(value, dict):
        return {k: copy_state(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
    if isinstance(value, list):
        return [copy_state(v) if isinstance(v, _CONTAINERS) else v for v in value]
    if isinstance(value, tuple):
        return tuple(copy_state(v) for v in value)
    return value


class Turn:
    def __init__(self, state: dict[str, Any], event: Event, ctx: Context) -> None:
        self.state = state
        self.event = event
        self.ctx = ctx
        self.effects: list[Effect] = []
        self.ask_after = True
        self.consented = ctx.consented

    @property
    def lang(self) -> str:
        return str(self.state.get("lang") or self.ctx.language)

    @property
    def where(self) -> tuple[str, str] | None:
        flow, step = self.state.get("flow"), self.state.get("step")
        return (flow, step) if flow and step else None

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.state.setdefault("data", {})
        return data

    def t(self, key: str, **params: Any) -> str:
        """The text in the resident's language; a channel's own wording (``key@web``) when the
        catalog has one (a browser has no chat ID and no /start)."""
        has = getattr(self.ctx.texts, "has", None)
        variant = f"{key}@{self.ctx.channel}"
        if has is not None and has(self.lang, variant):
            key = variant
        return self.ctx.texts(self.lang, key, **params)

    def say(self, key: str, **params: Any) -> None:
        key = FLOW_VARIANTS.get((key, str(self.state.get("flow"))), key)
        self.effects.append(Reply(self.t(key, **params)))

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def goto(self, flow: str, step: str, data: dict[str, Any] | None = None, push: bool = True) -> None:
        """Move to another question; ``push`` remembers where we were for "back"."""
        if push and self.where is not None:
            stack: list[dict[str, Any]] = self.state.setdefault("stack", [])
            stack.append(
                {"flow": self.state["flow"], "step": self.state["step"], "data": copy_state(self.data)}
            )
        self.state["flow"] = flow
        self.state["step"] = step
        self.state["data"] = data if data is not None else {}

    def back(self) -> bool:
        stack = self.state.get("stack") or []
        if not stack:
            return False
        prev = stack.pop()
        self.state.update(flow=prev["flow"], step=prev["step"], data=prev["data"])
        return True

    def home(self) -> None:
        self.state.update(flow="menu", step="main", data={}, stack=[])
        self.state.pop("wait", None)

    def call(self, name: str, **args: Any) -> None:
        """Ask the runtime for something; the current step's ``result`` gets the answer."""
        self.state["wait"] = name
        self.effects.append(Call(name, args))

