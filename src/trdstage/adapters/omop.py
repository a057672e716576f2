"""OMOP CDM 5.4 -> trdstage: open a database, check it, resolve concepts, and read one person.

The rules (omop.yaml `rules`, documented in docs/cohort.md) that turn rows into a `Patient`:

- drugs: drug_concept_id rolled up to formulary ingredients through concept_ancestor; without
  that table, a drug_concept_id equal to a formulary ingredient id is matched directly;
- a row's period is [start, end + 1 day) (end_date inclusive), end falling back to
  start + days_supply, then start + 1; rows after the as-of date are not read; rows whose end is
  before their start or whose days_supply is negative are excluded and counted;
- daily dose = drug_strength amount (in mg) x quantity / days_supply, else unknown (the `claims`
  policy then judges adequacy on duration alone, flagged);
- each antidepressant row is one regimen (the engine merges rows of one agent with gaps up to
  the policy's `same_agent_gap_days` into a trial); rows of one augmenter with gaps up to
  `augmenter_gap_days` form one regimen (so a refill is not a new addition);
- episodes: gaps-and-islands over antidepressant rows (and MDD diagnoses, when
  `mdd_diagnosis_opens_episode`): an event starting more than `episode_washout_days` after every
  earlier one has ended opens a new episode; an episode with no event in the last
  `episode_washout_days` before the as-of date ended at its last event;
- PHQ-9 observations (concept set phq9_total) are ratings; the episode's severity is the band of
  its first reading (`severity_from_phq9`);
- ECT and rTMS procedure rows within `ect_course_gap_days` / `rtms_course_gap_days` form courses
  (sessions = rows, laterality unknown);
- bipolar and psychosis diagnoses become the flags `bipolar_features` and `psychotic_disorder`;
  the diagnosis sets also take the concepts of the published value sets' codes
  (`concept_set_codes`);
- a quantity of 0 or NaN is unknown (ETL-Synthea writes 0); PHQ-9 item 9 answers (LOINC
  44260-8) are kept as item readings for the self-harm alert; the earliest death on or before
  the as-of date is the patient's `death_date`; a person_id on several person rows or with an
  impossible year of birth is not read (`person_problem`).

The per-person reference result is `engine.assess(patient, as_of, policy="claims")`; the cohort
engine (trdstage.cohort) must give the same answers for everyone.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trdstage.adapters.errors import InputError
from trdstage.domain.enums import CourseKind, Scale, Severity, Sex
from trdstage.knowledge import Knowledge, load_knowledge
from trdstage.knowledge.omop_schema import OmopSpec, load_omop_spec

if TYPE_CHECKING:
    from trdstage.domain.patient import Patient

FLAG_OF_SET = {"bipolar": "bipolar_features", "psychosis": "psychotic_disorder"}


# --------------------------------------------------------------------------- opening a database


@dataclass
class OmopSource:
    """An Ibis connection and the OMOP tables found in it (checked against omop.yaml)."""

    con: Any  # ibis.BaseBackend
    tables: dict[str, Any]  # name -> ibis Table, columns cast to omop.yaml's types
    label: str
    missing_optional: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.tables


# A column's type as `check_columns` judges it: its family (int, float, decimal, string, date,
# timestamp, null or other) and its name in messages (as Ibis prints it).
ColumnType = tuple[str, str]


@dataclass(frozen=True)
class ColumnRead:
    """How one omop.yaml column is read from a table (`check_columns`)."""

    name: str  # omop.yaml's name
    type: str  # omop.yaml's type: int64, int32, float64, date or string
    actual: str | None = None  # the table's own name for it; None: absent, read as a typed null
    to_date: bool = False  # a timestamp, read as its date
    cast: bool = False  # cast to `type`


def _type_ok(family: str, wanted: str) -> bool:
    if wanted in ("int64", "int32"):
        return family == "int"
    if wanted == "float64":
        return family in ("int", "float", "decimal")
    if wanted == "date":
        return family in ("date", "timestamp")
    return family == "string"


def check_columns(columns: Mapping[str, Mapping[str, ColumnType]], label: str,
                  spec: OmopSpec) -> tuple[dict[str, list[ColumnRead]], list[str]]:
    """The rules of omop.yaml's tables on what a database has (table -> its columns, by their
    own names, -> type), for every reader (Ibis here, DuckDB's own SQL in
    `cohort/duckdb_native.py`): how each column of each table present is read, and the optional
    tables missing. An InputError names the table or column at fault: a required table or column
    missing (names compared without regard to case), or a column of the wrong type (a column of
    nulls passes)."""
    reads: dict[str, list[ColumnRead]] = {}
    missing_optional: list[str] = []
    for name, tspec in spec.tables.items():
        got = columns.get(name)
        if got is None:
            if tspec.optional:
                missing_optional.append(name)
                continue
            raise InputError(f"{label}: table {name}", "missing (an OMOP CDM 5.4 table trdstage "
                             f"needs; columns {', '.join(tspec.required)})")
        cols = {c.lower(): c for c in got}
        plan = reads[name] = []
        for col in tspec.columns:
            actual = cols.get(col.name)
            if actual is None:
                if col.required:
                    raise InputError(f"{label}: {name}.{col.name}", "missing column")
                plan.append(ColumnRead(col.name, col.type))
                continue
            family, shown = got[actual]
            if not _type_ok(family, col.type) and family != "null":
                raise InputError(f"{label}: {name}.{col.name}",
                                 f"has type {shown}, expected {col.type}")
            to_date = col.type == "date" and family == "timestamp"
            cast = not to_date and (col.type in ("int64", "int32", "float64") or family == "null")
            plan.append(ColumnRead(col.name, col.type, actual, to_date, cast))
    return reads, missing_optional


def _ibis_family(dtype: Any) -> str:
    for family, test in (("null", dtype.is_null), ("int", dtype.is_integer),
                         ("float", dtype.is_floating), ("decimal", dtype.is_decimal),
                         ("string", dtype.is_string), ("date", dtype.is_date),
                         ("timestamp", dtype.is_timestamp)):
        if test():
            return family
    return "other"


def check_tables(raw: Mapping[str, Any], label: str, spec: OmopSpec | None = None) -> OmopSource:
    """Validate and type the tables (`check_columns`); raise InputError naming the table and
    column at fault."""
    import ibis  # type: ignore[import-untyped]

    spec = spec or load_omop_spec()
    present = {name: table for name, table in raw.items() if table is not None}
    reads, missing_optional = check_columns(
        {name: {c: (_ibis_family(t), str(t)) for c, t in table.schema().items()}
         for name, table in present.items()}, label, spec)
    out: dict[str, Any] = {}
    for name, plan in reads.items():
        table = present[name]
        selected = {}
        for read in plan:
            if read.actual is None:
                selected[read.name] = ibis.null().cast(read.type)
                continue
            expr = table[read.actual]
            if read.to_date:
                expr = expr.date()
            elif read.cast:
                expr = expr.cast(read.type)
            if not expr.type().nullable:
                # NOT NULL in the DDL (OHDSI's declares the dates so): Ibis keeps nullability in
                # a column's type and refuses a union of a NOT NULL column with a nullable one
                expr = expr.cast(expr.type().copy(nullable=True))
            selected[read.name] = expr
        out[name] = table.select(**selected)
    return OmopSource(con=None, tables=out, label=label, missing_optional=missing_optional)


def open_omop(url: str | Path, spec: OmopSpec | None = None) -> OmopSource:
    """Open an OMOP database: a DuckDB file (`x.duckdb`, `duckdb:///x.duckdb`), a folder of
    Parquet files read by DuckDB (`<dir>`), a PostgreSQL URL (`postgres://user:pass@host/db`,
    schemas via `?schema=cdm` or `?schema=cdm,vocab`; the password never appears in messages), or
    Spark: `spark:<dir>` (Parquet folder, local session) or
    `spark-catalog:<database>` (tables of an existing catalog database)."""
    import ibis

    text = str(url)
    label = text
    spec = spec or load_omop_spec()
    wanted = list(spec.tables)
    try:
        if text.startswith(("spark:", "spark-catalog:")):
            from trdstage.cohort.spark import spark_session

            session = spark_session()
            con = ibis.pyspark.connect(session)
            if text.startswith("spark-catalog:"):
                database = text.split(":", 1)[1]
                present = set(con.list_tables(database=database))
                raw = {n: con.table(n, database=database) for n in wanted if n in present}
            else:
                folder = Path(text.split(":", 1)[1])
                raw = _parquet_tables(con, folder, wanted)
        elif text.startswith(("postgres://", "postgresql://")):
            label = redact_url(text)
            con, raw = _postgres_tables(text, wanted)
        else:
            path = Path(text.removeprefix("duckdb://"))
            if path.is_dir():
                con = ibis.duckdb.connect()
                raw = _parquet_tables(con, path, wanted)
            elif path.is_file():
                con = ibis.duckdb.connect(str(path), read_only=True)
                present = set(con.list_tables())
                raw = {n: con.table(n) for n in wanted if n in present}
            else:
                raise InputError(text, "no such DuckDB file or Parquet folder")
    except InputError:
        raise
    except Exception as exc:  # a driver's own error: name the database, keep the message
        message = " ".join(str(exc).split())
        raise InputError(label, f"cannot open the database: {message}") from exc
    source = check_tables(raw, label, spec)
    source.con = con
    return source


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***` (for messages and labels)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _postgres_tables(url: str, wanted: Iterable[str]) -> tuple[Any, dict[str, Any]]:
    """Connect to PostgreSQL and find the OMOP tables. `?schema=cdm` (or `?schema=cdm,vocab`,
    or the path form `/db/cdm`) names the schemas to read, searched in order for each table (the
    OHDSI layout often keeps the vocabulary apart); without it, the connection's current schema
    (normally `public`). The other query parameters go to libpq (`sslmode=require`, `host=` a
    socket folder, ...); `connect_timeout` defaults to 10 s so a wrong host fails quickly."""
    import ibis

    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    database, _, path_schema = parts.path.lstrip("/").partition("/")
    schemas = [s.strip() for s in (query.pop("schema", "") or path_schema).split(",")
               if s.strip()]
    kwargs: dict[str, Any] = {"connect_timeout": "10"}
    if parts.hostname:
        kwargs["host"] = parts.hostname
    if parts.port:
        kwargs["port"] = parts.port
    if parts.username:
        kwargs["user"] = urllib.parse.unquote(parts.username)
    if parts.password is not None:
        kwargs["password"] = urllib.parse.unquote(parts.password)
    if database:
        kwargs["database"] = urllib.parse.unquote(database)
    kwargs.update(query)
    con = ibis.postgres.connect(schema=",".join(schemas) or None, **kwargs)
    if not schemas:
        present = set(con.list_tables())
        return con, {n: con.table(n) for n in wanted if n in present}
    known = set(con.list_databases())
    for schema in schemas:
        if schema not in known:
            user = sorted(s for s in known if not s.startswith(("pg_", "information_schema")))
            raise InputError(f"{redact_url(url)}: schema {schema}",
                             f"no such schema (schemas: {', '.join(user) or 'none'})")
    raw: dict[str, Any] = {}
    for schema in schemas:
        present = set(con.list_tables(database=schema))
        for name in wanted:
            if name not in raw and name in present:
                raw[name] = con.table(name, database=schema)
    return con, raw


def _parquet_tables(con: Any, folder: Path, wanted: Iterable[str]) -> dict[str, Any]:
    if not folder.is_dir():
        raise InputError(str(folder), "no such Parquet folder")
    raw = {}
    for name in wanted:
        single = folder / f"{name}.parquet"
        nested = folder / name
        if single.is_file():
            raw[name] = con.read_parquet(str(single), table_name=name)
        elif nested.is_dir() and any(nested.glob("*.parquet")):
            raw[name] = con.read_parquet(str(nested / "*.parquet"), table_name=name)
    return raw


# --------------------------------------------------------------------------- concepts


@dataclass(frozen=True)
class DrugConcept:
    agent: str
    ingredient_concept_id: int
    role: str  # "antidepressant" | "augmenter"


@dataclass
class Concepts:
    """Concept resolution, done once per database and shared by both paths."""

    drugs: dict[int, list[DrugConcept]]  # drug_concept_id -> formulary agents
    sets: dict[str, set[int]]  # concept set name -> concept ids (descendants included)
    unit_factor: dict[int, float]  # amount_unit_concept_id -> factor to mg
    # concept names that carry a route: drug concepts of agents with restricted routes (the
    # RxNorm name holds the dose form) and Route-domain concepts (route_concept_id)
    route_names: dict[int, str] = field(default_factory=dict)

    def set_of(self, concept_id: int) -> list[str]:
        return [name for name, ids in self.sets.items() if concept_id in ids]


def formulary_ingredients(knowledge: Knowledge | None = None) -> dict[int, list[DrugConcept]]:
    knowledge = knowledge or load_knowledge()
    out: dict[int, list[DrugConcept]] = {}
    for role, table in (("antidepressant", knowledge.antidepressants),
                        ("augmenter", knowledge.augmenters)):
        for name, entry in table.items():
            if entry.omop_concept_id is not None:
                out.setdefault(entry.omop_concept_id, []).append(
                    DrugConcept(name, entry.omop_concept_id, role))
    return out


# An agent without a bundled concept id is found by name among these concepts
INGREDIENT_CONCEPT = {"vocabulary_id": "RxNorm", "concept_class_id": "Ingredient",
                      "standard_concept": "S"}


def unmapped_ingredient_names(knowledge: Knowledge | None = None) -> dict[str, list[
        tuple[str, str]]]:
    """Lower-case RxNorm ingredient name -> (agent, role), for the formulary agents whose
    bundled omop_concept_id is null (generic name and `ingredient_names`, e.g. salts)."""
    knowledge = knowledge or load_knowledge()
    out: dict[str, list[tuple[str, str]]] = {}
    for role, table in (("antidepressant", knowledge.antidepressants),
                        ("augmenter", knowledge.augmenters)):
        for name, entry in table.items():
            if entry.omop_concept_id is None:
                for spelling in (name, *entry.ingredient_names):
                    out.setdefault(spelling.lower(), []).append((name, role))
    return out


def add_named_ingredients(by_ingredient: dict[int, list[DrugConcept]],
                          found: Iterable[tuple[int, str]],
                          knowledge: Knowledge | None = None) -> None:
    """Add the ingredient concepts found by name (concept_id, concept_name) to `by_ingredient`."""
    names = unmapped_ingredient_names(knowledge)
    for cid, cname in sorted(found):
        for agent, role in names.get(cname.strip().lower(), []):
            dc = DrugConcept(agent, cid, role)
            if dc not in by_ingredient.setdefault(cid, []):
                by_ingredient[cid].append(dc)


def _named_ingredient_rows(source: OmopSource, knowledge: Knowledge | None) -> list[
        tuple[int, str]]:
    concept = source.tables.get("concept")
    names = list(unmapped_ingredient_names(knowledge))
    if concept is None or not names:
        return []
    cond = concept.concept_name.lower().isin(names)
    for column, value in INGREDIENT_CONCEPT.items():
        cond = cond & (concept[column] == value)
    rows = concept.filter(cond).select("concept_id", "concept_name").to_pyarrow().to_pylist()
    return [(int(r["concept_id"]), str(r["concept_name"])) for r in rows]


# Published value sets (knowledge/data/value_sets.yaml) -> the concept set whose ids they add to
VALUE_SET_TARGET = {"mdd": "mdd", "flag:bipolar_features": "bipolar",
                    "flag:psychotic_disorder": "psychosis"}
OMOP_VOCABULARY = {"snomed": "SNOMED", "icd10cm": "ICD10CM"}


def concept_set_codes(name: str, cs: Any) -> list[tuple[str, str]]:
    """The (vocabulary_id, concept_code) pairs a concept set is resolved from through the
    `concept` table: its own `codes`, and for the diagnosis sets every code of the published
    value sets that mean the same (the depression eCQMs' Major Depression, bipolar and psychosis
    value sets, SNOMED CT and ICD-10-CM), as the FHIR reader matches them."""
    from trdstage.knowledge.value_sets import load_value_sets

    pairs = {(c.vocabulary, c.code) for c in cs.codes}
    for value_set in load_value_sets().values():
        if VALUE_SET_TARGET.get(value_set.means) == name:
            for system, codes in value_set.codes.items():
                pairs.update((OMOP_VOCABULARY[system], code) for code in codes)
    return sorted(pairs)


def resolve_concepts(source: OmopSource, spec: OmopSpec | None = None,
                     knowledge: Knowledge | None = None) -> Concepts:
    """Drug concepts -> formulary ingredients and the concept sets, through the vocabulary
    tables when present (the formulary's own ingredient ids are always matched directly; an
    agent without one is found by RxNorm ingredient name in `concept`)."""
    spec = spec or load_omop_spec()
    by_ingredient = formulary_ingredients(knowledge)
    add_named_ingredients(by_ingredient, _named_ingredient_rows(source, knowledge), knowledge)
    drugs: dict[int, list[DrugConcept]] = {cid: list(v) for cid, v in by_ingredient.items()}
    ancestor = source.tables.get("concept_ancestor")
    if ancestor is not None:
        rows = ancestor.filter(ancestor.ancestor_concept_id.isin(list(by_ingredient))).select(
            "ancestor_concept_id", "descendant_concept_id").to_pyarrow().to_pylist()
        for r in sorted(rows, key=lambda r: (r["descendant_concept_id"], r["ancestor_concept_id"])):
            d = int(r["descendant_concept_id"])
            for dc in by_ingredient[int(r["ancestor_concept_id"])]:
                if dc not in drugs.setdefault(d, []):
                    drugs[d].append(dc)
    concept = source.tables.get("concept")
    wanted = {name: concept_set_codes(name, cs) for name, cs in spec.concept_sets.items()}
    found: dict[tuple[str, str], set[int]] = {}
    every = sorted({code for pairs in wanted.values() for _, code in pairs})
    if every and concept is not None:  # one query for every code of every set
        rows = concept.filter(concept.concept_code.isin(every) & concept.concept_id.notnull()
                              ).select("vocabulary_id", "concept_code", "concept_id"
                                       ).to_pyarrow().to_pylist()
        for r in rows:
            found.setdefault((r["vocabulary_id"], r["concept_code"]), set()).add(
                int(r["concept_id"]))
    sets: dict[str, set[int]] = {}
    for name, cs in spec.concept_sets.items():
        ids = set(cs.concepts)
        for pair in wanted[name]:
            ids.update(found.get(pair, ()))
        excluded = set(cs.exclude)
        if cs.descendants and ancestor is not None and (ids or excluded):
            rows = ancestor.filter(ancestor.ancestor_concept_id.isin(list(ids | excluded))).select(
                "ancestor_concept_id", "descendant_concept_id").to_pyarrow().to_pylist()
            for r in rows:
                target = excluded if int(r["ancestor_concept_id"]) in excluded else ids
                target.add(int(r["descendant_concept_id"]))
        sets[name] = ids - excluded
    units = {u.concept_id: u.factor for u in spec.units_to_mg}
    return Concepts(drugs=drugs, sets=sets, unit_factor=units,
                    route_names=_route_names(concept, drugs, knowledge))


def route_restricted_ids(drugs: dict[int, list[DrugConcept]],
                         knowledge: Knowledge | None = None) -> list[int]:
    """Drug concepts of agents whose antidepressant routes are restricted (selegiline): their
    names (the RxNorm dose form) and the Route concepts are read for the route."""
    knowledge = knowledge or load_knowledge()
    restricted = {n for n, a in knowledge.antidepressants.items() if a.antidepressant_routes}
    return sorted(cid for cid, dcs in drugs.items() if any(d.agent in restricted for d in dcs))


def _route_names(concept: Any, drugs: dict[int, list[DrugConcept]],
                 knowledge: Knowledge | None) -> dict[int, str]:
    ids = route_restricted_ids(drugs, knowledge)
    if concept is None or not ids:
        return {}
    rows = concept.filter(concept.concept_id.isin(ids) | (concept.domain_id == "Route")).select(
        "concept_id", "concept_name").to_pyarrow().to_pylist()
    return {int(r["concept_id"]): str(r["concept_name"]) for r in rows if r["concept_name"]}


# --------------------------------------------------------------------------- one person


@dataclass
class PersonRows:
    person: dict[str, Any] | None
    drug_exposure: list[dict[str, Any]]
    condition_occurrence: list[dict[str, Any]]
    procedure_occurrence: list[dict[str, Any]]
    observation: list[dict[str, Any]]
    strength: dict[tuple[int, int], list[tuple[float, int]]]  # (drug, ingr.) -> (amount, unit)
    person_rows: int = 1  # rows of the person table with this person_id
    death: list[dict[str, Any]] = field(default_factory=list)  # rows of the death table


def read_person(source: OmopSource, person_id: int) -> PersonRows:
    """Every row of one person (and the drug_strength rows of their drugs)."""
    def rows(name: str) -> list[dict[str, Any]]:
        t = source.tables.get(name)
        if t is None:
            return []
        return list(t.filter(t.person_id == person_id).to_pyarrow().to_pylist())

    person = rows("person")
    drugs = rows("drug_exposure")
    strength: dict[tuple[int, int], list[tuple[float, int]]] = {}
    ds = source.tables.get("drug_strength")
    concepts = sorted({int(r["drug_concept_id"]) for r in drugs
                       if r["drug_concept_id"] is not None})
    if ds is not None and concepts:
        for r in ds.filter(ds.drug_concept_id.isin(concepts)).to_pyarrow().to_pylist():
            if None in (r["drug_concept_id"], r["ingredient_concept_id"], r["amount_value"],
                        r["amount_unit_concept_id"]):
                continue
            key = (int(r["drug_concept_id"]), int(r["ingredient_concept_id"]))
            strength.setdefault(key, []).append(
                (float(r["amount_value"]), int(r["amount_unit_concept_id"])))
    return PersonRows(person[0] if person else None, drugs, rows("condition_occurrence"),
                      rows("procedure_occurrence"), rows("observation"),
                      strength, person_rows=len(person), death=rows("death"))


@dataclass
class Exclusions:
    """Rows not used, by reason (counted in the cohort summary)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1) -> None:
        if n:
            self.counts[reason] = self.counts.get(reason, 0) + n


