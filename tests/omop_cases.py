"""Random treatment histories for the OMOP equivalence tests (shapes after tests/builders.py):
trials of antidepressants of every class, titrations, missing doses, gaps that split or keep
trials, overlaps (combinations, cross-tapers), augmenters, ECT, rTMS, PHQ-9 readings, several
episodes, bipolar and psychosis flags; and the per-person reference the cohort engines are held
to."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from trdstage.adapters.omop import open_omop, patient_from_rows, read_person, resolve_concepts
from trdstage.cohort.reference import reference_row
from trdstage.domain import (
    AddedAgent,
    DoseStep,
    ECTCourse,
    Episode,
    MedicationRegimen,
    Patient,
    RatingReading,
    TreatmentCourse,
)
from trdstage.domain.enums import Sex
from trdstage.knowledge import load_policy
from trdstage.knowledge.omop_schema import GenderMap, OmopSpec

AS_OF = date(2026, 1, 1)
ANTIDEPRESSANTS = ["sertraline", "citalopram", "escitalopram", "venlafaxine", "duloxetine",
                   "bupropion", "mirtazapine", "nortriptyline", "amitriptyline", "phenelzine",
                   "tranylcypromine", "vortioxetine", "dosulepin"]
MINIMUM = {"sertraline": 50, "citalopram": 20, "escitalopram": 10, "venlafaxine": 150,
           "duloxetine": 60, "bupropion": 300, "mirtazapine": 15, "nortriptyline": 75,
           "amitriptyline": 150, "phenelzine": 45, "tranylcypromine": 30, "vortioxetine": 10,
           "dosulepin": 75}
AUGMENTERS = ["aripiprazole", "quetiapine"]


def _dose(rnd: random.Random, agent: str) -> float | None:
    r = rnd.random()
    if r < 0.2:
        return None
    base = MINIMUM[agent]
    return float(rnd.choice([base / 2, base, base, base * 1.5, base * 2]))


def make_patient(rnd: random.Random, pid: int = 1) -> Patient:
    episodes = []
    onset = date(2018, 1, 1) + timedelta(days=rnd.randrange(0, 2000))
    n_episodes = 1 if rnd.random() < 0.75 else 2
    for _ in range(n_episodes):
        meds = []
        ect = []
        courses = []
        ratings = []
        cursor = onset + timedelta(days=rnd.randrange(0, 40))
        for _ in range(rnd.randrange(0, 6)):
            agent = rnd.choice(ANTIDEPRESSANTS[:7] if rnd.random() < 0.6 else ANTIDEPRESSANTS)
            steps = []
            t = cursor
            for _ in range(rnd.choice([1, 1, 2, 3])):
                days = rnd.choice([7, 14, 28, 30, 45, 60, 90])
                steps.append(DoseStep(start=t, end=t + timedelta(days=days),
                                      daily_dose_mg=_dose(rnd, agent)))
                t = t + timedelta(days=days + rnd.choice([0, 0, 0, 5, 20, 40]))
            added = []
            if rnd.random() < 0.25:
                a0 = steps[0].start + timedelta(days=rnd.randrange(0, 40))
                added.append(AddedAgent(agent=rnd.choice(AUGMENTERS), steps=[DoseStep(
                    start=a0, end=a0 + timedelta(days=rnd.choice([10, 30, 60, 120])),
                    daily_dose_mg=5.0)]))
            meds.append(MedicationRegimen(agent=agent, steps=steps, added=added))
            end = max(s.end for s in steps if s.end)
            cursor = end + timedelta(days=rnd.choice([-30, -10, 0, 3, 14, 60, 200]))
            if rnd.random() < 0.5:
                ratings.append(RatingReading(scale="PHQ-9", total=rnd.randrange(0, 28),
                                             date=steps[0].start - timedelta(
                                                 days=rnd.randrange(0, 35))))
                ratings.append(RatingReading(scale="PHQ-9", total=rnd.randrange(0, 28),
                                             date=steps[0].start + timedelta(
                                                 days=rnd.randrange(1, 120))))
        if rnd.random() < 0.15:
            s = cursor
            ect.append(ECTCourse(start=s, end=s + timedelta(days=rnd.choice([0, 14, 30])),
                                 sessions=rnd.choice([1, 4, 6, 10])))
            if rnd.random() < 0.7:
                ratings.append(RatingReading(scale="PHQ-9", total=rnd.randrange(10, 28),
                                             date=s - timedelta(days=rnd.randrange(0, 10))))
                ratings.append(RatingReading(scale="PHQ-9", total=rnd.randrange(0, 28),
                                             date=s + timedelta(days=rnd.randrange(1, 31))))
        if rnd.random() < 0.05:
            courses.append(TreatmentCourse(kind="rtms", start=cursor,
                                           end=cursor + timedelta(days=30), sessions=20))
        flags = ["bipolar_features"] if rnd.random() < 0.05 else []
        if rnd.random() < 0.05:
            flags.append("psychotic_disorder")
        episodes.append(Episode(onset=onset, medications=meds, ect=ect, courses=courses,
                                ratings=ratings, flags=flags))
        onset = max(cursor, onset) + timedelta(days=rnd.randrange(100, 900))
        if onset > AS_OF - timedelta(days=30):
            break
    return Patient(id=str(pid), episodes=episodes,
                   sex=rnd.choice(["female", "male", "unknown"]),
                   birth_date=date(1950 + rnd.randrange(0, 50), 1 + rnd.randrange(0, 12), 1))


def make_cohort(seed: int, n: int) -> list[Patient]:
    rnd = random.Random(seed)  # noqa: S311 - test data
    return [make_patient(rnd, i + 1) for i in range(n)]


def other_gender_map(spec: OmopSpec) -> OmopSpec:
    """A spec whose gender concepts say the opposite of omop.yaml's (female <-> male): an
    engine that reads the bundled map instead of the spec it is given gets every sex wrong."""
    swap = {Sex.female: Sex.male, Sex.male: Sex.female}
    gender = [GenderMap(concept_id=g.concept_id, sex=swap.get(g.sex, g.sex)) for g in spec.gender]
    return spec.model_copy(update={"gender": gender})


def reference_rows(url: str | Path, as_of: date, policy: str,
                   spec: OmopSpec | None = None) -> dict[int, dict[str, Any] | None]:
    """Per person: `engine.assess` on the adapter's Patient, as cohort columns (None: excluded
    by the adapter), the rows read under `spec`."""
    source = open_omop(url, spec)
    concepts = resolve_concepts(source, spec)
    return {pid: reference_row(patient_from_rows(read_person(source, pid), concepts, as_of,
                                                 spec), as_of, load_policy(policy))
            for pid in source.tables["person"].person_id.to_pyarrow().to_pylist()}
