"""Nothing acknowledged is lost: `kill -9` of the server right after a 201, then a restart:
the patient, the assessment and their audit events are all there (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_server import Service, prepare

EXAMPLE = Path(__file__).parents[1] / "src/trdstage/examples/d3-lithium-augmentation.yaml"


def _database(engine: str, folder: Path, request: pytest.FixtureRequest) -> str:
    if engine == "sqlite":
        return f"sqlite:///{folder / 'trdstage.sqlite'}"
    from pg_server import PgServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not installed (scripts/system-deps.sh)")
    pg = PgServer(bin_dir)
    pg.start()
    request.addfinalizer(pg.stop)
    return pg.url(pg.create_database("trdstage")).replace("postgresql://",
                                                         "postgresql+psycopg://")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_kill_9_after_201_loses_nothing(engine: str, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    url = _database(engine, tmp_path, request)
    config, tokens = prepare(url, tmp_path)
    svc = Service(config, tmp_path, tokens)
    svc.start()
    try:
        with svc.client("alice") as c:
            created = c.post("/api/v1/patients", content=EXAMPLE.read_bytes(),
                             headers={"Content-Type": "application/yaml",
                                      "X-Request-Id": "durable-1"})
            assert created.status_code == 201
            pid = created.json()["id"]
            assessed = c.post(f"/api/v1/patients/{pid}/assessments",
                              params={"as_of": "2026-01-01"},
                              headers={"X-Request-Id": "durable-2"})
            assert assessed.status_code == 201
        svc.kill()  # SIGKILL at once: no shutdown, nothing flushed after the responses
        svc.start()
        with svc.client("alice") as c:
            patient = c.get(f"/api/v1/patients/{pid}")
            assert patient.status_code == 200
            assert patient.json()["document"] == created.json()["document"]
            again = c.get(assessed.headers["location"])
            assert again.status_code == 200 and again.json() == assessed.json()
        with svc.client("root") as c:
            events = c.get("/api/v1/audit", params={"patient": pid}).json()["entry"]
        request_ids = {x["what"]["identifier"]["value"] for e in events
                       for x in e["resource"]["entity"] if "identifier" in x.get("what", {})}
        assert {"durable-1", "durable-2"} <= request_ids
    finally:
        svc.stop()