@dataclass
class AdapterResult:
    patient: Patient | None
    excluded: str | None  # why the person has no assessable episode
    exclusions: Exclusions
    n_episodes: int = 0
    year_of_birth: int | None = None  # the person row's (the cohort's `age` column)


DUPLICATE_PERSON = "duplicate person rows (person_id on more than one row)"
IMPOSSIBLE_BIRTH = "impossible year of birth"


def birth_years(as_of: date, rules: Any) -> tuple[int, int]:
    """The plausible years of birth, first and last (omop.yaml `rules.max_age_years`)."""
    return as_of.year - int(rules.max_age_years), as_of.year


def person_problem(n_rows: int, year_of_birth: int | None, as_of: date,
                   rules: Any) -> str | None:
    """Why a person is not staged whatever their rows (the cohort engines apply the same rule,
    `cohort/row_audit.py`): a person_id on several person rows, or a year of birth after the
    as-of year or more than `max_age_years` before it."""
    if n_rows > 1:
        return DUPLICATE_PERSON
    first, last = birth_years(as_of, rules)
    if year_of_birth is None or not first <= year_of_birth <= last:
        return IMPOSSIBLE_BIRTH
    return None


def row_end(start: date, end: date | None, days_supply: int | None, inclusive: bool) -> date:
    if end is not None:
        return end + timedelta(days=1) if inclusive else end
    if days_supply is not None:
        return start + timedelta(days=days_supply)
    return start + timedelta(days=1)


