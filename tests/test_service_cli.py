"""`trdstage admin ...` and `trdstage serve`: settings, migrations (serve refuses an unmigrated
or newer schema), accounts and tokens, and the one-command demo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from service_server import free_port
from test_cli import run
from trdstage.service.db import Database
from trdstage.service.settings import SettingsError, load_settings, settings_from_mapping


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "trdstage.toml"
    config.write_text(f'[server]\ndatabase = "sqlite:///{tmp_path / "db.sqlite"}"\n{extra}')
    return config


def test_embedded_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRDSTAGE_CONFIG", raising=False)
    s = load_settings(None)
    assert s.server.host == "127.0.0.1" and s.server.port == 8080
    assert s.server.database.startswith("sqlite:///trdstage-data/")
    assert s.server.max_body_mb == 32 and s.server.cors_origins == []
    assert s.oidc is None and s.raw == {}


def test_settings_from_the_environment_and_extension_tables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, 'port = 9001\n[[cds.clients]]\niss = "https://ehr.example"\n'
                     '[smart]\nx = 1\n')
    monkeypatch.setenv("TRDSTAGE_CONFIG", str(config))
    s = load_settings(None)
    assert s.server.port == 9001
    assert s.cds == {"clients": [{"iss": "https://ehr.example"}]} and s.smart == {"x": 1}
    assert s.raw["server"]["port"] == 9001


@pytest.mark.parametrize(("raw", "message"), [
    ({"sever": {}}, "sever: unknown key"),
    ({"server": {"prot": 1}}, "server.prot: unknown key"),
    ({"server": {"max_body_mb": 0}}, "server.max_body_mb"),
    ({"server": {"cors_origins": ["*"]}}, "server.cors_origins"),
    ({"oidc": {"issuer": "x"}}, "oidc.audience"),
])
def test_bad_settings_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        settings_from_mapping(raw, "t.toml")


def test_bad_settings_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    code, _, err = run("admin", "migrate", "--config", str(bad))
    assert code == 2 and "malformed TOML" in err and "bad.toml" in err


def test_serve_refuses_an_unmigrated_or_newer_schema(tmp_path: Path) -> None:
    config = _config(tmp_path)
    code, _, err = run("serve", "--config", str(config))
    assert code == 2 and "trdstage admin migrate" in err
    code, _, err = run("admin", "migrate", "--config", str(config))
    from alembic.script import ScriptDirectory

    from trdstage.service.db import _alembic_config

    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    assert code == 0 and f"to {head}" in err
    assert f"already at revision {head}" in run("admin", "migrate", "--config", str(config))[2]
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    db.dispose()
    code, _, err = run("serve", "--config", str(config))
    assert code == 2 and "newer" in err and "upgrade trdstage" in err


def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_accounts_and_tokens(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    assert run("admin", "migrate", "--config", config)[0] == 0
    code, out, err = run("admin", "user", "add", "carol", "--role", "admin", "--config", config)
    assert code == 0 and "shown once" in err
    generated = out.strip()
    assert len(generated) >= 20
    assert run("admin", "user", "add", "carol", "--config", config)[0] == 2
    assert run("admin", "user", "add", "dave", "--role", "nurse", "--config", config)[0] == 2
    result = subprocess.run([sys.executable, "-m", "trdstage", "admin", "user", "add", "erin",
                             "--password-stdin", "--config", config],
                            input="a long enough passphrase\n", capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 0 and "a long enough" not in result.stdout + result.stderr
    code, out, _ = run("admin", "user", "list", "--config", config)
    assert "carol\tadmin\tyes" in out and "erin\tclinician\tyes" in out
    code, token, _ = run("admin", "token", "create", "erin", "--expires", "2", "--config",
                         config)
    assert code == 0 and token.startswith("trd_")
    code, out, _ = run("admin", "token", "list", "--config", config)
    assert token.strip()[:10] in out and token.strip() not in out
    assert run("admin", "token", "create", "nobody", "--config", config)[0] == 2
    assert run("admin", "token", "revoke", "1", "--config", config)[0] == 0
    revoked = run("admin", "token", "list", "--config", config)[1].splitlines()[1].split("\t")[6]
    assert revoked.startswith("20")
    assert run("admin", "token", "revoke", "99", "--config", config)[0] == 2
    assert run("admin", "user", "disable", "erin", "--config", config)[0] == 0
    from trdstage.service.auth import verify_password
    from trdstage.service.models import Account

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with db.session() as session:
        carol = session.query(Account).filter_by(name="carol").one()
        assert carol.password_hash.startswith("$argon2id$")
        assert verify_password(carol.password_hash, generated)
        assert not verify_password(carol.password_hash, generated + "x")
        assert session.query(Account).filter_by(name="erin").one().active is False
    db.dispose()


def test_demo_in_one_command(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "trdstage", "serve", "--demo",
                             "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={k: v for k, v in os.environ.items()
                                 if k != "TRDSTAGE_CONFIG"})
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Uvicorn running" in line or not line:
                break
        printed = "".join(lines)
        assert f"http://127.0.0.1:{port}" in printed and "password" in printed
        token = re.search(r"trd_[A-Za-z0-9_-]+", printed)
        assert token is not None
        headers = {"Authorization": f"Bearer {token.group(0)}"}
        patients = httpx.get(f"http://127.0.0.1:{port}/api/v1/patients", headers=headers)
        assert patients.json()["total"] == 10
        assert (tmp_path / "trdstage-data/demo.sqlite").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
