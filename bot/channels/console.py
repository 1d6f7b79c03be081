"""Console chat: you are a resident in the terminal. One line in, the bot's messages out.

Choices are printed with the number (key) the engine gives them; typing that number or the
label both work. A rating's numbers are its scores ("4) Sangat sesuai"); answers without a
number (such as "Tidak tahu" there) are typed by name. ``#foto <name>`` sends a photo and ``#lokasi <lat>,<lon>`` a location, for demos.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from bot.outbox.store import mark_sent
from bot.runtime.facade import Runtime
from bot.runtime.types import Inbound, new_event_id
from flows.machine.types import Event, Texts

log = logging.getLogger(__name__)


def render(payload: dict[str, Any]) -> str:
    lines = [str(payload.get("text", ""))]
    for choice in payload.get("choices") or []:
        key = choice.get("key")
        lines.append(f"  {key}) {choice['label']}" if key else f"  -  {choice['label']}")
    return "\n".join(lines)


def parse_line(line: str) -> Event:
    event_id = new_event_id()
    stripped = line.strip()
    if stripped.lower().startswith("#foto"):
        name = stripped[5:].strip() or "photo.jpg"
        return Event("photo", event_id, media={"type": "photo", "file_id": f"console:{name}"})
    if stripped.lower().startswith("#lokasi"):
        try:
            lat_s, lon_s = stripped[7:].split(",", 1)
            return Event("location", event_id, location=(float(lat_s), float(lon_s)))
        except ValueError:
            return Event("text", event_id, text=stripped)
    return Event("text", event_id, text=line)


class ConsoleChannel:
    def __init__(
        self,
        runtime: Runtime,
        texts: Texts,
        language: str = "id",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        user_id: str = "console",
    ) -> None:
        self.runtime = runtime
        self.texts = texts
        self.language = language
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.user_id = user_id

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def send(self, line: str) -> None:
        inbound = Inbound("console", self.user_id, self.user_id, parse_line(line))
        try:
            rows = self.runtime.handle(inbound)
        except Exception:  # nothing was committed; say sorry and keep the chat alive
            log.exception("could not handle console input")
            self.say("\nPrima: " + self.texts(self.language, "error.internal"))
            return
        for row in rows:
            self.say("\nPrima: " + render(row.payload))
        mark_sent(self.runtime.factory, [(r.id, None) for r in rows], self.runtime.clock())

    def run(self) -> int:
        self.say(self.texts(self.language, "console.banner"))
        self.say(self.texts(self.language, "console.telegram_hint"))
        try:
            for line in self.stdin:
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                if not self.stdin.isatty():
                    self.say(f"\n> {line}")
                self.send(line)
        except KeyboardInterrupt:
            self.say("")
        return 0
