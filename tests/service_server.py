"""A `trdstage serve` process for tests: a settings file, a migrated database with accounts
and tokens, uvicorn on 127.0.0.1 at a free port, stopped (or killed) by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from trdstage.service.auth import hash_password, issue_token
from trdstage.service.db import Database, migrate
from trdstage.service.models import Account

PASSWORD = "correct horse battery staple"  # noqa: S105 - synthetic test account
ACCOUNTS = (("alice", "clinician"), ("bob", "clinician"), ("root", "admin"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def prepare(database: str, folder: Path, tables: dict[str, dict[str, Any]] | None = None,
            **server: Any) -> tuple[Path, dict[str, str]]:
    """Write the settings ([server] keys, other `tables`), migrate, add the accounts;
    returns (config, name -> token)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "trdstage.toml"
    lines = ["[server]", f"database = {toml_value(database)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in server.items()]
    for name, table in (tables or {}).items():
        lines += [f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    migrate(database)
    db = Database(database)
    tokens = {}
    try:
        with db.session() as session:
            digest = hash_password(PASSWORD)
            for name, role in ACCOUNTS:
                account = Account(name=name, role=role, password_hash=digest)
                session.add(account)
                session.flush()
                tokens[name], _ = issue_token(session, account)
            session.commit()
    finally:
        db.dispose()
    return config, tokens


@dataclass
class Service:
    config: Path
    cwd: Path
    tokens: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        self.port = free_port()
        self.log = self.cwd / f"serve-{self.port}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("TRDSTAGE_CONFIG", None)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trdstage", "serve", "--config", str(self.config),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trdstage serve exited: {self.log_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"trdstage serve did not start: {self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing after the last acknowledged commit."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self, who: str | None = None, **headers: str) -> httpx.Client:
        if who is not None:
            headers = {"Authorization": f"Bearer {self.tokens[who]}", **headers}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def postgres_url() -> tuple[Any, str] | None:
    """(server, URL of a fresh database) on a throwaway PostgreSQL, or None without one."""
    from pg_server import PgServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        return None
    server = PgServer(bin_dir)
    server.start()
    return server, server.url("postgres")
