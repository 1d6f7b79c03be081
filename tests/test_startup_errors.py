"""Bad configuration stops ``python bot.py`` with one line on stderr and a non-zero exit code.

Each case runs the real entry point as a subprocess, in an empty working directory, both as
``python bot.py`` (run) and ``python bot.py catalog load``.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

BOT = str(ROOT / "bot.py")
COMMANDS = [[], ["catalog", "load"]]
WHATSAPP = {"WHATSAPP_TOKEN": "t", "WHATSAPP_PHONE_NUMBER_ID": "1", "WHATSAPP_APP_SECRET": "s",
            "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_API_BASE": "http://127.0.0.1:9"}


def run(cwd: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TELEGRAM_", "WHATSAPP_", "DATABASE_", "CATALOG_", "HTTP_", "LOG_"))}
    clean.setdefault("DATABASE_URL", f"sqlite:///{cwd / 'data' / 'prima.db'}")
    clean.update(env)
    return subprocess.run([sys.executable, BOT, *args], cwd=cwd, env=clean, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=90)


def one_line(result: subprocess.CompletedProcess[str], starts: str, *parts: str) -> str:
    """The process failed with exactly one line on stderr that starts and says as expected."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), lines[0]
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args", COMMANDS)
def test_duplicate_agency_slug(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text((ROOT / "catalog.yaml").read_text(encoding="utf-8").replace("slug: bpprd", "slug: samsat"),
                   encoding="utf-8")
    line = one_line(run(tmp_path, args, CATALOG_PATH=str(bad)), "Catalog error: ",
                    str(bad), "agency slug used twice: samsat")
    assert "INSERT" not in line and "IntegrityError" not in line


@pytest.mark.parametrize("args", COMMANDS)
def test_binary_catalog_file(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "catalog.bin"
    bad.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    one_line(run(tmp_path, args, CATALOG_PATH=str(bad)), "Catalog error: ", str(bad), "not a UTF-8 text file")


@pytest.mark.parametrize("args", COMMANDS)
def test_bad_field_in_catalog_names_agency_and_field(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text((ROOT / "catalog.yaml").read_text(encoding="utf-8").replace(
        "slug: samsat\n", 'slug: samsat\n    quiet_start: "25:99"\n'), encoding="utf-8")
    one_line(run(tmp_path, args, CATALOG_PATH=str(bad)), "Catalog error: ",
             f"{bad}: agency 'samsat': quiet_start: ", "'25:99'")


@pytest.mark.parametrize("args", COMMANDS)
def test_env_file_with_invalid_utf8(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / ".env").write_bytes(b"LOG_LEVEL=INFO\nDIGEST_DIR=/tmp/caf\xe9\n")
    one_line(run(tmp_path, args), "Configuration error: .env: ", "not UTF-8")


@pytest.mark.parametrize("args", COMMANDS)
def test_database_folder_under_a_file(tmp_path: Path, args: list[str]) -> None:
    one_line(run(tmp_path, args, DATABASE_URL="sqlite:////dev/null/x.db"),
             "Configuration error: DATABASE_URL: ", "/dev/null")


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write to (immutable for root, read-only otherwise)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)]).returncode:
            pytest.skip("root without chattr +i: no way to make a folder unwritable")
        try:
            yield folder
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


@pytest.mark.parametrize("args", COMMANDS)
@pytest.mark.parametrize("sub", ["", "data/"])
def test_unwritable_data_directory(tmp_path: Path, unwritable: Path, args: list[str], sub: str) -> None:
    url = f"sqlite:///{unwritable / sub / 'prima.db'}"
    one_line(run(tmp_path, args, DATABASE_URL=url), "Configuration error: DATABASE_URL: ", str(unwritable))


def test_http_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path, [], **{"HTTP_PORT": str(port), "LOG_LEVEL": "WARNING", **WHATSAPP})
    one_line(result, "Configuration error: HTTP_PORT: ", f"127.0.0.1:{port}", "already in use")


def test_sqlite_file_locked_by_another_process(tmp_path: Path) -> None:
    assert run(tmp_path, ["migrate"]).returncode == 0
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(tmp_path / "data" / "prima.db", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_"))}
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'data' / 'prima.db'}"
        procs = [subprocess.Popen([sys.executable, BOT, *args], cwd=tmp_path, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for args in COMMANDS]
        results = []
        for proc in procs:  # both wait for the lock at the same time: about 11 s in all
            out, err = proc.communicate(timeout=90)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        release.set()
        holder.join()
    for result in results:
        one_line(result, "Configuration error: DATABASE_URL: ", "database is locked")
