"""`python -m ivr backup` and `restore`: the SQLite session store copied while the app serves calls, and put back."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from contextlib import closing

import pytest
from conftest import BASE, FLOWS, caller_params, sign

from ivr.cli import main
from ivr.web.services import services

BEFORE = [f"CA{i:032x}" for i in range(1, 21)]  # calls answered before the backup starts


def run(*args: str) -> int:
    """The CLI's exit status, whether main returns it or exits with it."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def store_url(tmp_path, monkeypatch) -> str:
    """IVR_STORE for the app and the commands alike: a SQLite file of this test's own."""
    url = f"sqlite:///{tmp_path}/live/ivr.sqlite3"
    monkeypatch.setenv("IVR_STORE", url)
    monkeypatch.setenv("IVR_FLOWS_DIR", str(FLOWS))
    return url


def enter(client, sid: str) -> None:
    """A call enters main and hears its menu."""
    params = caller_params(sid)
    response = client.post(
        "/voice/main", data=params, headers={"X-Twilio-Signature": sign(f"{BASE}/voice/main", params)}
    )
    assert response.status_code == 200 and b"<Gather" in response.data


def serve_calls(app, stop: threading.Event, started: threading.Event, worker: int, served: list) -> None:
    """Keep answering new calls, as Twilio would, until `stop`."""
    client = app.test_client()
    n = 0
    while not stop.is_set():
        n += 1
        enter(client, f"CA{worker:08x}{n:024x}")
        served.append(n)
        started.set()


def test_a_backup_taken_while_calls_are_served_holds_the_calls_before_it_and_restores_into_a_fresh_app(
    make_app, store_url, tmp_path, monkeypatch, capsys
):
    app = make_app({"IVR_STORE": store_url})
    for sid in BEFORE:
        enter(app.test_client(), sid)
    stop, started, served = threading.Event(), threading.Event(), []
    threads = [threading.Thread(target=serve_calls, args=(app, stop, started, w, served)) for w in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert started.wait(10)
        during = len(served)
        assert run("backup", str(tmp_path / "backups" / "ivr.sqlite3")) == 0
        assert len(served) > during  # webhooks were answered while the backup ran
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert "backed up the session store" in capsys.readouterr().out
    backup = tmp_path / "backups" / "ivr.sqlite3"
    with closing(sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        keys = {key for (key,) in conn.execute("SELECT key FROM sessions")}
    assert set(BEFORE) <= keys
    assert not (tmp_path / "backups" / "ivr.sqlite3-wal").exists()  # one self-contained file

    fresh = f"sqlite:///{tmp_path}/fresh/ivr.sqlite3"
    monkeypatch.setenv("IVR_STORE", fresh)
    assert run("restore", str(backup)) == 0
    restored = services(make_app({"IVR_STORE": fresh})).store
    for sid in BEFORE:
        assert restored.get(sid)["state"] == "menu"


@pytest.fixture
def backup_file(make_app, store_url, tmp_path):
    """A backup holding the first call of BEFORE; the live store then holds the second as well."""
    client = make_app({"IVR_STORE": store_url}).test_client()
    enter(client, BEFORE[0])
    assert run("backup", str(tmp_path / "backup.sqlite3")) == 0
    enter(client, BEFORE[1])
    services(client.application).store.close()
    return tmp_path / "backup.sqlite3"


def live_sessions(tmp_path) -> set[str]:
    with closing(sqlite3.connect(tmp_path / "live" / "ivr.sqlite3")) as conn:
        return {key for (key,) in conn.execute("SELECT key FROM sessions WHERE key LIKE 'CA%'")}


def test_restore_over_an_existing_store_needs_force_and_then_replaces_it(backup_file, tmp_path, capsys):
    assert run("restore", str(backup_file)) == 1
    assert "exists: restoring replaces it" in capsys.readouterr().err
    assert live_sessions(tmp_path) == {BEFORE[0], BEFORE[1]}
    assert run("restore", str(backup_file), "--force") == 0
    assert live_sessions(tmp_path) == {BEFORE[0]}  # what came after the backup is gone


def test_restore_is_refused_while_another_process_has_the_store_open(backup_file, tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('SELECT 1 FROM sessions').fetchall(); print('open', flush=True); sys.stdin.read()",
         str(tmp_path / "live" / "ivr.sqlite3")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "open\n"
        assert run("restore", str(backup_file), "--force") == 1
    finally:
        holder.communicate("")
    assert "is open in another process" in capsys.readouterr().err
    assert live_sessions(tmp_path) == {BEFORE[0], BEFORE[1]}


def test_restore_refuses_a_file_that_is_not_a_backup(store_url, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 100)
    assert run("restore", str(notes)) == 1
    assert f"{notes} is not a backup of the session store" in capsys.readouterr().err
    assert not (tmp_path / "live" / "ivr.sqlite3").exists()


def test_a_backup_never_overwrites_the_store_itself(backup_file, tmp_path, capsys):
    assert run("backup", str(tmp_path / "live" / "ivr.sqlite3")) == 1
    assert "a backup must go to another file, not the store itself" in capsys.readouterr().err


def test_a_backup_of_a_store_that_does_not_exist_says_so(store_url, tmp_path, capsys):
    assert run("backup", str(tmp_path / "backup.sqlite3")) == 1
    assert "there is no session store at" in capsys.readouterr().err
    assert not (tmp_path / "live").exists()  # not created by the attempt


@pytest.mark.parametrize(
    ("url", "advice"),
    [("redis://127.0.0.1:6379/0", "redis-cli BGSAVE"), ("memory://", "there is no file to back up")],
)
@pytest.mark.parametrize("command", ["backup", "restore"])
def test_other_stores_are_refused_saying_how_to_back_them_up(monkeypatch, tmp_path, capsys, url, advice, command):
    monkeypatch.setenv("IVR_STORE", url)
    (tmp_path / "b.sqlite3").write_bytes(b"")
    assert run(command, str(tmp_path / "b.sqlite3")) == 1
    assert advice in capsys.readouterr().err
