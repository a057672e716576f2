"""Writes the synthetic FHIR patients of `trdstage sandbox` (src/trdstage/service/sandbox/
patients/): the bundled native examples as an EHR would send them (tests/fhir_builders.py's
converter), the bundled FHIR example, and three sandbox stories. Synthetic data only.

    uv run --frozen python scripts/sandbox_patients.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fhir_builders import (  # noqa: E402
    bundle,
    condition,
    dosage,
    observation,
    patient,
    patient_to_bundle,
    request,
    statement,
)
from trdstage.adapters.native import read_patient_file  # noqa: E402

OUT = ROOT / "src" / "trdstage" / "service" / "sandbox" / "patients"
EXAMPLES = ROOT / "src" / "trdstage" / "examples"


def _rename(doc: dict[str, Any], pid: str) -> dict[str, Any]:
    """Patient p1 -> pid; every resource id prefixed with pid (ids are global on a server)."""
    for entry in doc["entry"]:
        res = entry["resource"]
        res["id"] = pid if res["resourceType"] == "Patient" else f"{pid}-{res['id']}"
        entry["fullUrl"] = f"urn:uuid:{res['id']}"
    text = json.dumps(doc).replace('"Patient/p1"', f'"Patient/{pid}"').replace(
        '"Medication/', f'"Medication/{pid}-')
    return dict(json.loads(text))


def _write(name: str, doc: dict[str, Any]) -> None:
    (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def fluoxetine_story() -> dict[str, Any]:
    """Still on fluoxetine 40 mg after a failed 8-week sertraline trial: the phenelzine order."""
    med = {"resourceType": "Medication", "id": "med-fluoxetine-20",
           "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                "code": "310385", "display": "fluoxetine 20 MG Oral Capsule"}],
                    "text": "fluoxetine 20 MG Oral Capsule"}}
    fluox = request("rx-fluoxetine", "fluoxetine", "2025-08-11", supply_days=None,
                    dose=[dosage(2, "capsule")], status="active")
    del fluox["medicationCodeableConcept"]
    fluox["medicationReference"] = {"reference": "Medication/med-fluoxetine-20"}
    return bundle(
        patient("p1", "1982-06-20", "male"),
        condition("mdd", "icd10cm", "F33.1", onset="2025-05-05"),
        statement("ms-sertraline", "sertraline 50 MG Oral Tablet", "2025-05-19", "2025-07-14",
                  dose=[dosage(3, "tablet")], outcome="non_response", adherence="good"),
        fluox, med,
        observation("phq9-1", "loinc", "44261-6", "2025-05-12", 19),
        observation("phq9-2", "loinc", "44261-6", "2025-07-14", 18),
        observation("phq9-3", "loinc", "44261-6", "2025-10-06", 15))


def lithium_story() -> dict[str, Any]:
    """On venlafaxine with lithium augmentation, age 71."""
    return bundle(
        patient("p1", "1955-01-12", "female"),
        condition("mdd", "icd10cm", "F33.2", onset="2025-01-06"),
        statement("ms-citalopram", "citalopram 20 MG Oral Tablet", "2025-01-20", "2025-03-17",
                  dose=[dosage(1, "tablet")], outcome="non_response", adherence="good"),
        request("rx-venlafaxine", "venlafaxine 75 MG 24HR Extended Release Oral Capsule",
                "2025-03-24", supply_days=None, dose=[dosage(2, "capsule")], status="active"),
        request("rx-lithium", "lithium carbonate 300 MG Oral Capsule", "2025-06-02",
                supply_days=None, dose=[dosage(2, "capsule")], status="active"),
        observation("phq9-1", "loinc", "44261-6", "2025-01-13", 21))


def no_depression_story() -> dict[str, Any]:
    return bundle(patient("p1", "1990-09-09", "female"),
                  condition("htn", "icd10cm", "I10", onset="2024-02-02"))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        pid = path.stem.split("-")[0].lower() if path.stem.startswith("d") and \
            path.stem[1].isdigit() else path.stem
        _write(pid, _rename(patient_to_bundle(read_patient_file(path)), pid))
    fhir = json.loads((EXAMPLES / "fhir" / "trd-fhir-example.json").read_text("utf-8"))
    _write("trd-fhir-1", fhir)
    _write("fluoxetine", _rename(fluoxetine_story(), "fluoxetine"))
    _write("lithium", _rename(lithium_story(), "lithium"))
    _write("no-depression", _rename(no_depression_story(), "no-depression"))


if __name__ == "__main__":
    main()
