"""Load and cross-check the knowledge data bundled with the package.

Every source key named anywhere must resolve in sources.yaml; every antidepressant's mechanism
must be a declared class. A broken knowledge file fails at load, naming file and field.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from trdstage.domain.policy import MinDoseBasis, Policy
from trdstage.knowledge.documents import DocumentError, load_yaml
from trdstage.knowledge.schema import (
    Antidepressant,
    Augmenter,
    FormularyFile,
    MechanismClass,
    RapidActingAgent,
    ScalesFile,
    ScaleSpec,
    Source,
    SourcesFile,
    StagingModelsFile,
)

M = TypeVar("M", bound=BaseModel)
MAX_POLICY_BYTES = 1024 * 1024

DATA = resources.files("trdstage.knowledge") / "data"


class KnowledgeError(ValueError):
    """A knowledge or policy file is malformed or refers to something that does not exist."""


def _read_yaml(name: str, text: str) -> Any:
    try:
        # libyaml's parser when the wheel has it (several times faster), else the pure one
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{name}: not valid YAML: {exc}") from exc


def _parse(model: type[M], name: str, data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [(f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "")
                    + e["msg"].removeprefix("Value error, ") for e in exc.errors()]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise KnowledgeError(f"{name}: {'; '.join(problems[:3])}{more}") from exc


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


@dataclass(frozen=True)
class AgentMatch:
    """What a drug name resolves to."""

    name: str
    kind: str  # "antidepressant" | "augmenter" | "rapid_acting"


@dataclass
class Knowledge:
    sources: dict[str, Source]
    classes: dict[str, MechanismClass]
    antidepressants: dict[str, Antidepressant]
    augmenters: dict[str, Augmenter]
    rapid_acting: dict[str, RapidActingAgent]
    scales: dict[str, ScaleSpec]
    models: StagingModelsFile
    default_sources: dict[str, str]
    _names: dict[str, AgentMatch] = field(default_factory=dict)
    route_terms: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, table in (
            ("antidepressant", self.antidepressants),
            ("augmenter", self.augmenters),
            ("rapid_acting", self.rapid_acting),
        ):
            for name, entry in table.items():
                spellings = [name, *getattr(entry, "aliases", []), *entry.brands]
                for spelling in spellings:
                    self._names.setdefault(_normal(spelling), AgentMatch(name, kind))

    def resolve(self, name: str) -> AgentMatch | None:
        """Generic, alias or brand name (any case) to the canonical agent."""
        return self._names.get(_normal(name))

    def suggest(self, name: str, n: int = 3) -> list[str]:
        matches = difflib.get_close_matches(_normal(name), list(self._names), n=n, cutoff=0.75)
        return list(dict.fromkeys(self._names[m].name for m in matches))

    def route_of(self, recorded: str | None) -> str | None:
        """The route a recorded route or dose form names (`route_terms`), or None."""
        if not recorded:
            return None
        text = " " + re.sub(r"[^a-z0-9]+", " ", recorded.lower()) + " "
        for route, terms in self.route_terms.items():
            if any(f" {t} " in text for t in terms):
                return route
        return None

    def cite(self, key: str) -> str:
        src = self.sources[key]
        return f"[{key}] {src.citation} ({src.tag})"

    def source_of(self, entry: Antidepressant | Augmenter, what: str) -> str | None:
        return entry.sources.get(what) or self.default_sources.get(what)


def min_adequate_dose(drug: Antidepressant, policy: Policy) -> float | None:
    """The minimum adequate daily dose under the policy's `min_dose_basis`: the MGH-ATRQ figure,
    or under canmat_floor the higher of it and CANMAT's lowest listed dose."""
    if (policy.min_dose_basis is MinDoseBasis.canmat_floor and drug.canmat_min_mg is not None
            and drug.min_adequate_mg is not None):
        return max(drug.min_adequate_mg, drug.canmat_min_mg)
    return drug.min_adequate_mg


