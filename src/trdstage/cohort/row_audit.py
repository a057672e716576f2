"""What a cohort run leaves out of an OMOP database, counted and named (the run's summary).

- rows of the clinical tables never read: no person_id, no date, no concept (NULL), concept 0
  (not mapped to a standard concept, as ETLs write unmapped source codes), dated after the as-of
  date;
- persons never staged: a person_id with more than one person row (which would otherwise be
  staged twice), a year of birth after the as-of year or more than `max_age_years` before it
  (which would otherwise give an age of -974). Every engine reads the person table through
  `plausible_persons_sql` / `plausible_persons_ibis` and the per-person adapter applies the same
  rule (`adapters.omop.person_problem`);
- warnings: a table most of whose rows are dated after the as-of date (a database whose dates
  are shifted into the future, as MIMIC-IV's are, would otherwise read as "no MDD diagnosis" for
  everyone), or most of whose rows have no person, date or mapped concept; concept_ancestor or
  drug_strength missing or empty (no roll-up to ingredients, no SNOMED descendants, no dose).

Two readers of the same counts: DuckDB's own SQL (`audit_duckdb`, the single-machine default)
and Ibis (`audit_ibis`, PostgreSQL and Spark)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trdstage.adapters.omop import DUPLICATE_PERSON, IMPOSSIBLE_BIRTH, birth_years
from trdstage.knowledge.omop_schema import Rules

# table -> (its date column, its concept column)
AUDITED = {
    "drug_exposure": ("drug_exposure_start_date", "drug_concept_id"),
    "condition_occurrence": ("condition_start_date", "condition_concept_id"),
    "procedure_occurrence": ("procedure_date", "procedure_concept_id"),
    "observation": ("observation_date", "observation_concept_id"),
}
KINDS = ("no person_id", "no date", "no concept", "concept 0 (unmapped)",
         "dated after the as-of date")
NO_VALUE = "PHQ-9 total without value_as_number"  # (observation; ETL-Synthea writes them)
VOCABULARY_EFFECT = {
    "concept_ancestor": "drug products are not rolled up to their ingredients (only a "
                        "drug_concept_id equal to a formulary ingredient is recognised) and "
                        "diagnosis concept sets use their listed concepts only, without SNOMED "
                        "descendants",
    "drug_strength": "no dose is known: every trial is judged on duration alone under the "
                     "claims policy, and its adequacy is unknown under the others",
}
MOST = 0.5  # a warning when more than this share of a table's rows is left out


@dataclass
class Audit:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> kind -> rows
    persons: dict[str, int] = field(default_factory=dict)  # reason -> persons not staged
    empty_vocabulary: list[str] = field(default_factory=list)

    def excluded_rows(self) -> dict[str, int]:
        return {f"{table}: {kind}": n for table, kinds in self.left_out.items()
                for kind, n in kinds.items() if n}

    def warnings(self, as_of: date) -> list[str]:
        out = []
        for table, kinds in self.left_out.items():
            total = self.rows.get(table, 0)
            if not total:
                continue
            later = kinds.get("dated after the as-of date", 0)
            if later > MOST * total:
                out.append(f"{table}: {later:,} of {total:,} rows ({100 * later / total:.0f} %) "
                           f"are dated after the as-of date {as_of.isoformat()} and were not "
                           "read; if the database's dates are shifted into the future (as "
                           "MIMIC-IV's are), choose an --as-of after them")
            unusable = sum(n for k, n in kinds.items()
                           if k not in ("dated after the as-of date", NO_VALUE))
            if unusable > MOST * total:
                out.append(f"{table}: {unusable:,} of {total:,} rows "
                           f"({100 * unusable / total:.0f} %) have no person, date or mapped "
                           "concept and were not used")
        for name in self.empty_vocabulary:
            out.append(f"{name}: missing or empty: {VOCABULARY_EFFECT[name]}")
        return out


def plausible_persons_sql(select: str, as_of: date, rules: Rules) -> str:
    """The person rows of `select` (a SELECT over the person table) that are staged: one row
    per person_id, a plausible year of birth."""
    first, last = birth_years(as_of, rules)
    # (an anti-join on the repeated ids: a hash aggregate, a tenth of a window's time)
    return (f"SELECT * FROM ({select}) WHERE person_id IS NOT NULL "  # noqa: S608
            f"AND year_of_birth BETWEEN {first:d} AND {last:d} AND person_id NOT IN "
            f"(SELECT person_id FROM ({select}) WHERE person_id IS NOT NULL "
            "GROUP BY person_id HAVING count(*) > 1)")


def plausible_persons_ibis(person: Any, as_of: date, rules: Rules) -> Any:
    import ibis  # type: ignore[import-untyped]

    first, last = birth_years(as_of, rules)
    w = ibis.window(group_by="person_id")
    person = person.mutate(trdstage_rows=person.person_id.count().over(w))
    return person.filter(person.person_id.notnull() & (person.trdstage_rows == 1)
                         & person.year_of_birth.between(first, last)).drop("trdstage_rows")


def _table_sql(view: str, date_col: str, concept_col: str, as_of: date) -> str:
    day = f"DATE '{as_of.isoformat()}'"
    # (count(column) and sums of casts: half the time of FILTER clauses)
    return (f"SELECT count(*), count(*) - count(person_id), "  # noqa: S608
            f"count(*) - count({date_col}), count(*) - count({concept_col}), "
            f"coalesce(sum(CAST({concept_col} = 0 AS INTEGER)), 0), "
            f"coalesce(sum(CAST({date_col} > {day} AS INTEGER)), 0) FROM {view}")


def _persons_sql(view: str, as_of: date, rules: Rules) -> str:
    first, last = birth_years(as_of, rules)
    return (f"WITH c AS (SELECT person_id, count(*) AS n, min(year_of_birth) AS y "  # noqa: S608
            f"FROM {view} WHERE person_id IS NOT NULL GROUP BY person_id) "
            f"SELECT count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE n = 1 AND "
            f"(y IS NULL OR y NOT BETWEEN {first:d} AND {last:d})) FROM c")


def _no_value_sql(view: str, phq9: list[int]) -> str:
    ids = ", ".join(f"{int(i):d}" for i in phq9)
    return (f"SELECT count(*) FROM {view} WHERE observation_concept_id IN ({ids}) "  # noqa: S608
            "AND value_as_number IS NULL")


def audit_duckdb(source: Any, as_of: date, rules: Rules, phq9: list[int]) -> Audit:
    """The counts on a `duckdb_native.DuckSource` (its views read the tables as they are);
    `phq9`: the PHQ-9 total concept ids."""
    audit = Audit()
    for table, (date_col, concept_col) in AUDITED.items():
        if not source.has(table):
            continue
        got = source.con.execute(_table_sql(source.view(table), date_col, concept_col,
                                            as_of)).fetchone()
        audit.rows[table] = int(got[0])
        audit.left_out[table] = dict(zip(KINDS, map(int, got[1:]), strict=True))
    if source.has("observation") and phq9:
        audit.left_out["observation"][NO_VALUE] = int(source.con.execute(
            _no_value_sql(source.view("observation"), phq9)).fetchone()[0])
    first, last = birth_years(as_of, rules)
    extra, odd = source.con.execute(  # a quick look first: usually nothing to find
        f"SELECT count(*) - count(DISTINCT person_id), coalesce(sum(CAST("  # noqa: S608
        f"year_of_birth IS NULL OR year_of_birth NOT BETWEEN {first:d} AND {last:d} "
        f"AS INTEGER)), 0) FROM {source.view('person')}").fetchone()
    dup, bad = (0, 0) if not (extra or odd) else source.con.execute(
        _persons_sql(source.view("person"), as_of, rules)).fetchone()
    audit.persons = {DUPLICATE_PERSON: int(dup), IMPOSSIBLE_BIRTH: int(bad)}
    source.persons_plausible = not (dup or bad)
    for name in VOCABULARY_EFFECT:
        if not source.has(name) or not source.con.execute(
                f"SELECT EXISTS (SELECT 1 FROM {source.view(name)})").fetchone()[0]:  # noqa: S608
            audit.empty_vocabulary.append(name)
    return audit


def audit_ibis(tables: dict[str, Any], as_of: date, rules: Rules, phq9: list[int]) -> Audit:
    """The same counts through Ibis (`OmopSource.tables`, read before the person filter)."""
    import ibis

    audit = Audit()
    day = ibis.date(as_of.isoformat())
    for table, (date_col, concept_col) in AUDITED.items():
        t = tables.get(table)
        if t is None:
            continue
        d, c = t[date_col], t[concept_col]
        got = t.aggregate(
            rows=t.count(), a=t.count(where=t.person_id.isnull()), b=t.count(where=d.isnull()),
            c=t.count(where=c.isnull()), z=t.count(where=c == 0), e=t.count(where=d > day),
        ).to_pyarrow().to_pylist()[0]
        audit.rows[table] = int(got["rows"])
        audit.left_out[table] = dict(zip(KINDS, (int(got[x]) for x in "abcze"), strict=True))
    ob = tables.get("observation")
    if ob is not None and phq9:
        audit.left_out["observation"][NO_VALUE] = int(ob.filter(
            ob.observation_concept_id.isin(phq9) & ob.value_as_number.isnull()
        ).count().to_pyarrow().as_py())
    first, last = birth_years(as_of, rules)
    p = tables["person"]
    p = p.filter(p.person_id.notnull())
    p = p.group_by("person_id").aggregate(n=p.count(), y=p.year_of_birth.min())
    got = p.aggregate(dup=p.count(where=p.n > 1), bad=p.count(
        where=(p.n == 1) & (p.y.isnull() | ~p.y.between(first, last)))).to_pyarrow().to_pylist()
    audit.persons = {DUPLICATE_PERSON: int(got[0]["dup"] or 0),
                     IMPOSSIBLE_BIRTH: int(got[0]["bad"] or 0)}
    for name in VOCABULARY_EFFECT:
        t = tables.get(name)
        if t is None or not int(t.limit(1).count().to_pyarrow().as_py()):
            audit.empty_vocabulary.append(name)
    return audit


ITEM9_COLUMN = "phq9_item9_positive"


def _item9_above() -> int:
    from trdstage.knowledge.advice_schema import load_advice_knowledge

    rule = next(r for r in load_advice_knowledge().monitoring.item_alerts
                if r.scale == "PHQ-9" and r.item == 9)
    return int(rule.above)


def item9_duckdb(source: Any, ids: list[int], as_of: date) -> Any:
    """person_id -> date of the latest PHQ-9 item 9 answer above the alert's threshold
    (monitoring.yaml `item_alerts`) on or before the as-of date."""
    day = f"DATE '{as_of.isoformat()}'"
    keep = ", ".join(f"{int(i):d}" for i in ids) or "NULL"
    return source.con.sql(
        f"SELECT person_id, max(observation_date) AS d FROM {source.view('observation')} "  # noqa: S608
        f"WHERE person_id IS NOT NULL AND observation_concept_id IN ({keep}) "
        f"AND observation_date <= {day} AND value_as_number > {_item9_above():d} "
        "AND value_as_number <= 3 GROUP BY person_id").to_arrow_table()


def item9_ibis(tables: dict[str, Any], ids: list[int], as_of: date) -> Any:
    import ibis
    import pyarrow as pa  # type: ignore[import-untyped]

    ob = tables.get("observation")
    if ob is None or not ids:
        return pa.table({"person_id": pa.array([], pa.int64()), "d": pa.array([], pa.date32())})
    ob = ob.filter(ob.person_id.notnull() & ob.observation_concept_id.isin(ids)
                   & (ob.observation_date <= ibis.date(as_of.isoformat()))
                   & (ob.value_as_number > _item9_above()) & (ob.value_as_number <= 3))
    return ob.group_by("person_id").aggregate(d=ob.observation_date.max()).to_pyarrow()


def deaths_duckdb(source: Any, as_of: date) -> Any:
    """person_id -> earliest death_date on or before the as-of date (an Arrow table)."""
    day = f"DATE '{as_of.isoformat()}'"
    return source.con.sql(
        f"SELECT person_id, min(death_date) AS death_date FROM {source.view('death')} "  # noqa: S608
        f"WHERE person_id IS NOT NULL AND death_date <= {day} GROUP BY person_id"
    ).to_arrow_table()


def deaths_ibis(tables: dict[str, Any], as_of: date) -> Any:
    import ibis
    import pyarrow as pa

    death = tables.get("death")
    if death is None:
        return pa.table({"person_id": pa.array([], pa.int64()),
                         "death_date": pa.array([], pa.date32())})
    death = death.filter(death.person_id.notnull()
                         & (death.death_date <= ibis.date(as_of.isoformat())))
    return death.group_by("person_id").aggregate(death_date=death.death_date.min()).to_pyarrow()


def with_dates(table: Any, deaths: Any, item9: Any) -> Any:
    """The results with two date columns the run adds: `death_date` (the person's death on or
    before the as-of date, null for the living; the cohort engines stage everyone as of the
    as-of date) and `phq9_item9_positive` (the latest PHQ-9 item 9 answer that raises the
    self-harm alert, null for none)."""
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    for name, lookup, column in (("death_date", deaths, "death_date"),
                                 (ITEM9_COLUMN, item9, "d")):
        at = pc.index_in(table["person_id"], value_set=lookup["person_id"].combine_chunks())
        dates = pc.take(lookup[column].combine_chunks().cast(pa.date32()), at)
        table = table.append_column(pa.field(name, pa.date32()), dates)
    return table


__all__ = ["AUDITED", "DUPLICATE_PERSON", "IMPOSSIBLE_BIRTH", "Audit", "audit_duckdb",
           "audit_ibis", "deaths_duckdb", "deaths_ibis", "item9_duckdb", "item9_ibis",
           "plausible_persons_ibis", "plausible_persons_sql", "with_dates"]
