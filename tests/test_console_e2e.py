"""End to end through the console channel and the real runtime, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot.app import App
from bot.channels.console import ConsoleChannel
from bot.storage.models import (
    Complaint,
    Contact,
    ConversationSession,
    OutboxMessage,
    StatusChange,
    SurveyAnswer,
    SurveyResponse,
)
from tests.conftest import ROOT, FakeClock


class Chat:
    """A resident typing into the console channel; ``lines`` are the bot's output so far."""

    def __init__(self, app: App, user: str = "warga-1") -> None:
        self.out = io.StringIO()
        self.channel = ConsoleChannel(app.runtime, app.texts, stdin=io.StringIO(), stdout=self.out,
                                      user_id=user)

    def say(self, *lines: str) -> str:
        start = self.out.tell()
        for line in lines:
            self.channel.send(line)
        return self.out.getvalue()[start:]


# Ratings are typed as the score shown beside each answer ("4) Sangat sesuai").
SURVEY = ["/start", "1", "1", "ktp", "4", "3", "2", "4", "tidak tahu", "4", "3", "2", "1",
          "Antrean perlu nomor urut"]
# The respondent profile asked after the first survey: Perempuan, 20-29, SMA, pegawai swasta.
PROFILE = ["2", "2", "3", "3"]
COMPLAINT = ["2", "pajak motor", "Petugas loket meminta uang tambahan tanpa kuitansi resmi",
             "4", "1", "#foto bukti.jpg", "1", "#lokasi -1.4852,102.1190", "2", "2", "1", "1"]


def count(app: App, model: type) -> int:
    with app.factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_survey_and_complaint_are_stored_exactly_once(app: App) -> None:
    chat = Chat(app)
    out = chat.say(*SURVEY)
    assert "Terima kasih! Penilaian Anda sudah kami simpan" in out
    with app.factory() as db:
        resp = db.scalars(select(SurveyResponse)).one()
        assert resp.status == "complete" and resp.suggestion == "Antrean perlu nomor urut"
        scores = dict(db.execute(select(SurveyAnswer.element, SurveyAnswer.score)).all())
    assert scores == {1: 4, 2: 3, 3: 2, 4: 4, 5: None, 6: 4, 7: 3, 8: 2, 9: 1}
    assert "Profil 1/4" in out and "Tidak ingin menjawab" in out  # first survey: the profile
    out = chat.say(*PROFILE)
    assert "profil Anda sudah disimpan" in out
    with app.factory() as db:
        contact = db.scalars(select(Contact)).one()
        resp = db.scalars(select(SurveyResponse)).one()
        kept = (contact.profile_gender, contact.profile_age, contact.profile_education, contact.profile_job)
        assert kept == ("p", "20-29", "sma", "swasta") and contact.profile_at is not None
        assert (resp.profile_gender, resp.profile_age, resp.profile_education, resp.profile_job) == kept

    out = chat.say(*COMPLAINT[:-1])
    assert "Periksa pengaduan Anda" in out and "Foto: 1" in out
    out = chat.say(COMPLAINT[-1])
    ticket = re.search(r"Nomor tiket: ([0-9A-Z]{4}-[0-9A-Z]{4})", out)
    assert ticket, out
    with app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
        assert complaint.ticket == ticket.group(1)
        assert complaint.category == "pungli" and complaint.status == "new"
        assert complaint.attachments == {"photos": [{"type": "photo", "file_id": "console:bukti.jpg"}],
                                         "location_public": False}
        assert (complaint.latitude, complaint.longitude) == (-1.4852, 102.119)
        assert complaint.confidential is False and complaint.contact_consent is True
        assert [h.to_status for h in complaint.history] == ["new"]
    assert count(app, SurveyResponse) == 1 and count(app, SurveyAnswer) == 9
    assert count(app, Complaint) == 1
    with app.factory() as db:  # every reply went through the outbox and was recorded as sent
        statuses = set(db.scalars(select(OutboxMessage.status).where(OutboxMessage.kind == "reply")))
    assert statuses == {"sent"}


def test_status_check_sees_only_own_tickets(app: App) -> None:
    alice, bob = Chat(app, "alice"), Chat(app, "bob")
    alice.say(*SURVEY[:2])
    out = alice.say(*COMPLAINT)
    ticket = re.search(r"Nomor tiket: (\S+)", out).group(1)  # type: ignore[union-attr]
    out = alice.say("3", ticket.lower().replace("-", " "))
    assert f"Tiket {ticket}" in out and "Diterima, menunggu petugas" in out
    bob.say("/start", "1")
    bob.say("3")
    out_theirs = bob.say(ticket)
    out_unknown = bob.say("ZZZZ-9999")  # still at the ticket question
    assert "tidak ditemukan" in out_theirs
    assert out_theirs.replace(ticket, "T") == out_unknown.replace("ZZZZ-9999", "T")


