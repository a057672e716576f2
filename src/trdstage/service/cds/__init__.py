"""CDS Hooks 2.0.1 service: discovery, the patient-view staging card, order-select/order-sign
safety cards, feedback (docs/cds-hooks.md).

`install(app, settings)` is what `trdstage serve` calls (service/app.py EXTENSIONS): the
`[cds]` table of the settings, the service's database as the store, `[server] base_url` as the
public URL the JWTs' `aud` must name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from trdstage.service.settings import Settings


def cds_settings(raw: dict[str, Any], source: str = "[cds]") -> Any:
    from trdstage.adapters.errors import format_loc
    from trdstage.service.cds.settings import CdsSettings
    from trdstage.service.settings import SettingsError

    try:
        return CdsSettings.model_validate(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = format_loc(tuple(e["loc"]))
        raise SettingsError(f"{source} {where}: {e['msg']}") from exc


def install(app: FastAPI, settings: Settings) -> None:
    from trdstage.service.cds.auth import Verifier
    from trdstage.service.cds.reports import PATH, reports_router
    from trdstage.service.cds.router import install_cds
    from trdstage.service.cds.sql import SqlReplayCache, SqlStore
    from trdstage.service.settings import SettingsError

    cds = cds_settings(settings.cds)
    if not cds.enabled:
        return
    outer = settings.server.cors_origins
    if outer and not set(cds.cors_origins) <= set(outer):
        raise SettingsError("[cds] cors_origins: list them in [server] cors_origins too (the "
                            "service's CORS answers first)")
    store = SqlStore(app.state.db)
    verifier = Verifier(cds, replay=SqlReplayCache(app.state.db))
    install_cds(app, settings.server.public_url, cds, store, verifier=verifier,
                report_url="{base}" + PATH)
    app.include_router(reports_router())
