"""The cohort engine gives, for every person, what `engine.assess` gives on the OMOP adapter's
Patient: random histories written as OMOP rows, both paths compared, on DuckDB and on PySpark."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omop_cases import AS_OF, make_cohort
from trdstage.adapters.omop import open_omop, patient_from_rows, read_person, resolve_concepts
from trdstage.cohort.engine import build_plan
from trdstage.cohort.reference import normalise, reference_row
from trdstage.cohort.writer import write_patients
from trdstage.knowledge import load_policy
from trdstage.knowledge.omop_schema import load_omop_spec


def reference(url: str, as_of: date, policy: str) -> dict[int, dict[str, Any] | None]:
    """Per person: engine.assess on the adapter's Patient (None: excluded by the adapter)."""
    source = open_omop(url)
    concepts = resolve_concepts(source)
    out = {}
    for pid in source.tables["person"].person_id.to_pyarrow().to_pylist():
        res = patient_from_rows(read_person(source, pid), concepts, as_of)
        out[pid] = reference_row(res, as_of, load_policy(policy))
    return out


def cohort(url: str, as_of: date, policy: str) -> dict[int, dict[str, Any]]:
    source = open_omop(url)
    plan = build_plan(source, resolve_concepts(source), as_of, load_policy(policy))
    return {r["person_id"]: normalise(r) for r in plan.persons.to_pyarrow().to_pylist()}


def assert_same(got: dict[int, dict[str, Any]], want: dict[int, dict[str, Any] | None]) -> int:
    checked = 0
    for pid, row in want.items():
        if row is None:
            assert pid not in got, f"person {pid}: excluded by the adapter, staged by the cohort"
            continue
        assert got.get(pid) == row, f"person {pid}"
        checked += 1
    return checked


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), fill=st.sampled_from([14, 30, 90]),
       policy=st.sampled_from(["claims", "default", "lifetime"]),
       as_of=st.sampled_from([AS_OF, date(2021, 6, 1)]))
def test_duckdb_matches_engine_on_random_histories(
    tmp_path_factory: pytest.TempPathFactory, seed: int, fill: int, policy: str, as_of: date
) -> None:
    path: Path = tmp_path_factory.mktemp("omop") / "cdm.duckdb"
    write_patients(path, make_cohort(seed, 25), AS_OF, fill_days=fill)
    assert_same(cohort(str(path), as_of, policy), reference(str(path), as_of, policy))


def test_claims_cohort_has_every_model_exercised(tmp_path: Path) -> None:
    """The random histories are not trivial: stages 0-3, CRD, MSM bands and met definitions."""
    path = tmp_path / "cdm.duckdb"
    write_patients(path, make_cohort(7, 300), AS_OF)
    rows = cohort(str(path), AS_OF, "claims").values()
    assert {r["thase_rush_stage"] for r in rows} >= {0, 1, 2, 3}
    assert {"NR", "TRD1", "CRD"} <= {r["european_category"] for r in rows}
    assert {"mild", "moderate"} <= {r["maudsley_band"] for r in rows}
    assert any(r["regulatory_met"] for r in rows)
    assert any(r["duration_only_trials"] for r in rows)


def test_pyspark_matches_engine(tmp_path: Path) -> None:
    """The same expression on PySpark (local[1], tables from a Parquet folder)."""
    pytest.importorskip("pyspark")
    patients = make_cohort(20260101, 30)
    db = tmp_path / "cdm.duckdb"
    folder = tmp_path / "cdm-parquet"
    write_patients(db, patients, AS_OF)
    write_patients(folder, patients, AS_OF, fmt="parquet")
    got = cohort(f"spark:{folder}", AS_OF, "claims")
    assert assert_same(got, reference(str(db), AS_OF, "claims")) > 10


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_duckdb_matches_engine_with_other_rules(
    tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    """Each rule is a setting, and both paths follow the setting."""
    spec = load_omop_spec().with_rules(
        episode_washout_days=90, mdd_diagnosis_opens_episode=False,
        require_mdd_diagnosis=False, augmenter_gap_days=10, ect_course_gap_days=7,
        end_date_inclusive=False, severity_from_phq9={})
    path: Path = tmp_path_factory.mktemp("omop") / "cdm.duckdb"
    write_patients(path, make_cohort(seed, 20), AS_OF)
    source = open_omop(path, spec)
    concepts = resolve_concepts(source, spec)
    policy = load_policy("claims")
    plan = build_plan(source, concepts, AS_OF, policy, spec)
    got = {r["person_id"]: normalise(r) for r in plan.persons.to_pyarrow().to_pylist()}
    want = {pid: reference_row(patient_from_rows(read_person(source, pid), concepts, AS_OF,
                                                 spec), AS_OF, policy)
            for pid in source.tables["person"].person_id.to_pyarrow().to_pylist()}
    assert_same(got, want)
