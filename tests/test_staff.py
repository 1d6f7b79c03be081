"""Staff invites and /daftar registration: one-time codes, expiry, attempt limits, privacy notice."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.cli import main as cli
from bot.desk import staff
from bot.runtime.types import Inbound
from bot.storage.models import ConversationSession, StaffInvite, StaffInviteAttempt, StaffMember
from flows.machine.types import Event
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness

_ids = itertools.count(1)


def say(app: App, user: str, text: str) -> list[str]:
    """The user types ``text`` on the console channel; returns the bot's reply texts."""
    n = next(_ids)
    rows = app.runtime.handle(
        Inbound("console", user, user, Event("text", f"e{n}", text=text), event_key=f"k{n}")
    )
    return [str(r.payload.get("text", "")) for r in rows]


def invite(app: App, clock: FakeClock, agency: str = "disdukcapil", role: str = "head", days: int = 7) -> str:
    with app.factory() as db, db.begin():
        return staff.create_invite(db, agency, role, clock(), days)


def members(app: App) -> list[tuple[str, str, str]]:
    with app.factory() as db:
        return [(m.role, a.slug, c.external_id) for m, a, c in staff.members(db)]


def test_daftar_registers_a_head_once_and_shows_the_privacy_notice_and_next_steps(app: App, clock: FakeClock) -> None:
    code = invite(app, clock)
    replies = say(app, "kepala-1", f"/daftar {code}")
    assert "Anda terdaftar sebagai kepala instansi di Dinas Kependudukan" in replies[0]
    assert "Pemberitahuan privasi untuk petugas" in replies[1]
    # then what to do next: the staff room, the queue, the web desk
    assert replies[2].startswith("Langkah berikutnya:")
    assert all(cmd in replies[2] for cmd in ("/ruangstaf", "Kelola Topik", "/kasus", "/balas", "/masuk"))
    assert members(app) == [("head", "disdukcapil", "kepala-1")]
    # the same person sending their code again is told they are registered, not that it is spent
    again = say(app, "kepala-1", f"/daftar {code}")
    assert "sudah dipakai" not in again[0] and "sudah terdaftar" in again[0], again
    # the code works once: someone else is refused, politely
    other = say(app, "orang-lain", f"/daftar {code}")
    assert other == ["Maaf, kode itu sudah dipakai. Setiap kode hanya berlaku sekali; silakan minta kode baru kepada admin."]
    assert members(app) == [("head", "disdukcapil", "kepala-1")]
    with app.factory() as db:
        stored = db.scalars(select(StaffInvite)).one()
        assert stored.code_hash != code and code.replace("-", "") not in stored.code_hash
        assert stored.used_at is not None
        # the code is not kept in the conversation state either
        states = [str(s.state) for s in db.scalars(select(ConversationSession))]
        assert not any(code in s for s in states)


