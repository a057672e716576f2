"""Real producer output: Synthea FHIR R4 patients (tests/fixtures/synthea/README.md for origin
and licence). Read without a crash; with no depression in the record the answer is a clear
"nothing to assess"; with an MDD diagnosis added, the record is staged and every medication and
procedure Synthea wrote is used or named in a warning."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from test_fuzz import assert_nothing_vanishes
from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir import read_fhir_data, read_fhir_file
from trdstage.advice import advise
from trdstage.engine import assess

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "synthea").glob("*.json"))
AS_OF = date(2026, 1, 1)


def test_fixtures_are_small_and_present() -> None:
    assert len(FIXTURES) == 4
    assert sum(p.stat().st_size for p in FIXTURES) < 2 * 1024 * 1024


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_no_depression_is_a_clear_answer(path: Path) -> None:
    with pytest.raises(InputError, match="nothing to assess") as caught:
        read_fhir_file(path)
    assert str(path) in str(caught.value)


def with_mdd(doc: dict[str, Any], onset: str) -> dict[str, Any]:
    """The Synthea record plus one MDD Condition (ICD-10-CM F33.1), added by the test."""
    doc = copy.deepcopy(doc)
    pid = doc["entry"][0]["resource"]["id"]
    doc["entry"].append({"fullUrl": "urn:uuid:added-mdd", "resource": {
        "resourceType": "Condition", "id": "added-mdd",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.1"}]},
        "onsetDateTime": onset,
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]}}})
    return doc


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_staged_with_an_mdd_diagnosis_and_nothing_vanishes(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    birth = doc["entry"][0]["resource"]["birthDate"]
    onset = f"{int(birth[:4]) + 10}-01-01"  # within every patient's lifetime
    read = read_fhir_data(with_mdd(doc, onset), path.name)
    result = advise(read.patient, assess(read.patient, as_of=AS_OF))
    data = result.model_dump(mode="json")
    data["warnings"] = [*(n.model_dump(mode="json") for n in read.notices), *data["warnings"]]
    assert_nothing_vanishes(with_mdd(doc, onset), data)
    # Synthea's own Conditions (hypertension, ...) and Encounter-linked records are read, not
    # errors; the non-psychiatric medications are named, not silently dropped
    assert any("MedicationRequest" in w["message"] or "Procedure" in w["message"]
               for w in data["warnings"])
