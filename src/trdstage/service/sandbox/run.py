"""Running the sandbox on 127.0.0.1 (the command `trdstage sandbox`)."""

from __future__ import annotations

import socket
import sys

import uvicorn

from trdstage.service.sandbox.app import build_sandbox

HOST = "127.0.0.1"  # loopback only: the sandbox has no real authentication of its users


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def run(port: int, service_url: str | None, app_url: str | None = None) -> None:
    port = port or free_port()
    base = f"http://{HOST}:{port}"
    sb = build_sandbox(base, service_url, app_url=app_url)
    lines = [f"trdstage sandbox: open {base}/ehr/ (synthetic patients only)",
             f"  FHIR server   {base}/fhir (bearer token required)",
             f"  CDS service   {sb.service_url}/cds-services",
             f"  EHR JWKS      {sb.client.jwks_url}"]
    if service_url:
        lines += ["  Add this client to that service's settings:", "    [[cds.clients]]",
                  f'    iss = "{sb.client.iss}"', f'    jwks_url = "{sb.client.jwks_url}"',
                  f'    fhir_servers = ["{sb.client.fhir_base}"]']
    if app_url:
        from trdstage.service.sandbox.app import SMART_CLIENT_ID, SMART_CLIENT_SECRET

        app = app_url.rstrip("/")
        lines += [f"  SMART launch  the web app at {app}/app/ (a link on each patient's chart)",
                  "  Add this EHR to that service's settings (trdstage serve --config):",
                  "    [[smart.ehrs]]", '    name = "trdstage sandbox"', f'    iss = "{base}/fhir"',
                  f'    client_id = "{SMART_CLIENT_ID}"',
                  f'    client_secret = "{SMART_CLIENT_SECRET}"',
                  f'    redirect_uri = "{app}/app/smart/callback"']
    lines.append("Decision support, not a medical device. Ctrl+C stops it.")
    sys.stderr.write("\n".join(lines) + "\n")
    uvicorn.run(sb.app, host=HOST, port=port, log_level="warning")
