"""`trdstage serve` and `trdstage admin ...` (migrate, user, token): thin wrappers over the
service modules (imported inside the commands so the rest of the command line stays fast)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trdstage.cli_common import err, fail

if TYPE_CHECKING:
    from trdstage.service.settings import Settings

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", envvar="TRDSTAGE_CONFIG", show_envvar=True,
    help="Service settings (TOML, docs/service.md); default: the embedded defaults.")]

admin_app = typer.Typer(help="Service administration: database schema, accounts, tokens.",
                        no_args_is_help=True)
user_app = typer.Typer(help="Accounts (clinician or admin).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (each acts as its account).", no_args_is_help=True)
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(token_app, name="token")



def _settings(config: Path | None) -> Settings:
    from trdstage.service.settings import SettingsError, load_settings

    try:
        return load_settings(config)
    except SettingsError as exc:
        fail(str(exc))


def _migrated(settings: Settings) -> None:
    from trdstage.service.db import Database, SchemaError

    db = Database(settings.server.database)
    try:
        db.check_schema()
    except SchemaError as exc:
        fail(str(exc))
    finally:
        db.dispose()


@admin_app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create or upgrade the database schema to this version of trdstage."""
    from trdstage.service.db import migrate as run_migrate

    settings = _settings(config)
    before, after = run_migrate(settings.server.database)
    if before == after:
        err.print(f"schema already at revision {after}")
    else:
        err.print(f"schema upgraded from {before or 'empty'} to {after}")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Account name (the sign-in name).")],
    role: Annotated[str, typer.Option(help="clinician or admin.")] = "clinician",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input (else one is "
        "generated and printed once).")] = False,
    config: ConfigOption = None,
) -> None:
    """Add an account."""
    from sqlalchemy import select

    from trdstage.service.auth import ROLES, generate_password, hash_password
    from trdstage.service.db import Database
    from trdstage.service.models import Account

    if role not in ROLES:
        fail(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 200:
        fail("NAME must be 1 to 200 characters")
    settings = _settings(config)
    _migrated(settings)
    generated = not password_stdin
    password = generate_password() if generated else sys.stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        fail("the password must be at least 12 characters")
    db = Database(settings.server.database)
    try:
        with db.session() as session:
            if session.scalars(select(Account).where(Account.name == name)).first():
                fail(f"an account named {name!r} exists")
            session.add(Account(name=name, role=role, password_hash=hash_password(password)))
            session.commit()
    finally:
        db.dispose()
    err.print(f"added {role} {name!r}")
    if generated:
        err.print("password (shown once):")
        sys.stdout.write(password + "\n")


@user_app.command("list")
def user_list(config: ConfigOption = None) -> None:
    """List the accounts."""
    from sqlalchemy import select

    from trdstage.service.db import Database
    from trdstage.service.models import Account

    settings = _settings(config)
    _migrated(settings)
    db = Database(settings.server.database)
    rows = [("name", "role", "active", "created")]
    try:
        with db.session() as session:
            for acc in session.scalars(select(Account).order_by(Account.name)):
                rows.append((acc.name, acc.role, "yes" if acc.active else "no",
                             _stamp(acc.created)))
    finally:
        db.dispose()
    _print_rows(rows)


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument()], config: ConfigOption = None) -> None:
    """Disable an account (its tokens stop working; nothing is deleted)."""
    from sqlalchemy import select

    from trdstage.service.db import Database
    from trdstage.service.models import Account

    settings = _settings(config)
    _migrated(settings)
    db = Database(settings.server.database)
    try:
        with db.session() as session:
            acc = session.scalars(select(Account).where(Account.name == name)).first()
            if acc is None:
                fail(f"no account named {name!r}")
            acc.active = False
            session.commit()
    finally:
        db.dispose()
    err.print(f"disabled {name!r}")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="The account the token acts as.")],
    expires: Annotated[float | None, typer.Option(
        "--expires", min=0.001, help="Days until it expires (default: never).")] = None,
    label: Annotated[str, typer.Option(help="A note to recognise it by.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create an API token; it is printed once (only its hash is stored)."""
    from sqlalchemy import select

    from trdstage.service.auth import issue_token
    from trdstage.service.db import Database
    from trdstage.service.models import Account

    settings = _settings(config)
    _migrated(settings)
    db = Database(settings.server.database)
    try:
        with db.session() as session:
            acc = session.scalars(select(Account).where(Account.name == name)).first()
            if acc is None or not acc.active:
                fail(f"no active account named {name!r}")
            plain, row = issue_token(session, acc, days=expires, label=label)
            session.commit()
            token_id = row.id
    finally:
        db.dispose()
    err.print(f"token {token_id} for {name!r} (shown once):")
    sys.stdout.write(plain + "\n")


@token_app.command("list")
def token_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's tokens.")] = None,
    config: ConfigOption = None,
) -> None:
    """List tokens (id, account, start of the token, expiry, revoked)."""
    from sqlalchemy import select

    from trdstage.service.db import Database
    from trdstage.service.models import Account, ApiToken

    settings = _settings(config)
    _migrated(settings)
    db = Database(settings.server.database)
    rows = [("id", "account", "starts", "label", "created", "expires", "revoked",
             "last_used")]
    stamp = _stamp
    try:
        with db.session() as session:
            query = select(ApiToken).join(Account).order_by(ApiToken.id)
            if name is not None:
                query = query.where(Account.name == name)
            for tok in session.scalars(query):
                rows.append((str(tok.id), tok.account.name, tok.prefix, tok.label or "-",
                             stamp(tok.created), stamp(tok.expires), stamp(tok.revoked),
                             stamp(tok.last_used)))
    finally:
        db.dispose()
    _print_rows(rows)


def _stamp(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _print_rows(rows: Sequence[tuple[str, ...]]) -> None:
    """Tab-separated columns with a header line (easy to read and to script)."""
    sys.stdout.write("".join("\t".join(row) + "\n" for row in rows))


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see list).")],
                 config: ConfigOption = None) -> None:
    """Revoke a token (it stops working at once)."""
    from trdstage.service.db import Database
    from trdstage.service.models import ApiToken

    settings = _settings(config)
    _migrated(settings)
    db = Database(settings.server.database)
    try:
        with db.session() as session:
            tok = session.get(ApiToken, token_id)
            if tok is None:
                fail(f"no token {token_id}")
            if tok.revoked is None:
                tok.revoked = datetime.now(UTC)
                session.commit()
    finally:
        db.dispose()
    err.print(f"revoked token {token_id}")


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(
        help="Address to bind (default [server] host, 127.0.0.1: loopback only).")] = None,
    port: Annotated[int | None, typer.Option(
        help="Port (default [server] port, 8080).")] = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help="A fresh demo database with the bundled demo patients and a demo "
        "account; prints the URL and how to sign in.")] = False,
) -> None:
    """Run the REST service (OpenAPI at /openapi.json, docs at /docs)."""
    import uvicorn

    from trdstage.service.app import create_app
    from trdstage.service.logs import log_config

    settings = _settings(config).with_server(host=host, port=port)
    if demo:
        from trdstage.service.demo import seed_demo

        settings = seed_demo(settings, explicit_database=config is not None)
    else:
        _migrated(settings)
    app = create_app(settings)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port,
                log_config=log_config(settings.server.log_level), access_log=False,
                proxy_headers=bool(settings.server.forwarded_allow_ips),
                forwarded_allow_ips=settings.server.forwarded_allow_ips or None,
                server_header=False, timeout_graceful_shutdown=10)
