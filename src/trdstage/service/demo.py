"""`trdstage serve --demo`: a fresh demo database with the bundled demo patients, owned by a
demo account (admin, so the audit trail can be looked at too), and how to sign in."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from sqlalchemy import make_url

from trdstage.service.auth import generate_password, hash_password, issue_token
from trdstage.service.db import Database, migrate
from trdstage.service.models import Account
from trdstage.service.settings import Settings
from trdstage.service.store import create_patient, read_body

DEMO_DATABASE = "sqlite:///trdstage-data/demo.sqlite"
DEMO_ACCOUNT = "demo"


def _fresh_sqlite(url: str) -> None:
    database = make_url(url).database
    if database:
        for suffix in ("", "-wal", "-shm"):
            Path(database + suffix).unlink(missing_ok=True)


def seed_demo(settings: Settings, *, explicit_database: bool = False) -> Settings:
    """Settings for the demo (its own SQLite file unless a config was given), migrated and
    seeded; prints the URL, the account, its password and a token."""
    if not explicit_database:
        settings = settings.with_server(database=DEMO_DATABASE)
        _fresh_sqlite(DEMO_DATABASE)
    url = settings.server.database
    migrate(url)
    password = generate_password()
    db = Database(url)
    ids: list[str] = []
    try:
        with db.session() as session:
            from sqlalchemy import select

            account = session.scalars(select(Account).where(
                Account.name == DEMO_ACCOUNT)).first()
            if account is None:
                account = Account(name=DEMO_ACCOUNT, role="admin")
                session.add(account)
            account.password_hash = hash_password(password)
            account.active = True
            session.flush()
            token, _ = issue_token(session, account, days=7, label="demo")
            folder = resources.files("trdstage") / "examples"
            for item in sorted(folder.iterdir(), key=lambda p: p.name):
                if item.name.endswith(".yaml"):
                    document = read_body(item.read_bytes(), "application/yaml", item.name)
                    ids.append(create_patient(session, account, document).id)
            session.commit()
    finally:
        db.dispose()
    base = settings.server.public_url
    example = "src/trdstage/examples/fhir/trd-fhir-example.json"
    sys.stderr.write(
        f"trdstage demo service: {base}  (API docs {base}/docs)\n"
        f"  database {make_url(url).render_as_string(hide_password=True)} "
        f"with {len(ids)} demo patients\n"
        f"  account {DEMO_ACCOUNT!r} (admin), password {password}\n"
        f"  web app: {base}/app/ (sign in as {DEMO_ACCOUNT!r} with that password)\n"
        f"  API token (7 days): {token}\n"
        f"  try: curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: "
        f"application/fhir+json' --data-binary @{example} '{base}/api/v1/assess?"
        "as_of=2026-01-01'\n"
        f"       curl -s -H 'Authorization: Bearer {token}' {base}/api/v1/patients\n"
        "Synthetic demo data only. Decision support, not a medical device.\n")
    sys.stderr.flush()
    return settings
