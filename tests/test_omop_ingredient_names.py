"""Agents without a bundled OMOP concept id (lithium and its salts, liothyronine) are found by
name in the database's own vocabulary: RxNorm, concept class Ingredient, standard concept.

The fixture is a small vocabulary in the shape of an OHDSI Athena download (concept rows with
vocabulary RxNorm and class Ingredient / Clinical Drug, concept_ancestor from ingredient to
product, drug_strength). Concept ids are local (above two billion): only names, vocabulary,
class and standard flag are what a real vocabulary carries; the RxNorm codes are not used."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from builders import History
from trdstage.adapters.omop import open_omop, read_patient, resolve_concepts
from trdstage.cohort.duckdb_native import open_duckdb, resolve_concepts_duckdb
from trdstage.cohort.writer import write_patients

AS_OF = date(2026, 1, 1)
MG = 8576
# (concept_id, name, class, standard): ingredients, products, and two decoys that must not match
CONCEPTS = [
    (2_100_000_001, "Lithium", "Ingredient", "S"),
    (2_100_000_002, "Lithium Carbonate", "Ingredient", "S"),
    (2_100_000_003, "lithium citrate", "Ingredient", "S"),
    (2_100_000_004, "Liothyronine", "Ingredient", "S"),
    (2_100_000_005, "Lithium", "Ingredient", None),  # non-standard: not used
    (2_100_000_006, "Lithium Carbonate 300 MG Oral Capsule", "Clinical Drug", "S"),
    (2_100_000_007, "liothyronine 25 MCG Oral Tablet", "Clinical Drug", "S"),
    (2_100_000_008, "lithium", "Precise Ingredient", "S"),  # wrong class: not used
]
ANCESTORS = [(2_100_000_002, 2_100_000_006), (2_100_000_004, 2_100_000_007)]


def _database(tmp_path: Path) -> Path:
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=20, start="2024-01-15", outcome=None)
    db = tmp_path / "cdm.duckdb"
    write_patients(db, [h.patient()], AS_OF)
    con = duckdb.connect(str(db))
    for cid, name, cls, std in CONCEPTS:
        con.execute("INSERT INTO concept (concept_id, concept_name, domain_id, vocabulary_id, "
                    "concept_class_id, standard_concept, concept_code) VALUES "
                    "(?, ?, 'Drug', 'RxNorm', ?, ?, ?)", [cid, name, cls, std, str(cid)])
    for cid in (2_100_000_002, 2_100_000_004, 2_100_000_006, 2_100_000_007):
        con.execute("INSERT INTO concept_ancestor VALUES (?, ?, 0, 0)", [cid, cid])
    for a, d in ANCESTORS:
        con.execute("INSERT INTO concept_ancestor VALUES (?, ?, 1, 1)", [a, d])
    con.execute("INSERT INTO drug_strength VALUES (2100000006, 2100000002, 300, ?), "
                "(2100000007, 2100000004, 0.025, ?)", [MG, MG])
    # lithium carbonate 2 x 300 mg a day for 90 days, from week 4 of the sertraline trial
    for i, start in enumerate(("2024-02-12", "2024-03-13", "2024-04-12")):
        con.execute("INSERT INTO drug_exposure VALUES (?, 1, 2100000006, ?, ?, 0, 60, 30, NULL)",
                    [100 + i, start, None])
    con.close()
    return db


def test_lithium_salts_and_liothyronine_resolve_by_name_in_both_paths(tmp_path: Path) -> None:
    db = _database(tmp_path)
    for concepts in (resolve_concepts(open_omop(db)), resolve_concepts_duckdb(open_duckdb(db))):
        agents = {cid: [d.agent for d in dcs] for cid, dcs in concepts.drugs.items()}
        assert agents[2_100_000_001] == ["lithium"]
        assert agents[2_100_000_002] == ["lithium"]
        assert agents[2_100_000_003] == ["lithium"]
        assert agents[2_100_000_006] == ["lithium"]  # product under lithium carbonate
        assert agents[2_100_000_007] == ["liothyronine"]
        assert 2_100_000_005 not in agents and 2_100_000_008 not in agents


def test_per_patient_adapter_reads_lithium_carbonate_as_lithium_augmentation(
        tmp_path: Path) -> None:
    patient = read_patient(open_omop(_database(tmp_path)), 1, AS_OF).patient
    assert patient is not None
    meds = patient.episodes[0].medications
    lithium = [a for m in meds for a in m.added if a.agent == "lithium"] + [
        m for m in meds if m.agent == "lithium"]
    assert lithium, [m.agent for m in meds]
    assert {s.daily_dose_mg for s in lithium[0].steps} == {600.0}
