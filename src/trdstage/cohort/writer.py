"""Patient histories -> OMOP CDM rows (the test and demo writer).

Each dose step becomes drug_exposure fills of at most `fill_days` days, with a quantity that gives
the step's daily dose through drug_strength (dose unknown: quantity empty); each episode gets an
MDD diagnosis at its onset; flags become bipolar or psychosis diagnoses; ECT and rTMS courses
become procedure rows spread over the course; PHQ-9 readings become observations.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]

from trdstage.cohort.omop_io import to_arrow, write_duckdb, write_parquet_dir
from trdstage.cohort.vocab import vocabulary, vocabulary_tables
from trdstage.domain import CourseKind, DoseStep, Patient, Scale, Sex
from trdstage.knowledge.omop_schema import load_omop_spec

FLAG_SETS = {"bipolar_features": "bipolar", "psychotic_disorder": "psychosis"}


class OmopWriter:
    """Accumulates rows for many patients; `tables()` returns them with the vocabulary."""

    def __init__(self, as_of: date, fill_days: int = 30) -> None:
        self.as_of = as_of
        self.fill_days = fill_days
        self.rows: dict[str, dict[str, list[object]]] = defaultdict(lambda: defaultdict(list))
        self.next_id: dict[str, int] = defaultdict(lambda: 1)
        self.spec = load_omop_spec()
        self.vocab = vocabulary()
        self.gender = {g.sex: g.concept_id for g in self.spec.gender}

    def _add(self, table: str, id_column: str | None = None, **values: object) -> None:
        cols = self.rows[table]
        if id_column:
            cols[id_column].append(self.next_id[table])
            self.next_id[table] += 1
        for k, v in values.items():
            cols[k].append(v)

    def _set_concept(self, name: str) -> int:
        cs = self.spec.concept_sets[name]  # type: ignore[index]
        if cs.concepts:
            return cs.concepts[0]
        code = cs.codes[0]
        return self.vocab.procedure_codes[(code.vocabulary, code.code)]

    def add_patient(self, person_id: int, patient: Patient) -> None:
        birth = patient.birth_date or date(1970, 1, 1)
        gender = self.gender.get(patient.sex, 0) if patient.sex is not Sex.unknown else 0
        self._add("person", person_id=person_id, gender_concept_id=gender,
                  year_of_birth=birth.year, month_of_birth=birth.month,
                  day_of_birth=birth.day, race_concept_id=0, ethnicity_concept_id=0)
        first = min(e.onset for e in patient.episodes)
        self._add("observation_period", "observation_period_id", person_id=person_id,
                  observation_period_start_date=first - timedelta(days=365),
                  observation_period_end_date=self.as_of, period_type_concept_id=0)
        for flag in patient.flags:
            if flag in FLAG_SETS:
                self._condition(person_id, self._set_concept(FLAG_SETS[flag]), first)
        for episode in patient.episodes:
            self._condition(person_id, self._set_concept("mdd"), episode.onset)
            for flag in episode.flags:
                if flag in FLAG_SETS:
                    self._condition(person_id, self._set_concept(FLAG_SETS[flag]), episode.onset)
            for regimen in episode.medications:
                self._steps(person_id, regimen.agent, regimen.steps)
                for added in regimen.added:
                    self._steps(person_id, added.agent, added.steps)
            for course in episode.ect:
                end = course.end or self.as_of
                self._sessions(person_id, self._set_concept("ect"), course.start, end,
                               course.sessions or 8)
            for tc in episode.courses:
                if tc.kind in (CourseKind.rtms, CourseKind.itbs):
                    self._sessions(person_id, self._set_concept("rtms"), tc.start,
                                   tc.end or self.as_of, tc.sessions or 20)
            for r in episode.ratings:
                if r.scale is Scale.phq9:
                    self._add("observation", "observation_id", person_id=person_id,
                              observation_concept_id=self._set_concept("phq9_total"),
                              observation_date=r.date, value_as_number=float(r.total),
                              observation_type_concept_id=0)

    def _condition(self, person_id: int, concept: int, when: date) -> None:
        self._add("condition_occurrence", "condition_occurrence_id", person_id=person_id,
                  condition_concept_id=concept, condition_start_date=when,
                  condition_type_concept_id=0)

    def _sessions(self, person_id: int, concept: int, start: date, end: date, n: int) -> None:
        span = max(0, (end - start).days)
        for i in range(max(1, n)):
            offset = round(i * span / max(1, n - 1)) if n > 1 else 0
            self._add("procedure_occurrence", "procedure_occurrence_id", person_id=person_id,
                      procedure_concept_id=concept, procedure_date=start + timedelta(days=offset),
                      procedure_type_concept_id=0)

    def _steps(self, person_id: int, agent: str, steps: list[DoseStep]) -> None:
        if agent not in self.vocab.ingredients:
            return
        for step in steps:
            end = step.end or self.as_of
            days_left = max(1, (end - step.start).days)
            t = step.start
            while days_left > 0:
                days = min(self.fill_days, days_left)
                product = self.vocab.product_for(agent, step.daily_dose_mg)
                qty = (None if step.daily_dose_mg is None
                       else step.daily_dose_mg * days / product.strength_mg)
                self._add("drug_exposure", "drug_exposure_id", person_id=person_id,
                          drug_concept_id=product.concept_id, drug_exposure_start_date=t,
                          drug_exposure_end_date=t + timedelta(days=days - 1),
                          drug_type_concept_id=0, quantity=qty, days_supply=days)
                t += timedelta(days=days)
                days_left -= days

    def tables(self, vocabulary_rows: bool = True) -> dict[str, pa.Table]:
        out = {name: to_arrow(name, dict(self.rows.get(name, {})))
               for name in ("person", "observation_period", "drug_exposure",
                            "condition_occurrence", "procedure_occurrence", "observation")}
        if vocabulary_rows:
            out.update(vocabulary_tables())
        return out


def write_patients(path: str | Path, patients: list[Patient], as_of: date,
                   fmt: str = "duckdb", fill_days: int = 30) -> Path:
    """Write patients (person ids 1..n) as an OMOP database: a DuckDB file or a Parquet folder."""
    writer = OmopWriter(as_of, fill_days)
    for i, p in enumerate(patients, start=1):
        writer.add_patient(i, p)
    tables = writer.tables()
    return write_duckdb(path, tables) if fmt == "duckdb" else write_parquet_dir(path, tables)


__all__ = ["OmopWriter", "write_patients"]
