"""What every staging model is given: the judged history of one patient under one policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from trdstage.domain import Episode, Policy
from trdstage.domain.results import (
    CourseSummary,
    ECTVerdict,
    EpisodeSummary,
    TrialVerdict,
)
from trdstage.knowledge import Knowledge


@dataclass(frozen=True)
class StagingContext:
    as_of: date
    policy: Policy
    knowledge: Knowledge
    episode: Episode
    episode_summary: EpisodeSummary
    trials: list[TrialVerdict]
    ect: list[ECTVerdict]
    courses: list[CourseSummary]

    @property
    def scoped_trials(self) -> list[TrialVerdict]:
        return [t for t in self.trials if t.in_scope]

    @property
    def failed_trials(self) -> list[TrialVerdict]:
        return [t for t in self.trials if t.in_scope and t.failed]

    @property
    def failed_ect(self) -> list[ECTVerdict]:
        return [c for c in self.ect if c.in_scope and c.failed]

    @property
    def scoped_ect(self) -> list[ECTVerdict]:
        return [c for c in self.ect if c.in_scope]

    @property
    def scoped_courses(self) -> list[CourseSummary]:
        return [c for c in self.courses if c.in_scope]

    def sources(self, *keys: str) -> list[str]:
        return [self.knowledge.cite(k) for k in keys]