def unit_dose(amounts: list[tuple[float, int]] | None, factors: Mapping[int, float],
              quantity: float | None, days_supply: int | None) -> float | None:
    """amount (mg) x quantity / days_supply, or None when any part is missing; several strength
    rows for one drug and ingredient: the largest amount. A quantity of 0 (or not a number) is
    unknown, not none: ETLs write 0 where the source has no quantity (ETL-Synthea does for every
    prescription)."""
    if not amounts or quantity is None or days_supply is None or days_supply <= 0 \
            or not quantity > 0:
        return None
    mg = [a * factors[u] for a, u in amounts if u in factors]
    if not mg:
        return None
    return max(mg) * quantity / days_supply


def _courses(dates: list[date], gap: int) -> list[tuple[date, date, int]]:
    out: list[tuple[date, date, int]] = []
    for d in sorted(dates):
        if out and (d - out[-1][1]).days <= gap:
            s, _, n = out[-1]
            out[-1] = (s, d, n + 1)
        else:
            out.append((d, d, 1))
    return out


def phq9_band(total: float, knowledge: Knowledge | None = None) -> str | None:
    spec = (knowledge or load_knowledge()).scales["PHQ-9"]
    return spec.band(total)


def patient_from_rows(
    rows: PersonRows,
    concepts: Concepts,
    as_of: date,
    spec: OmopSpec | None = None,
    knowledge: Knowledge | None = None,
) -> AdapterResult:
    """One person's rows -> a Patient under omop.yaml's rules (None with a reason when the person
    has no assessable depressive episode)."""
    from trdstage.domain.patient import (  # (here: the cohort engine never builds a Patient)
        DoseStep,
        ECTCourse,
        Episode,
        ItemReading,
        MedicationRegimen,
        Patient,
        RatingReading,
        TreatmentCourse,
    )

    spec = spec or load_omop_spec()
    knowledge = knowledge or load_knowledge()
    rules = spec.rules
    excl = Exclusions()
    if rows.person is None:
        return AdapterResult(None, "no person row", excl)
    problem = person_problem(rows.person_rows, rows.person.get("year_of_birth"), as_of, rules)
    if problem is not None:
        return AdapterResult(None, problem, excl)
    pid = int(rows.person["person_id"])
    gender = {g.concept_id: g.sex for g in spec.gender}
    sex = gender.get(rows.person.get("gender_concept_id") or 0, Sex.unknown)

    # drugs -> (start, end, dose, id) per agent
    ad_rows: list[tuple[date, int, str, date, float | None]] = []
    routes: dict[int, str] = {}  # drug_exposure_id -> route as recorded
    aug_rows: dict[str, list[tuple[date, int, date, float | None]]] = {}
    for r in rows.drug_exposure:
        start, cid = r["drug_exposure_start_date"], r["drug_concept_id"]
        if start is None or cid is None or start > as_of:
            continue
        agents = concepts.drugs.get(int(cid))
        if not agents:
            continue
        ds, end_date = r["days_supply"], r["drug_exposure_end_date"]
        if ds is not None and ds < 0:
            excl.add("drug_exposure: negative days_supply")
            continue
        if end_date is not None and end_date < start:
            excl.add("drug_exposure: end before start")
            continue
        end = row_end(start, end_date, ds, rules.end_date_inclusive)
        for dc in agents:
            dose = unit_dose(rows.strength.get((int(cid), dc.ingredient_concept_id)),
                             concepts.unit_factor, r["quantity"], ds)
            if dc.role == "antidepressant":
                ad_rows.append((start, int(r["drug_exposure_id"]), dc.agent, end, dose))
                if knowledge.antidepressants[dc.agent].antidepressant_routes:
                    named = concepts.route_names.get(int(r.get("route_concept_id") or 0))
                    route = named or concepts.route_names.get(int(cid))
                    if route:
                        routes[int(r["drug_exposure_id"])] = route
            else:
                aug_rows.setdefault(dc.agent, []).append(
                    (start, int(r["drug_exposure_id"]), end, dose))
    ad_rows.sort(key=lambda x: (x[0], x[1], x[2]))

    conditions: dict[str, list[date]] = {}
    for r in rows.condition_occurrence:
        d, cid = r["condition_start_date"], r["condition_concept_id"]
        if d is None or cid is None or d > as_of:
            continue
        for name in concepts.set_of(int(cid)):
            conditions.setdefault(name, []).append(d)
    mdd = sorted(conditions.get("mdd", []))
    if rules.require_mdd_diagnosis and not mdd:
        return AdapterResult(None, "no MDD diagnosis", excl)

    # episodes: gaps-and-islands over antidepressant rows (and MDD diagnoses)
    events: list[tuple[date, date]] = [(s, min(e, as_of)) for s, _, _, e, _ in ad_rows]
    if rules.mdd_diagnosis_opens_episode:
        events += [(d, d) for d in mdd]
    events.sort()
    if not events:
        return AdapterResult(None, "no antidepressant and no MDD diagnosis", excl)
    islands: list[list[date]] = []  # [onset, last end]
    washout = rules.episode_washout_days
    for s, e in events:
        if islands and (s - islands[-1][1]).days <= washout:
            islands[-1][1] = max(islands[-1][1], e)
        else:
            islands.append([s, e])

    # ratings, and PHQ-9 item 9 answers (the self-harm alert reads them; staging does not)
    readings: list[tuple[date, int, float]] = []
    item9: list[tuple[date, int]] = []
    item9_ids = concepts.sets.get("phq9_item9", set())
    for r in rows.observation:
        d, cid, v = r["observation_date"], r["observation_concept_id"], r["value_as_number"]
        if d is not None and cid is not None and int(cid) in item9_ids and d <= as_of \
                and v is not None:
            if v in (0, 1, 2, 3):
                item9.append((d, int(v)))
            else:
                excl.add("observation: PHQ-9 item 9 value out of range (0-3)")
            continue
        if d is None or cid is None or int(cid) not in concepts.sets["phq9_total"] or d > as_of:
            continue
        if v is None:
            continue
        if not 0 <= v <= knowledge.scales["PHQ-9"].max:  # NaN too
            excl.add("observation: PHQ-9 value out of range")
            continue
        readings.append((d, int(r["observation_id"]), float(v)))
    readings.sort()

    # procedures
    procs: dict[str, list[date]] = {"ect": [], "rtms": []}
    for r in rows.procedure_occurrence:
        d, cid = r["procedure_date"], r["procedure_concept_id"]
        if d is None or cid is None or d > as_of:
            continue
        for name in concepts.set_of(int(cid)):
            if name in procs:
                procs[name].append(d)

    def episode_of(day: date) -> int:
        index = 0
        for i, (onset, _) in enumerate(islands):
            if onset <= day:
                index = i
        return index

    meds: dict[int, list[MedicationRegimen]] = {}
    for s, rid, agent, e, dose in ad_rows:
        meds.setdefault(episode_of(s), []).append(MedicationRegimen(
            id=f"drug_exposure/{rid}", agent=agent, route=routes.get(rid),
            steps=[DoseStep(start=s, end=e, daily_dose_mg=dose)]))
    for agent in sorted(aug_rows):
        group = sorted(aug_rows[agent])
        current: list[tuple[date, int, date, float | None]] = []
        regimens: list[list[tuple[date, int, date, float | None]]] = []
        for item in group:
            if current and (item[0] - max(min(x[2], as_of) for x in current)).days \
                    > rules.augmenter_gap_days:
                regimens.append(current)
                current = []
            current.append(item)
        regimens.append(current)
        for reg in regimens:
            meds.setdefault(episode_of(reg[0][0]), []).append(MedicationRegimen(
                id=f"drug_exposure/{reg[0][1]}", agent=agent,
                steps=[DoseStep(start=s, end=e, daily_dose_mg=dose) for s, _, e, dose in reg]))
    ect: dict[int, list[ECTCourse]] = {}
    for s, e, n in _courses(procs["ect"], rules.ect_course_gap_days):
        ect.setdefault(episode_of(s), []).append(ECTCourse(start=s, end=e, sessions=n))
    other: dict[int, list[TreatmentCourse]] = {}
    for s, e, n in _courses(procs["rtms"], rules.rtms_course_gap_days):
        other.setdefault(episode_of(s), []).append(
            TreatmentCourse(kind=CourseKind.rtms, start=s, end=e, sessions=n))
    ratings: dict[int, list[RatingReading]] = {}
    for d, _, v in readings:
        ratings.setdefault(episode_of(d), []).append(
            RatingReading(scale=Scale.phq9, date=d, total=v))
    items: dict[int, list[ItemReading]] = {}
    for d, score in sorted(item9):
        items.setdefault(episode_of(d), []).append(
            ItemReading(scale=Scale.phq9, date=d, item=9, score=score))

    flags = sorted(FLAG_OF_SET[name] for name in FLAG_OF_SET if conditions.get(name))
    episodes = []
    for i, (onset, last) in enumerate(islands):
        ended = i + 1 < len(islands) or (as_of - last).days > washout
        severity: Severity | None = None
        window = onset - timedelta(days=rules.severity_window_days)
        first = next((v for d, _, v in readings if window <= d <= as_of), None)
        if first is not None:
            band = phq9_band(first, knowledge)
            severity = rules.severity_from_phq9.get(band) if band else None
        episodes.append(Episode(
            id=f"episode {i + 1}", onset=onset, end=last if ended else None,
            severity=severity, medications=meds.get(i, []), ect=ect.get(i, []),
            courses=other.get(i, []), ratings=ratings.get(i, []),
            item_readings=items.get(i, [])))
    died = [d for d in (r.get("death_date") for r in rows.death) if d is not None and d <= as_of]
    patient = Patient(id=str(pid), sex=sex, flags=flags, episodes=episodes,
                      death_date=min(died) if died else None)
    yob = rows.person.get("year_of_birth")
    return AdapterResult(patient, None, excl, n_episodes=len(episodes),
                         year_of_birth=None if yob is None else int(yob))


def read_patient(source: OmopSource, person_id: int, as_of: date,
                 concepts: Concepts | None = None) -> AdapterResult:
    """Convenience: one person of a database as a Patient (resolving concepts if not given)."""
    concepts = concepts or resolve_concepts(source)
    return patient_from_rows(read_person(source, person_id), concepts, as_of)


__all__ = [
    "AdapterResult",
    "Concepts",
    "OmopSource",
    "PersonRows",
    "check_tables",
    "open_omop",
    "patient_from_rows",
    "read_patient",
    "read_person",
    "redact_url",
    "resolve_concepts",
]