def _source_keys(obj: Any) -> list[str]:
    """Every value under a key named like a source reference, recursively."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("source", "mechanism_classes_source") or key.endswith("_source"):
                if isinstance(value, str):
                    found.append(value)
            elif key in ("sources", "default_sources"):
                if isinstance(value, dict):
                    found.extend(v for v in value.values() if isinstance(v, str))
                elif isinstance(value, list):
                    found.extend(v for v in value if isinstance(v, str))
            else:
                found.extend(_source_keys(value))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(_source_keys(item))
    return found


def _check_sources(name: str, raw: Any, known: dict[str, Source]) -> None:
    missing = sorted({k for k in _source_keys(raw) if k not in known})
    if missing:
        raise KnowledgeError(f"{name}: unknown source key(s): {', '.join(missing)}")


@cache
def load_knowledge() -> Knowledge:
    raw = {n: _read_yaml(n, (DATA / n).read_text(encoding="utf-8")) for n in (
        "sources.yaml", "formulary.yaml", "scales.yaml", "staging_models.yaml")}
    sources = _parse(SourcesFile, "sources.yaml", raw["sources.yaml"]).sources
    formulary = _parse(FormularyFile, "formulary.yaml", raw["formulary.yaml"])
    scales = _parse(ScalesFile, "scales.yaml", raw["scales.yaml"])
    models = _parse(StagingModelsFile, "staging_models.yaml", raw["staging_models.yaml"])
    for name in ("formulary.yaml", "scales.yaml", "staging_models.yaml"):
        _check_sources(name, raw[name], sources)
    classes = {c.id: c for c in formulary.mechanism_classes}
    for i, ad in enumerate(formulary.antidepressants):
        if ad.mechanism not in classes:
            raise KnowledgeError(
                f"formulary.yaml: antidepressants.{i}.mechanism: unknown class {ad.mechanism!r}")
        if ad.min_adequate_mg is not None and "min_dose" not in ad.sources:
            raise KnowledgeError(
                f"formulary.yaml: antidepressants.{i}: {ad.name} has a minimum dose "
                "but no min_dose source")
    for spec in (models.thase_rush.stage_3_mechanism, models.thase_rush.stage_4_mechanism):
        if spec not in classes:
            raise KnowledgeError(f"staging_models.yaml: unknown mechanism {spec!r}")
    return Knowledge(
        sources=sources,
        classes=classes,
        antidepressants={a.name: a for a in formulary.antidepressants},
        augmenters={a.name: a for a in formulary.augmenters},
        rapid_acting={a.name: a for a in formulary.rapid_acting},
        scales={s.id: s for s in scales.scales},
        models=models,
        default_sources=formulary.default_sources,
        route_terms=formulary.route_terms,
    )


def load_data_file(name: str, model: type[M]) -> tuple[M, Any]:
    """Read one bundled knowledge file, validate it as `model`, and check that every source key
    it names resolves: the one way every knowledge file is loaded. Returns (parsed, raw)."""
    raw = _read_yaml(name, (DATA / name).read_text(encoding="utf-8"))
    parsed = _parse(model, name, raw)
    _check_sources(name, raw, load_knowledge().sources)
    return parsed, raw


def policy_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in (DATA / "policies").iterdir()
                  if p.name.endswith(".yaml"))


def _policy_from_text(label: str, text: str, trusted: bool = True) -> Policy:
    if trusted:
        raw = _read_yaml(label, text)
    else:  # a user's file: nesting, size and numbers bounded (JSON is YAML)
        try:
            raw = load_yaml(text, label)
        except DocumentError as exc:
            raise KnowledgeError(str(exc)) from exc
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{label}: expected a mapping of policy settings")
    policy = _parse(Policy, label, raw)
    _check_sources(label, raw, load_knowledge().sources)
    return policy


@cache
def _bundled_policy(name: str) -> Policy:
    path = DATA / "policies" / f"{name}.yaml"
    return _policy_from_text(f"policies/{name}.yaml", path.read_text(encoding="utf-8"))


def load_policy(name_or_path: str | Path = "default") -> Policy:
    """A bundled policy by name (`default`, `lifetime`, ...) or a YAML/JSON policy file."""
    text_name = str(name_or_path)
    if text_name in policy_names():
        return _bundled_policy(text_name)
    path = Path(name_or_path)
    if not path.is_file():
        hint = difflib.get_close_matches(text_name, policy_names(), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise KnowledgeError(
            f"policy {text_name!r}: neither a bundled policy ({', '.join(policy_names())}) "
            f"nor a readable file{extra}")
    if path.stat().st_size > MAX_POLICY_BYTES:
        raise KnowledgeError(f"{path}: a policy file of more than {MAX_POLICY_BYTES // 1024} kB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read ({exc.strerror})") from exc
    return _policy_from_text(str(path), text, trusted=False)
