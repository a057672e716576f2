"""OMOP as real ETLs write it (ETL-Synthea and others): a quantity of 0 is an unknown quantity,
not no drug; NaN readings are refused and counted. Every rule is checked on the three paths
(the per-person adapter with `engine.assess`, the expression, the DuckDB scan)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from test_cohort_equivalence import assert_same, cohort, reference
from trdstage.cohort import run
from trdstage.cohort.omop_io import write_duckdb
from trdstage.cohort.reference import normalise
from trdstage.cohort.writer import OmopWriter
from trdstage.domain import DoseStep, Episode, MedicationRegimen, Patient, RatingReading
from trdstage.knowledge import load_policy

AS_OF = date(2026, 1, 1)


def _sertraline(pid: int, weeks: int = 12) -> Patient:
    start = date(2024, 1, 10)
    return Patient(id=str(pid), sex="female", episodes=[Episode(
        id="e", onset=date(2024, 1, 1),
        medications=[MedicationRegimen(agent="sertraline", steps=[DoseStep(
            start=start, end=date.fromordinal(start.toordinal() + 7 * weeks),
            daily_dose_mg=100)])],
        ratings=[RatingReading(scale="PHQ-9", total=20, date=date(2024, 1, 5)),
                 RatingReading(scale="PHQ-9", total=18, date=date(2024, 3, 20))])])


def _database(path: Path, patients: list[Patient], edit: Any = None,
              official: bool = True) -> str:
    """The patients as OMOP rows (tests/omop_cases' writer), edited, in a DuckDB file made by
    OHDSI's DDL (`official`) or typed as the Arrow tables are (DOUBLE values: NaN fits)."""
    writer = OmopWriter(AS_OF)
    for pid, patient in enumerate(patients, start=1):
        writer.add_patient(pid, patient)
    tables = writer.tables()
    if edit is not None:
        edit(tables)
    write_duckdb(path, tables, official=official)
    return str(path)


def _every_path(url: str, policy: str) -> dict[int, dict[str, Any]]:
    """The reference result per person, after checking both cohort engines give it too."""
    want = reference(url, AS_OF, policy)
    for engine in ("expression", "scan"):
        assert_same(cohort(url, AS_OF, policy, engine), want)
    native, _ = run.stage_cohort(url, AS_OF, load_policy(policy))  # DuckDB's own SQL
    assert_same({r["person_id"]: normalise(r) for r in native.to_pylist()}, want)
    return {pid: row for pid, row in want.items() if row is not None}


def _set(tables: dict[str, pa.Table], table: str, column: str, value: Any) -> None:
    t = tables[table]
    i = t.schema.get_field_index(column)
    tables[table] = t.set_column(i, column, pa.array([value] * t.num_rows,
                                                     type=t.schema.field(i).type))


def test_quantity_zero_is_unknown_not_no_drug(tmp_path: Path) -> None:
    """ETL-Synthea writes quantity 0 on every prescription: the dose is unknown, so under the
    claims policy the 12-week trial is adequate on duration alone (flagged), not inadequate."""
    url = _database(tmp_path / "q0.duckdb", [_sertraline(1)],
                    lambda t: _set(t, "drug_exposure", "quantity", 0.0))
    got = _every_path(url, "claims")
    assert got[1]["adequate_trials"] == 1 and got[1]["duration_only_trials"] == 1
    assert got[1]["failed_trials"] == 1  # PHQ-9 20 -> 18: non-response
    strict = _every_path(url, "default")
    assert strict[1]["adequate_trials"] == 0 and strict[1]["failed_trials"] == 0


def test_nan_quantity_and_nan_phq9_are_refused(tmp_path: Path) -> None:
    """(A NUMERIC column cannot hold NaN; a DOUBLE one, as in Parquet exports, can.)"""
    def edit(t: dict[str, pa.Table]) -> None:
        _set(t, "drug_exposure", "quantity", float("nan"))
        obs = t["observation"]
        i = obs.schema.get_field_index("value_as_number")
        values = pc.if_else(pc.equal(obs["value_as_number"], 18.0), float("nan"),
                            obs["value_as_number"])
        t["observation"] = obs.set_column(i, "value_as_number", values)

    url = _database(tmp_path / "nan.duckdb", [_sertraline(1)], edit, official=False)
    got = _every_path(url, "claims")
    assert got[1]["duration_only_trials"] == 1
    assert got[1]["failed_trials"] == 0  # no endpoint reading: the outcome is unknown
    for engine in ("scan", "expression"):
        _, summary = run.stage_cohort(url, AS_OF, load_policy("claims"), engine=engine)
        assert summary.excluded_rows["observation: PHQ-9 value out of range"] == 1


def _summaries(url: str, policy: str = "claims") -> list[Any]:
    """The summary of the DuckDB default (the scan through DuckDB's SQL) and of the expression
    engine through Ibis (the PostgreSQL default), checked equal."""
    _, native = run.stage_cohort(url, AS_OF, load_policy(policy))
    _, expression = run.stage_cohort(url, AS_OF, load_policy(policy), engine="expression")
    for key in ("persons", "staged", "excluded_persons", "excluded_rows", "warnings"):
        assert getattr(native, key) == getattr(expression, key), key
    return [native, expression]


def _shift(tables: dict[str, pa.Table], years: int) -> None:
    """Every date moved `years` into the future, as MIMIC-IV's de-identification does (the
    years of birth left as they are)."""
    for name, t in list(tables.items()):
        for i, f in enumerate(t.schema):
            if pa.types.is_date32(f.type):
                days = pc.add(pc.cast(t.column(i), pa.int32()),
                              pa.scalar(round(years * 365.25), pa.int32()))
                t = t.set_column(i, f.name, pc.cast(days, pa.date32()))
        tables[name] = t


def test_dates_shifted_into_the_future_are_named_not_read_as_no_diagnosis(
        tmp_path: Path) -> None:
    url = _database(tmp_path / "shifted.duckdb", [_sertraline(i) for i in range(1, 8)],
                    lambda t: _shift(t, 100))
    for summary in _summaries(url):
        assert summary.staged == 0
        rows = summary.excluded_rows
        assert rows["drug_exposure: dated after the as-of date"] > 0
        assert rows["condition_occurrence: dated after the as-of date"] == 7
        text = "\n".join(summary.warnings)
        assert "condition_occurrence: 7 of 7 rows (100 %) are dated after the as-of date" in text
        assert "MIMIC-IV" in text and "drug_exposure:" in text
        assert "no person was staged of 7" in text


def test_rows_without_person_date_or_concept_are_counted(tmp_path: Path) -> None:
    def edit(t: dict[str, pa.Table]) -> None:
        co = t["condition_occurrence"]
        extra = pa.Table.from_pylist([
            {"condition_occurrence_id": 900, "person_id": None, "condition_concept_id": 440383,
             "condition_start_date": date(2024, 1, 1)},
            {"condition_occurrence_id": 901, "person_id": 1, "condition_concept_id": None,
             "condition_start_date": date(2024, 1, 1)},
            {"condition_occurrence_id": 902, "person_id": 1, "condition_concept_id": 0,
             "condition_start_date": date(2024, 1, 1)},
            {"condition_occurrence_id": 903, "person_id": 1, "condition_concept_id": 440383,
             "condition_start_date": None}], schema=co.schema)
        t["condition_occurrence"] = pa.concat_tables([co, extra])

    url = _database(tmp_path / "keys.duckdb", [_sertraline(1)], edit, official=False)
    assert _every_path(url, "claims")[1]["failed_trials"] == 1  # the person is still staged
    for summary in _summaries(url):
        rows = summary.excluded_rows
        for kind in ("no person_id", "no concept", "concept 0 (unmapped)", "no date"):
            assert rows[f"condition_occurrence: {kind}"] == 1, kind


def test_duplicate_persons_and_impossible_birth_years_are_counted_not_staged(
        tmp_path: Path) -> None:
    def edit(t: dict[str, pa.Table]) -> None:
        person = t["person"].to_pylist()
        person[1]["year_of_birth"] = 3000  # age -974 in 2026
        person[2]["year_of_birth"] = 1800
        person.append(dict(person[3]))  # person 4 twice
        t["person"] = pa.Table.from_pylist(person, schema=t["person"].schema)

    url = _database(tmp_path / "persons.duckdb", [_sertraline(i) for i in range(1, 6)], edit,
                    official=False)
    assert set(_every_path(url, "claims")) == {1, 5}
    for summary in _summaries(url):
        assert summary.persons == 5 and summary.staged == 2
        assert summary.excluded_persons[
            "duplicate person rows (person_id on more than one row)"] == 1
        assert summary.excluded_persons["impossible year of birth"] == 2
    table, _ = run.stage_cohort(url, AS_OF, load_policy("claims"))
    assert sorted(table.column("person_id").to_pylist()) == [1, 5]
    assert all(0 <= age <= 125 for age in table.column("age").to_pylist())


def test_missing_or_empty_vocabulary_tables_are_named(tmp_path: Path) -> None:
    def edit(t: dict[str, pa.Table]) -> None:
        del t["concept_ancestor"]
        t["drug_strength"] = t["drug_strength"].slice(0, 0)

    url = _database(tmp_path / "novocab.duckdb", [_sertraline(1)], edit)
    for summary in _summaries(url):
        text = "\n".join(summary.warnings)
        assert "concept_ancestor: missing or empty" in text and "SNOMED descendants" in text
        assert "drug_strength: missing or empty: no dose is known" in text


def _recode(tables: dict[str, pa.Table], codes: list[tuple[int, str, str]]) -> None:
    """Concept rows (id, vocabulary, code) added; the persons' condition rows recoded: person 1's
    MDD diagnosis to the first concept, person 2's to the second; person 3 also gets the third
    concept (a flag) on the day of their MDD diagnosis."""
    concept = tables["concept"]
    extra = pa.Table.from_pylist([
        {"concept_id": cid, "concept_name": f"{vocab} {code}", "domain_id": "Condition",
         "vocabulary_id": vocab, "concept_class_id": "Clinical Finding", "concept_code": code}
        for cid, vocab, code in codes], schema=concept.schema)
    tables["concept"] = pa.concat_tables([concept, extra])
    co = tables["condition_occurrence"].to_pylist()
    for row in co:
        if row["person_id"] in (1, 2):
            row["condition_concept_id"] = codes[row["person_id"] - 1][0]
    flag = next(r for r in co if r["person_id"] == 3)
    co.append({**flag, "condition_occurrence_id": 999, "condition_concept_id": codes[2][0]})
    tables["condition_occurrence"] = pa.Table.from_pylist(
        co, schema=tables["condition_occurrence"].schema)


def test_diagnoses_recognised_by_published_value_sets(tmp_path: Path) -> None:
    """SNOMED 191611001 (recurrent major depressive episodes, moderate) and ICD-10-CM F33.1,
    found through `concept` by the depression eCQMs' Major Depression value set, are MDD
    diagnoses; SNOMED 10981006 (bipolar I) sets the bipolar flag. Without the value sets the
    first two persons would have no MDD diagnosis."""
    codes = [(2_100_000_001, "SNOMED", "191611001"), (2_100_000_002, "ICD10CM", "F33.1"),
             (2_100_000_003, "SNOMED", "10981006")]
    url = _database(tmp_path / "vs.duckdb", [_sertraline(i) for i in (1, 2, 3)],
                    lambda t: _recode(t, codes))
    got = _every_path(url, "claims")
    assert set(got) == {1, 2, 3}
    assert got[3]["bipolar"] and not got[1]["bipolar"]


def test_the_death_table_flags_the_person_and_ends_the_per_person_history(
        tmp_path: Path) -> None:
    """Person 1 died on 2024-02-20, during their sertraline trial; person 2 dies after the
    as-of date (not deceased as of it)."""
    from trdstage.adapters.omop import open_omop, read_patient
    from trdstage.cohort.cdm_ddl import official_schema
    from trdstage.engine import assess

    def edit(t: dict[str, pa.Table]) -> None:
        t["death"] = pa.Table.from_pylist(
            [{"person_id": 1, "death_date": date(2024, 2, 20)},
             {"person_id": 2, "death_date": date(2026, 6, 1)}],
            schema=pa.schema([official_schema("death").field(n) for n in
                              ("person_id", "death_date")]))

    url = _database(tmp_path / "death.duckdb", [_sertraline(1), _sertraline(2)], edit)
    for engine in ("scan", "expression"):
        table, summary = run.stage_cohort(url, AS_OF, load_policy("claims"), engine=engine)
        died = dict(zip(table["person_id"].to_pylist(), table["death_date"].to_pylist(),
                        strict=True))
        assert died == {1: date(2024, 2, 20), 2: None}
        assert any("1 persons staged died on or before the as-of date" in w
                   for w in summary.warnings)
    patient = read_patient(open_omop(url), 1, AS_OF).patient
    assert patient is not None and patient.death_date == date(2024, 2, 20)
    result = assess(patient, as_of=AS_OF, policy="claims")
    assert result.deceased and result.trials[0].end == date(2024, 2, 20)
    alive = read_patient(open_omop(url), 2, AS_OF).patient
    assert alive is not None and alive.death_date is None


def test_a_positive_phq9_item_9_reaches_the_alert_and_the_cohort(tmp_path: Path) -> None:
    """An OMOP observation of PHQ-9 item 9 (LOINC 44260-8, found through `concept`) with a
    value above 0 raises the urgent alert on the per-person path, and the cohort results carry
    its date (phq9_item9_positive) with a warning; an answer of 0 does neither."""
    from trdstage.adapters.omop import open_omop, read_patient
    from trdstage.advice import advise
    from trdstage.cohort.vocab import vocabulary
    from trdstage.engine import assess

    item9 = vocabulary().procedure_codes[("LOINC", "44260-8")]

    def edit(t: dict[str, pa.Table]) -> None:
        obs = t["observation"]
        extra = pa.Table.from_pylist([
            {"observation_id": 800, "person_id": 1, "observation_concept_id": item9,
             "observation_date": date(2024, 3, 1), "value_as_number": 2.0,
             "observation_type_concept_id": 0},
            {"observation_id": 801, "person_id": 2, "observation_concept_id": item9,
             "observation_date": date(2024, 3, 1), "value_as_number": 0.0,
             "observation_type_concept_id": 0}], schema=obs.schema)
        t["observation"] = pa.concat_tables([obs, extra])

    url = _database(tmp_path / "item9.duckdb", [_sertraline(1), _sertraline(2)], edit)
    _every_path(url, "claims")  # staging itself does not read item answers
    for engine in ("scan", "expression"):
        table, summary = run.stage_cohort(url, AS_OF, load_policy("claims"), engine=engine)
        got = dict(zip(table["person_id"].to_pylist(),
                       table["phq9_item9_positive"].to_pylist(), strict=True))
        assert got == {1: date(2024, 3, 1), 2: None}
        assert any("1 persons staged answered PHQ-9 item 9" in w for w in summary.warnings)
    source = open_omop(url)
    for pid, alerted in ((1, True), (2, False)):
        patient = read_patient(source, pid, AS_OF).patient
        assert patient is not None
        alerts = [a for a in advise(patient, assess(patient, as_of=AS_OF)).alerts
                  if a.code == "phq9_item9_positive"]
        assert bool(alerts) is alerted