def test_unconsented_staff_is_not_pushed_into_the_resident_flow(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    code = invite(app, clock, role="staff")
    replies = say(app, "petugas-1", f"/daftar {code.lower().replace('-', ' ')}")  # typed loosely
    assert "terdaftar sebagai petugas" in replies[0]
    assert len(replies) == 3  # registered, privacy, next steps: no consent question appended
    # using the bot as a resident afterwards still asks for consent first
    later = say(app, "petugas-1", "halo")
    assert any("Apakah Anda setuju?" in r for r in later)


def test_register_in_english_and_back_to_the_question(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    say(app, "warga-1", "/start")
    say(app, "warga-1", "1")  # agree
    say(app, "warga-1", "/bahasa")
    say(app, "warga-1", "2")  # English
    code = invite(app, clock, agency="samsat", role="admin")
    before = say(app, "warga-1", "/rate")
    replies = say(app, "warga-1", f"/register {code}")
    assert replies[0] == "Thank you, you are registered as admin at Samsat Kabupaten Bungo."
    assert replies[-1] == before[-1]  # the question they were on is asked again


def test_wrong_codes_are_refused_and_limited_per_hour(app: App, clock: FakeClock) -> None:
    code = invite(app, clock)
    assert say(app, "tamu", "/daftar") == [
        "Untuk mendaftar sebagai petugas, kirim /daftar diikuti kode undangan, misalnya: /daftar ABCDE-FGHJK"
    ]
    for i in range(staff.MAX_FAILED_PER_HOUR):
        reply = say(app, "tamu", f"/daftar SALAH-{i:05d}")
        assert reply[0].startswith("Maaf, kode itu tidak kami kenali.")
    # the right code is refused too while the limit holds: guessing gains nothing
    assert say(app, "tamu", f"/daftar {code}")[0].startswith("Maaf, terlalu banyak percobaan")
    assert members(app) == []
    clock.advance(hours=1, seconds=1)
    assert "terdaftar sebagai kepala instansi" in say(app, "tamu", f"/daftar {code}")[0]
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(StaffInviteAttempt)) == staff.MAX_FAILED_PER_HOUR


def test_expired_code_is_refused(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    code = invite(app, clock, days=2)
    clock.advance(days=2, seconds=1)
    assert say(app, "kepala-2", f"/daftar {code}") == [
        "Maaf, kode itu sudah kedaluwarsa. Silakan minta kode baru kepada admin."
    ]
    assert members(app) == []


def test_new_code_for_a_member_updates_the_role(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    say(app, "p-1", f"/daftar {invite(app, clock, role='staff')}")
    say(app, "p-1", f"/daftar {invite(app, clock, role='head')}")
    assert members(app) == [("head", "disdukcapil", "p-1")]
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(StaffMember)) == 1


def test_cli_invite_prints_a_code_that_registers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clock: FakeClock
) -> None:
    from tests.conftest import make_app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli.main(["staff", "invite", "--agency", "rsud", "--role", "head", "--days", "3"]) == 0
    code = capsys.readouterr().out.strip()
    assert len(code) == 11 and code[5] == "-"
    assert cli.main(["staff", "invite", "--agency", "tidak-ada", "--role", "head"]) == 2
    assert "Unknown agency 'tidak-ada'" in capsys.readouterr().err
    app = make_app(url, clock)
    try:
        assert "terdaftar sebagai kepala instansi di RSUD" in say(app, "dokter", f"/daftar {code}")[0]
        assert cli.main(["staff", "list"]) == 0
        assert "rsud\thead" in capsys.readouterr().out
    finally:
        app.engine.dispose()


async def test_daftar_over_telegram(app: App, clock: FakeClock) -> None:
    code = invite(app, clock, agency="bpprd")
    head = User(id=7001, first_name="Budi", language_code="id")
    async with harness(app, clock) as h, h.polling():
        replies = await h.say(head, f"/daftar {code}")
        assert "terdaftar sebagai kepala instansi di Badan Pengelola Pajak" in (replies[0].text or "")
        assert "Pemberitahuan privasi" in (replies[1].text or "")
        assert "/ruangstaf" in (replies[2].text or "")  # told what to do next
    with app.factory() as db:
        member = db.scalars(select(StaffMember)).one()
        assert (member.channel, member.chat_id, member.role) == ("telegram", "7001", "head")


def test_data_rights_say_a_staff_registration_goes_with_the_data(sqlite_app: App, clock: FakeClock) -> None:
    """"Hapus data saya" removed a staff member's registration without a word; now both the
    data view and the confirmation say so."""
    app = sqlite_app
    code = invite(app, clock, role="staff")
    say(app, "petugas-9", "/start")
    say(app, "petugas-9", "1")  # agree
    say(app, "petugas-9", f"/daftar {code}")
    shown = "\n".join(say(app, "petugas-9", "/datasaya"))
    assert "Anda juga terdaftar sebagai petugas di Disdukcapil." in shown
    confirm = "\n".join(say(app, "petugas-9", "2"))  # Hapus data saya
    assert "Pendaftaran Anda sebagai petugas juga akan dihapus" in confirm
    say(app, "petugas-9", "1")  # yes
    assert members(app) == []
    # a resident who is not staff sees neither line
    say(app, "warga-9", "/start")
    say(app, "warga-9", "1")
    plain = "\n".join(say(app, "warga-9", "/datasaya") + say(app, "warga-9", "2"))
    assert "terdaftar sebagai" not in plain and "petugas juga" not in plain