def test_deletion_anonymises_complaints_and_removes_the_rest(app: App) -> None:
    chat = Chat(app)
    chat.say(*SURVEY, *PROFILE)
    chat.say(*COMPLAINT)
    out = chat.say("4")
    assert "Survei: 1" in out and "Pengaduan: 1" in out and "Jenis kelamin: Perempuan" in out
    out = chat.say("2", "1")
    assert "Data Anda sudah dihapus" in out
    assert count(app, Contact) == 0 and count(app, ConversationSession) == 0
    with app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
        assert complaint.contact_id is None and complaint.reporter_name is None
        assert complaint.anonymised_at is not None
        assert db.scalars(select(StatusChange.reason).order_by(StatusChange.id.desc())).first() == (
            "reporter deleted their personal data")
        resp = db.scalars(select(SurveyResponse)).one()
        assert resp.contact_id is None
        # the profile snapshot goes with the person; the scores stay
        assert (resp.profile_gender, resp.profile_age, resp.profile_education, resp.profile_job) == (None,) * 4
    assert count(app, SurveyAnswer) == 9  # the agency keeps the anonymous scores
    out = chat.say("halo")
    assert "UU 27/2022" in out  # a new start, consent asked again


def test_restart_mid_flow_continues_in_a_new_runtime(db_url: str, clock: FakeClock) -> None:
    from tests.conftest import make_app

    first = make_app(db_url, clock)
    Chat(first).say("/start", "1", "1", "akta lahir", "1", "1")
    first.engine.dispose()
    second = make_app(db_url, clock)  # a new process would build exactly this
    out = Chat(second).say("1")
    assert "(4/9) Biaya/Tarif" in out
    with second.factory() as db:
        assert len(db.scalars(select(SurveyAnswer)).all()) == 3
    second.engine.dispose()


def test_python_bot_py_console_over_a_pipe_and_a_restart(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "PYTHONPATH": str(ROOT)}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    run = lambda text: subprocess.run(  # noqa: E731
        [sys.executable, str(ROOT / "bot.py")], input=text, capture_output=True, text=True,
        env=env, cwd=tmp_path, timeout=60,
    )
    first = run("/start\n1\n1\nsamsat\n1\n")
    assert first.returncode == 0, first.stderr
    assert "TELEGRAM_BOT_TOKEN" in first.stdout.splitlines()[1]
    assert "(1/9) Persyaratan" in first.stdout
    second = run("2\n")  # a new process continues the same conversation
    assert second.returncode == 0, second.stderr
    assert "(2/9)" in second.stdout


def test_bad_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "mysql://nope", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "bot.py")], input="", capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("Configuration error: DATABASE_URL:")
    env["SESSION_TIMEOUT_MINUTES"] = "abc"
    env["DATABASE_URL"] = "sqlite:///x.db"
    proc = subprocess.run([sys.executable, str(ROOT / "bot.py")], input="", capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "SESSION_TIMEOUT_MINUTES" in proc.stderr


def test_a_failing_write_is_rolled_back_whole_and_the_resident_is_told(app: App) -> None:
    from sqlalchemy import text

    chat = Chat(app)
    chat.say("/start", "1", "1", "ktp", "4")
    with app.engine.begin() as conn:
        conn.execute(text("ALTER TABLE survey_answers RENAME TO survey_answers_away"))
    out = chat.say("2")
    assert "terjadi gangguan" in out
    with app.engine.begin() as conn:
        conn.execute(text("ALTER TABLE survey_answers_away RENAME TO survey_answers"))
    with app.factory() as db:  # the session did not move on: nothing was half-saved
        state = db.scalars(select(ConversationSession.state)).one()
    assert state["data"]["answers"] == {"1": 4}
    out = chat.say("2")
    assert "(3/9)" in out


def test_cancelling_a_survey_on_purpose_cancels_its_reminder(app: App) -> None:
    def reminders() -> list[str]:
        with app.factory() as db:
            return list(db.scalars(select(OutboxMessage.status)
                                   .where(OutboxMessage.dedupe_key.like("survey_reminder:%"))
                                   .order_by(OutboxMessage.id)))

    left, cancelled = Chat(app, "left"), Chat(app, "cancelled")
    left.say("/start", "1", "1", "ktp", "1")  # walks away mid-survey
    cancelled.say("/start", "1", "1", "kk", "1", "/batal")
    assert reminders() == ["pending", "cancelled"]
