"""The cohort engine (DuckDB) gives, for every person, what `engine.assess` gives on the OMOP
adapter's Patient: random histories written as OMOP rows, both paths compared."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omop_cases import AS_OF, make_cohort
from trdstage.adapters.omop import open_omop, patient_from_rows, read_person, resolve_concepts
from trdstage.cohort.engine import build_plan
from trdstage.cohort.reference import normalise, reference_row
from trdstage.cohort.writer import write_patients
from trdstage.knowledge import load_policy


def compare(url: str, as_of=AS_OF, policy: str = "claims") -> int:
    source = open_omop(url)
    concepts = resolve_concepts(source)
    pol = load_policy(policy)
    plan = build_plan(source, concepts, as_of, pol)
    got = {r["person_id"]: normalise(r) for r in plan.persons.to_pyarrow().to_pylist()}
    ids = source.tables["person"].person_id.to_pyarrow().to_pylist()
    checked = 0
    for pid in ids:
        res = patient_from_rows(read_person(source, pid), concepts, as_of)
        want = reference_row(res, as_of, pol)
        if want is None:
            assert pid not in got, f"person {pid}: excluded by the adapter ({res.excluded})"
            continue
        assert got.get(pid) == want, f"person {pid}"
        checked += 1
    return checked


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), fill=st.sampled_from([14, 30, 90]),
       policy=st.sampled_from(["claims", "default", "lifetime"]),
       as_of=st.sampled_from([AS_OF, date(2021, 6, 1)]))
def test_duckdb_matches_engine_on_random_histories(
    tmp_path_factory, seed: int, fill: int, policy: str, as_of: date
) -> None:
    path: Path = tmp_path_factory.mktemp("omop") / "cdm.duckdb"
    write_patients(path, make_cohort(seed, 25), AS_OF, fill_days=fill)
    compare(str(path), as_of=as_of, policy=policy)
