"""The pure engine: ``step(state, event, context) -> StepResult``.

State is a JSON-able dict (it is stored as-is in the sessions table)::

    {"lang": "id", "flow": "survey", "step": "element", "data": {...},
     "stack": [...], "q": 12, "at": "2026-11-28T03:00:00+00:00"}

Global words (cancel, help, back, menu, language) are recognised here once, so every step of
every flow gets them for free (what they do is in flows/steps/commands.py); unexpected input
is answered and the question asked again.

This is the top of the package: the one module that imports every flow (``FLOWS``), which
registers their steps, and runs them on the machine (flows/machine/).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz, utils

from flows.helpers import smalltalk
from flows.machine.registry import STEPS, Question, step_at
from flows.machine.turn import Turn, copy_state
from flows.machine.types import Choice, Context, Event, Reply, StepResult
from flows.steps import (
    commands,
    complaint,
    consent,
    data,
    followup,
    language,
    menu,
    person,
    plan,
    profile,
    service,
    staff,
    status,
    survey,
)

# Every flow, imported here so that each has registered its steps before the first event:
# this is the one module that assembles the engine from the machine and the flows.
FLOWS = (consent, menu, language, service, survey, profile, complaint, status, data, staff, person,
         followup, plan)

MAX_STACK = 40

# Words that work everywhere, with or without a leading slash.
COMMANDS: dict[str, str] = {
    "start": "start",
    "mulai": "start",
    "menu": "menu",
    "batal": "cancel",
    "cancel": "cancel",
    "bantuan": "help",
    "help": "help",
    "tolong": "help",
    "kembali": "back",
    "back": "back",
    "bahasa": "lang",
    "language": "lang",
    "nilai": "survey",
    "survei": "survey",
    "rate": "survey",
    "lapor": "complaint",
    "complaint": "complaint",
    "status": "status",
    "datasaya": "data",
    "mydata": "data",
    "petugas": "person",
    "person": "person",
    "daftar": "register",
    "register": "register",
    "masuk": "login",
    "login": "login",
    "rencana": "plan",
    "plan": "plan",
}
# Only these are recognised without a slash: short words a resident may type to escape.
BARE = {"menu", "batal", "cancel", "bantuan", "help", "kembali", "back"}

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\ufeff]")


def clean_text(text: str) -> str:
    """Drop control and invisible characters and normalise Unicode, keeping newlines."""
    text = unicodedata.normalize("NFC", text)
    return _CONTROL.sub("", text).strip()


def parse_command(text: str) -> tuple[str, str] | None:
    """``/batal`` -> ("cancel", ""); ``/start ktp`` -> ("start", "ktp"); bare "batal" too."""
    if not text:
        return None
    if text.startswith("/"):
        head, _, arg = text[1:].partition(" ")
        head = head.split("@", 1)[0].lower()  # /start@PrimaBot in groups
        name = COMMANDS.get(head)
        return (name, arg.strip()) if name else None
    word = text.lower().strip(" .!")
    if word in BARE:
        return COMMANDS[word], ""
    return None


def step(state: dict[str, Any], event: Event, ctx: Context, *, owned: bool = False) -> StepResult:
    """Advance one conversation by one event. Never does I/O; never reads the clock.

    The given state is left untouched, unless ``owned``: a caller that just decoded it and
    keeps no reference hands it over, saving a copy of the whole "back" stack per event.
    """
    turn = Turn(state if owned else copy_state(state), event, ctx)
    _dispatch(turn)
    if turn.ask_after:
        _ask(turn)
    turn.state["at"] = ctx.now.isoformat()
    if len(turn.state.get("stack", [])) > MAX_STACK:
        turn.state["stack"] = turn.state["stack"][-MAX_STACK:]
    return StepResult(turn.state, turn.effects)


def _expired(turn: Turn) -> bool:
    at = turn.state.get("at")
    if not at or turn.state.get("flow") in (None, "menu", "start"):
        return False
    try:
        last = datetime.fromisoformat(at)
    except ValueError:
        return True
    return turn.ctx.now - last > turn.ctx.timeout


def _dispatch(turn: Turn) -> None:
    ev = turn.event
    st = turn.state
    st.setdefault("lang", turn.ctx.language)
    if ev.kind == "result":
        spec = step_at(turn)
        if spec is None or turn.state.get("wait") != (ev.result or {}).get("call"):
            turn.ask_after = False  # a late result for a step we already left: ignore
            return
        st.pop("wait", None)
        spec.result(turn, ev.result or {})
        return

    if ev.kind == "choice" and (ev.choice or "").startswith(followup.PREFIX) and turn.consented:
        # A button on a follow-up the bot sent by itself: valid whatever the current question.
        followup.dispatch(turn, ev.choice or "", _expired(turn))
        return

    text = clean_text(ev.text) if ev.kind == "text" else ""
    command = parse_command(text) if ev.kind == "text" else None
    if _expired(turn):
        turn.say("session.expired")
        turn.home()
        if command is None:
            return  # the input answered a question that is gone: show the menu instead
    if command is not None:
        commands.run(turn, *command)
        return

    if not turn.consented and st.get("flow") != "plan":  # /rencana is staff work, not a resident's
        if turn.where != ("start", "consent"):
            turn.goto("start", "consent", push=False)
            turn.say("greeting")
            return
    elif st.get("flow") is None or step_at(turn) is None:
        turn.home()
        if ev.kind == "text" and text and not _small_talk(turn, text):
            STEPS[("menu", "main")].text(turn, text)
        return
    if ev.kind == "ask":  # only show where the resident is (after a rating outside the flow)
        return

    if st.get("wait"):
        turn.say("still_working")
        turn.ask_after = False
        return

    spec = step_at(turn)
    assert spec is not None
    question = spec.ask(turn)
    shown = presented(turn, question)
    if ev.kind == "choice":
        choice = ev.choice or ""
        if ev.q != st.get("q") or choice not in {c.id for c in shown}:
            turn.say("stale_button")
            return
        _choose(turn, choice)
    elif ev.kind == "text":
        if not text:
            turn.say("not_understood")
            return
        picked = match_choice(text, shown, own_text=question.takes_own_words)
        if picked is None:
            picked = _yes_no(text, shown)
        if picked is not None:
            chosen = next(c for c in shown if c.id == picked)
            if not chosen.nav:  # say what was recorded, as a pressed button shows it
                turn.say("echo.chosen", label=chosen.label)
            _choose(turn, picked)
        elif _small_talk(turn, text):
            return
        elif question.free_text:
            spec.text(turn, text)
        elif _digits(text):
            keys = [c.key for c in shown if c.key]
            turn.say("choice.bad_number", keys=", ".join(keys))
        else:
            turn.say("not_understood")
    elif ev.kind == "photo":
        if "photo" in question.accepts:
            spec.photo(turn, ev.media or {})
        else:
            turn.say("photo_not_expected")
    elif ev.kind == "location":
        if "location" in question.accepts and ev.location is not None:
            spec.location(turn, ev.location)
        else:
            turn.say("location_not_expected")
    else:
        turn.say("unsupported")


# Choice ids that mean yes or no on the questions that ask exactly that.
_YES_IDS, _NO_IDS = frozenset(("agree", "yes")), frozenset(("decline", "no"))


def _yes_no(text: str, shown: tuple[Choice, ...] | list[Choice]) -> str | None:
    """"iya", "ok", "gak usah", "yes" answer a yes/no question as its buttons would."""
    said = smalltalk.yes_no(text)
    if said is None:
        return None
    ids = _YES_IDS if said == "yes" else _NO_IDS
    found = [c.id for c in shown if c.id in ids]
    return found[0] if len(found) == 1 else None


def _small_talk(turn: Turn, text: str) -> bool:
    """A greeting or thanks on its own gets a word back; the question is then asked again."""
    kind = smalltalk.kind(text)
    if kind is None:
        return False
    turn.say(f"smalltalk.{kind}", greeting=smalltalk.echo_greeting(text, turn.lang))
    return True


def _choose(turn: Turn, choice: str) -> None:
    if choice == "nav:back":
        commands.run(turn, "back", "")
    elif choice == "nav:cancel":
        commands.run(turn, "cancel", "")
    elif (spec := step_at(turn)) is not None:
        spec.choice(turn, choice)


def _ask(turn: Turn) -> None:
    spec = step_at(turn)
    if spec is None or turn.state.get("wait"):
        return
    question: Question = spec.ask(turn)
    choices = presented(turn, question)
    q = int(turn.state.get("q", 0)) + 1
    turn.state["q"] = q
    turn.effects.append(Reply(question.text, choices, q=q if choices else None))


def presented(turn: Turn, question: Question) -> tuple[Choice, ...]:
    """The choices exactly as every channel shows them: with back/cancel and their keys.

    Used both to ask and to read the answer, so a typed number can only mean the key the
    resident saw. Choices that bring their own keys (a rating's scores) keep them and the
    others stay unnumbered; otherwise the choices are numbered 1..n in the order shown.
    """
    choices = list(question.choices)
    if question.nav:
        choices += [
            Choice("nav:back", turn.t("nav.back"), nav=True),
            Choice("nav:cancel", turn.t("nav.cancel"), nav=True),
        ]
    if any(c.key for c in choices):
        return tuple(choices)
    return tuple(replace(c, key=str(n)) for n, c in enumerate(choices, start=1))


def _digits(text: str) -> bool:
    return text.strip().rstrip(".)").isdecimal()


_KEY_AND_WORDS = re.compile(r"^\s*(\d{1,3})\s*[.)]?\s+(\S.*)$", re.S)


def match_choice(text: str, choices: tuple[Choice, ...] | list[Choice], own_text: bool = False) -> str | None:
    """A typed key ("4") or label ("sangat mudah") picks a choice.

    A number only ever picks the choice showing that key, never a position: on a rating the
    key is the score, so "4" is "Sangat sesuai" however the answers are ordered. Numbers are
    compared as text, so a 5,000-digit message is simply no choice.
    """
    if not choices:
        return None
    stripped = text.strip().rstrip(".)")
    if stripped.isdecimal():
        if len(stripped) > 3:
            return None
        number = str(int(stripped))  # "04" and full-width "４" are 4
        return next((c.id for c in choices if c.key and c.key == number), None)
    both = _KEY_AND_WORDS.match(text)
    if both is not None:  # "3 kurang sesuai": the number and the words must mean the same answer
        by_key = match_choice(both.group(1), choices)
        by_words = match_choice(both.group(2), choices)
        if by_key is not None and by_words is not None:
            return by_key if by_key == by_words else None
        if by_key is not None:
            # Words that name no answer: where the question takes the resident's own words they
            # are that text ("2 kali saya datang" a description, "1 loket saja" a suggestion,
            # never Batal or Lewati); on a question of choices only, the number ("2 mantap").
            return None if own_text else by_key
    wanted = utils.default_process(text)
    if not wanted or len(text) > 80:
        return None
    best: tuple[float, str] | None = None
    for c in choices:
        label = utils.default_process(c.label)
        if label == wanted:
            return c.id
        score = fuzz.ratio(wanted, label)
        if score >= 90 and (best is None or score > best[0]):
            best = (score, c.id)
    if best:
        return best[1]
    return _word_in_one_label(wanted, choices)


def _word_in_one_label(wanted: str, choices: tuple[Choice, ...] | list[Choice]) -> str | None:
    """"pungli" picks "Permintaan imbalan uang/barang (pungli)", "hapus" picks "Hapus data
    saya": whole words standing in exactly one answer's label (short words and words several
    labels share, like "sesuai" or "tidak", pick nothing). The echo shows what was taken."""
    if len(wanted) < 4:
        return None
    needle = f" {wanted} "
    hits = [c.id for c in choices if not c.nav and needle in f" {utils.default_process(c.label)} "]
    return hits[0] if len(hits) == 1 else None

