"""A throwaway PostgreSQL server for tests, and a loader for OMOP tables (Arrow -> COPY).

The server runs on 127.0.0.1 at a free port, from a temporary data directory, with `trust`
authentication for the superuser `postgres` and a password (scram) for the role `reader`, and is
stopped and deleted at the end. initdb and postgres refuse to run as root: as root, they run as
the `postgres` system user (the Debian package creates it), else `nobody`. The binaries are
found on PATH or under /usr/lib/postgresql/<version>/bin (Debian, `apt-get install postgresql`).
"""

from __future__ import annotations

import glob
import io
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

READER_PASSWORD = "s3cret-Reader"  # noqa: S105 - a throwaway test server's role


def find_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (the newest version), or None."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """initdb + pg_ctl start; `url(db)` gives a URL; `stop()` removes everything."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="trdstage-pg-"))
        self.data = self.root / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres"
            try:
                pwd.getpwnam(user)
            except KeyError:
                user = "nobody"
            uid = pwd.getpwnam(user).pw_uid
            gid = pwd.getpwnam(user).pw_gid
            os.chown(self.root, uid, gid)
            runuser = shutil.which("runuser")
            self.prefix = ([runuser, "-u", user, "--"] if runuser else
                           ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"])
        self.root.chmod(0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix, *args], capture_output=True, text=True,
                              timeout=60, check=False, cwd=self.root)

    def start(self) -> None:
        done = self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
        with (self.data / "pg_hba.conf").open("w") as hba:
            hba.write("local all all trust\n"
                      "host all reader 127.0.0.1/32 scram-sha-256\n"
                      "host all all 127.0.0.1/32 trust\n")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        done = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options,
                         "-l", str(self.root / "log"), "-w", "-t", "30", "start")
        if done.returncode:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}\n{log}")
        self.sql("postgres", f"CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}'")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, user: str = "postgres", query: str = "") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else "")

    def connect(self, database: str) -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               dbname=database, autocommit=True)

    def sql(self, database: str, statement: str) -> list[tuple[Any, ...]]:
        with self.connect(database) as con:
            cur = con.execute(statement)
            return list(cur.fetchall()) if cur.description else []

    def create_database(self, name: str) -> str:
        self.sql("postgres", f'CREATE DATABASE "{name}"')
        self.sql(name, "GRANT ALL ON SCHEMA public TO reader")
        return name


# Column types: as ibis writes them ("ibis"), or as the OHDSI CDM 5.4 PostgreSQL DDL declares them
# ("ohdsi": INTEGER ids and concept ids, NUMERIC quantities and values, VARCHAR codes).
PG_TYPES = {
    "ibis": {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE PRECISION",
             pa.date32(): "DATE", pa.string(): "TEXT", pa.bool_(): "BOOLEAN"},
    "ohdsi": {pa.int64(): "INTEGER", pa.int32(): "INTEGER", pa.float64(): "NUMERIC",
              pa.date32(): "DATE", pa.string(): "VARCHAR(255)", pa.bool_(): "BOOLEAN"},
}


OFFICIAL_DDL = Path(__file__).parent / "fixtures" / "ohdsi" / "OMOPCDM_postgresql_5.4_ddl.sql"


def official_ddl(schema: str) -> dict[str, str]:
    """OHDSI's PostgreSQL DDL for the CDM 5.4: table -> its CREATE TABLE statement."""
    text = OFFICIAL_DDL.read_text().replace("@cdmDatabaseSchema.", f'"{schema}".')
    return {m.group(1): m.group(0) for m in re.finditer(
        r'CREATE TABLE "\w+"\.(\w+) \(.*?\);', text, re.S)}


def load_tables(server: PgServer, database: str, tables: dict[str, pa.Table],
                schema: str = "public", types: str = "ibis") -> None:
    """CREATE TABLE + COPY (CSV) for every table, then ANALYZE (as autovacuum would soon do).
    `types="ddl"`: each table created by OHDSI's official PostgreSQL DDL (its columns, types and
    NOT NULL constraints), the rows brought to its columns first (`cdm_ddl.to_official`)."""
    from trdstage.cohort.cdm_ddl import to_official

    mapping = PG_TYPES.get(types, {})
    ddl = official_ddl(schema) if types == "ddl" else {}
    with server.connect(database) as con:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO reader')
        for name, table in tables.items():
            if ddl:
                con.execute(ddl[name])
                table = to_official(name, table)
            else:
                cols = ", ".join(f'"{f.name}" {mapping[f.type]}' for f in table.schema)
                con.execute(f'CREATE TABLE "{schema}"."{name}" ({cols})')
            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer)
            with con.cursor() as cur, cur.copy(
                    f'COPY "{schema}"."{name}" FROM STDIN (FORMAT csv, HEADER true)') as copy:
                copy.write(buffer.getvalue())
            con.execute(f'GRANT SELECT ON "{schema}"."{name}" TO reader')
        con.execute("ANALYZE")


__all__ = ["READER_PASSWORD", "PgServer", "find_bin_dir", "load_tables"]
