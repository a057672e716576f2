"""OIDC bearer tokens: a JWT from the site's identity provider (here a JWKS served on
127.0.0.1 by the test, RSA key made at test time) acts as the account its `sub` names;
a wrong issuer, audience, key, algorithm or an expired token is refused (401, audited)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from service_server import Service, free_port, prepare

ISSUER = "https://idp.example.org"
AUDIENCE = "trdstage"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks() -> bytes:
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    return json.dumps({"keys": [jwk]}).encode()


class _Jwks(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = _jwks()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    idp = ThreadingHTTPServer(("127.0.0.1", free_port()), _Jwks)
    thread = threading.Thread(target=idp.serve_forever, daemon=True)
    thread.start()
    folder: Path = tmp_path_factory.mktemp("service-oidc")
    oidc = {"issuer": ISSUER, "audience": AUDIENCE,
            "jwks_url": f"http://127.0.0.1:{idp.server_address[1]}/jwks.json",
            "algorithms": ["RS256"]}
    config, tokens = prepare(f"sqlite:///{folder / 'trdstage.sqlite'}", folder,
                             tables={"oidc": oidc}, rate_limit_per_minute=0)
    svc = Service(config, folder, tokens)
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()
        idp.shutdown()
        idp.server_close()


def _token(key: Any = KEY, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300,
            **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": "k1"})


def _get(service: Service, token: str) -> httpx.Response:
    return httpx.get(service.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_jwt_acts_as_its_account(service: Service) -> None:
    resp = _get(service, _token())
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "alice"
    root = _get(service, _token(sub="root"))
    assert root.json()["role"] == "admin"


@pytest.mark.parametrize("token", [
    pytest.param(lambda: _token(iss="https://evil.example"), id="issuer"),
    pytest.param(lambda: _token(aud="someone-else"), id="audience"),
    pytest.param(lambda: _token(exp=int(time.time()) - 600), id="expired"),
    pytest.param(lambda: _token(OTHER_KEY), id="other-key"),
    pytest.param(lambda: _token(sub="mallory"), id="unknown-account"),
    pytest.param(lambda: _token(KEY, "RS512"), id="algorithm-not-allowed"),
    pytest.param(lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice"},
                                    "a-shared-secret-of-thirty-two-bytes!", algorithm="HS256",
                                    headers={"kid": "k1"}),
                 id="hs256"),
])
def test_bad_jwts_are_refused(service: Service, token: Any) -> None:
    resp = _get(service, token())
    assert resp.status_code == 401, resp.text
