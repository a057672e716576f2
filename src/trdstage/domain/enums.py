"""Closed vocabularies of the domain.

Values are the strings used in files and in the JSON contract.
"""

from __future__ import annotations

from enum import StrEnum


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class Severity(StrEnum):
    subsyndromal = "subsyndromal"
    mild = "mild"
    moderate = "moderate"
    severe = "severe"


class Adherence(StrEnum):
    good = "good"
    partial = "partial"
    poor = "poor"
    unknown = "unknown"


class Outcome(StrEnum):
    response = "response"
    partial_response = "partial_response"
    non_response = "non_response"
    intolerance = "intolerance"
    unknown = "unknown"


class Laterality(StrEnum):
    bilateral = "bilateral"
    unilateral = "unilateral"
    unknown = "unknown"


class CourseKind(StrEnum):
    """Non-pharmacological or rapid-acting courses that are not antidepressant trials."""

    rtms = "rtms"
    itbs = "itbs"
    vns = "vns"
    dbs = "dbs"
    ketamine = "ketamine"
    esketamine = "esketamine"
    psychotherapy = "psychotherapy"


class Scale(StrEnum):
    phq9 = "PHQ-9"
    hamd17 = "HAM-D17"
    madrs = "MADRS"
    qids_sr16 = "QIDS-SR16"


class AgentRole(StrEnum):
    """What an agent is, per the formulary."""

    antidepressant = "antidepressant"
    augmenter = "augmenter"


class ConcurrentUse(StrEnum):
    """How a second agent taken alongside a trial is read."""

    augmentation = "augmentation"
    combination = "combination"
    cross_taper = "cross_taper"
