"""Property: whatever a resident sends, in any order, the engine answers and never raises."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.machine.types import Event
from tests.engine_driver import Driver

WORDS = ["/start", "/start ktp", "/start nope", "/menu", "/batal", "/bantuan", "/kembali", "/bahasa",
         "/status", "/datasaya", "/nilai", "/lapor", "batal", "kembali", "menu", "ktp", "pajak", "samsat",
         "Petugas meminta uang di loket tanpa kuitansi", "K7QM-3XHD", "ya", "tidak", "1", "2", "3", "9",
         "0", "99", "👍", "", "   ", "\x00\x1b", "x" * 10_000, "Sangat sesuai", "Lewati", "English"]

text_event = st.one_of(st.sampled_from(WORDS), st.text(max_size=40)).map(lambda t: ("text", t))
choice_event = st.tuples(
    st.sampled_from(["agree", "decline", "lang:en", "survey", "complaint", "status", "data", "4", "1",
                     "skip", "nav:back", "nav:cancel", "s:ktp", "a:samsat", "send", "edit", "t:X", "yes",
                     "delete", "done", "x" * 70]),
    st.integers(min_value=-1, max_value=60),
).map(lambda c: ("choice", c))
press_event = st.integers(min_value=0, max_value=20).map(lambda k: ("press", k))
other_event = st.sampled_from([("photo", None), ("unsupported", None), ("location", (1.5, 102.0)),
                               ("location", (500.0, -999.0))])
wait = st.sampled_from([0, 0, 0, 1, 45]).map(lambda m: ("wait", m))
events = st.lists(st.one_of(text_event, choice_event, press_event, press_event, other_event, wait),
                  max_size=40)


def run(d: Driver, steps: list[tuple[str, Any]]) -> None:
    for n, (kind, value) in enumerate(steps):
        eid = f"h{n}"
        if kind == "wait":
            d.later(minutes=value)
            continue
        if kind == "text":
            event = Event("text", eid, text=value)
        elif kind == "choice":
            choice, q = value
            event = Event("choice", eid, choice=choice, q=q)
        elif kind == "press":
            try:
                question = d.last_question()
            except AssertionError:
                event = Event("text", eid, text="halo")
            else:
                c = question.choices[value % len(question.choices)]
                event = Event("choice", eid, choice=c.id, q=question.q)
        elif kind == "photo":
            event = Event("photo", eid, media={"type": "photo", "file_id": eid})
        elif kind == "location":
            event = Event("location", eid, location=value)
        else:
            event = Event("unsupported", eid)
        replies = d.send(event)
        assert replies, f"no answer to {event}"
        assert all(r.text.strip() for r in replies)
        json.dumps(d.state)  # the state must stay storable


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=events, onboarded=st.booleans(), english=st.booleans())
def test_engine_always_answers_and_never_raises(steps: list[tuple[str, Any]], onboarded: bool,
                                                english: bool) -> None:
    d = Driver(language="en" if english else "id")
    if onboarded:
        d.onboard()
    run(d, steps)
