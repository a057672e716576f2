"""FHIR R4 in and out: Bundle or server -> Patient (read, client); Assessment -> Bundle (write).

Nothing past this package knows FHIR: the reader maps into the domain model at the boundary.
"""

from trdstage.adapters.fhir.read import (
    FhirRead,
    is_fhir_json,
    read_fhir_data,
    read_fhir_file,
    read_fhir_resources,
)

__all__ = ["FhirRead", "is_fhir_json", "read_fhir_data", "read_fhir_file", "read_fhir_resources"]
