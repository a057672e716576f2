"""The staging engine for a whole OMOP database, as one Ibis expression.

The same rules as `adapters.omop.patient_from_rows` followed by `engine.assess`, written with
relational operators and window functions only (no UDFs, no as-of joins), so that one expression
runs on DuckDB, PostgreSQL and Spark:

1. drug rows -> formulary agents (concept resolution done once, joined as a small table), periods
   [start, end + 1 day) clipped to the as-of date, daily dose from drug_strength;
2. episodes: gaps-and-islands over antidepressant rows and MDD diagnoses (running maximum of the
   previous ends, a cumulative sum of "new episode" marks); the current episode is the last;
3. trials: gaps-and-islands per person and agent with the policy's same-agent gap; days at an
   adequate dose: a second gaps-and-islands over the qualifying rows;
4. outcomes: PHQ-9 baseline and endpoint by range join and row_number; else the claims switch
   convention by a range join on later starts; concurrency by a range join on overlaps;
5. ECT courses: gaps-and-islands over procedure dates, outcome as for trials;
6. per person: every model's aggregate (see quirks.py for the engine's arithmetic).

`scan.py` computes the same table on one machine (a sorted read and a compiled pass): a rule
changed in one must be changed in the other; the equivalence tests hold both to `engine.assess`.
The row-reading helpers below (`drug_rows`, `diagnosis_rows`, `phq9_rows`, `procedure_rows`) are
shared by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from trdstage.adapters.omop import Concepts, OmopSource
from trdstage.cohort.quirks import min_days_over_weeks, months_split
from trdstage.cohort.rules import (
    BAD_END,
    BAD_SUPPLY,
    PHQ9_OUT_OF_RANGE,
    agent_columns,
    agent_names,
    augmenter_gap_days,
    check_policy,
    class_of,
)
from trdstage.domain import MissingDose, Outcome, Policy, Scale, Scope
from trdstage.knowledge import Knowledge, load_knowledge
from trdstage.knowledge.omop_schema import GenderMap, OmopSpec, load_omop_spec

OUTCOME_CODES = {Outcome.response: "response", Outcome.partial_response: "partial_response",
                 Outcome.non_response: "non_response"}


@dataclass
class CohortPlan:
    """The person-level result expression and the exclusion counts expression."""

    persons: ir.Table
    exclusions: ir.Table


def _memtable(columns: dict[str, list[Any]], schema: dict[str, str]) -> ir.Table:
    import pyarrow as pa  # type: ignore[import-untyped]

    types = {"int64": pa.int64(), "string": pa.string(), "float64": pa.float64(),
             "boolean": pa.bool_(), "int32": pa.int32()}
    table = pa.table({k: pa.array(v, type=types[schema[k]]) for k, v in columns.items()})
    return ibis.memtable(table)


def _days(end: ir.Value, start: ir.Value) -> ir.IntegerValue:
    return end.delta(start, unit="day")


def _add_days(d: ir.Value, n: int | ir.Value) -> ir.DateValue:
    if isinstance(n, int):
        return d + ibis.interval(days=n)
    return d + n.as_interval("D")


def _add_months(d: ir.Value, whole: int) -> ir.DateValue:
    """Whole calendar months, clamped to the month's last day (as `timeline.add_months`)."""
    return d + ibis.interval(months=whole) if whole else d


def drug_map_table(concepts: Concepts) -> ir.Table:
    """drug_concept_id -> formulary agent (one row per agent; `agent_index` is the agent's place
    in the name order, a compact sort key)."""
    names = agent_names(concepts)
    index = {name: i for i, name in enumerate(names)}
    rows: dict[str, list[Any]] = {"drug_concept_id": [], "agent": [], "agent_index": [],
                                  "ingredient_concept_id": [], "is_ad": []}
    for cid, agents in concepts.drugs.items():
        for dc in agents:
            rows["drug_concept_id"].append(cid)
            rows["agent"].append(dc.agent)
            rows["agent_index"].append(index[dc.agent])
            rows["ingredient_concept_id"].append(dc.ingredient_concept_id)
            rows["is_ad"].append(dc.role == "antidepressant")
    return _memtable(rows, {"drug_concept_id": "int64", "agent": "string",
                            "agent_index": "int32", "ingredient_concept_id": "int64",
                            "is_ad": "boolean"})


def drug_rows(tables: dict[str, ir.Table], concepts: Concepts, drug_map: ir.Table,
              as_of: date, rules: Any, day_numbers: bool = False) -> ir.Table:
    """drug_exposure rows of formulary agents up to the as-of date: period [start, end) clipped
    to the as-of date, daily dose from drug_strength, and the two exclusion marks. With
    `day_numbers`, start and end are whole days since 1970-01-01 (integer arithmetic, which the
    single-machine scan reads faster than dates)."""
    asof = ibis.date(as_of.isoformat())
    de = tables["drug_exposure"]
    de = de.filter(de.drug_exposure_start_date.notnull() & de.drug_concept_id.notnull()
                   & (de.drug_exposure_start_date <= asof))
    rx = de.inner_join(drug_map, "drug_concept_id")
    bad_supply = rx.days_supply.notnull() & (rx.days_supply < 0)
    bad_end = ~bad_supply & rx.drug_exposure_end_date.notnull() & (
        rx.drug_exposure_end_date < rx.drug_exposure_start_date)
    one = 1 if rules.end_date_inclusive else 0
    if day_numbers:
        start: Any = rx.drug_exposure_start_date.epoch_days()
        end_x = ibis.coalesce(rx.drug_exposure_end_date.epoch_days() + one,
                              start + rx.days_supply, start + 1)
        end = ibis.least(end_x, (as_of - date(1970, 1, 1)).days).cast("int32")
        start = start.cast("int32")
    else:
        start = rx.drug_exposure_start_date
        from_end = _add_days(rx.drug_exposure_end_date, one) if one \
            else rx.drug_exposure_end_date
        end = ibis.least(ibis.coalesce(from_end, _add_days(start, rx.days_supply),
                                       _add_days(start, 1)), asof)
    rx = rx.mutate(start=start, end=end, bad_supply=bad_supply, bad_end=bad_end)
    if "drug_strength" in tables:
        ds = tables["drug_strength"]
        units = _memtable({"amount_unit_concept_id": list(concepts.unit_factor),
                           "factor": list(concepts.unit_factor.values())},
                          {"amount_unit_concept_id": "int64", "factor": "float64"})
        st = ds.filter(ds.amount_value.notnull()).inner_join(units, "amount_unit_concept_id")
        st = st.group_by(["drug_concept_id", "ingredient_concept_id"]).aggregate(
            mg=(st.amount_value * st.factor).max())
        rx = rx.left_join(st, ["drug_concept_id", "ingredient_concept_id"]).drop(
            "drug_concept_id_right", "ingredient_concept_id_right")
        # a quantity of 0 is unknown (ETLs write 0 for "not recorded"): `unit_dose`
        dose_ok = (rx.quantity.notnull() & rx.days_supply.notnull() & (rx.days_supply > 0)
                   & (rx.quantity > 0) & ~rx.quantity.isnan() & rx.mg.notnull())
        rx = rx.mutate(dose=ibis.ifelse(
            dose_ok, rx.mg * rx.quantity / rx.days_supply.cast("float64"), ibis.null("float64")))
    else:
        rx = rx.mutate(dose=ibis.null("float64"))
    return rx.select("person_id", "drug_exposure_id", "agent", "agent_index", "is_ad", "start",
                     "end", "dose", "bad_supply", "bad_end")


def diagnosis_rows(tables: dict[str, ir.Table], concepts: Concepts, name: str,
                   as_of: date) -> ir.Table:
    """person_id and date `d` of the diagnoses in a concept set, up to the as-of date."""
    co = tables["condition_occurrence"]
    ids = sorted(concepts.sets.get(name, set()))
    keep = co.condition_start_date.notnull() & (co.condition_start_date <= ibis.date(
        as_of.isoformat()))
    keep &= co.condition_concept_id.isin(ids) if ids else ibis.literal(False)
    sub = co.filter(keep)
    return sub.select("person_id", d=sub.condition_start_date)


def phq9_rows(tables: dict[str, ir.Table], concepts: Concepts, as_of: date,
              policy: Policy) -> ir.Table | None:
    """PHQ-9 totals up to the as-of date (out-of-range values included: callers count and drop
    them), or None when the policy or the database has no PHQ-9."""
    if "observation" not in tables or not concepts.sets.get("phq9_total") \
            or Scale.phq9 not in policy.outcome_scale_priority:
        return None
    ob = tables["observation"]
    ob = ob.filter(ob.observation_concept_id.isin(sorted(concepts.sets["phq9_total"]))
                   & ob.observation_date.notnull()
                   & (ob.observation_date <= ibis.date(as_of.isoformat()))
                   & ob.value_as_number.notnull())
    return ob.select("person_id", r_date=ob.observation_date, r_id=ob.observation_id,
                     r_value=ob.value_as_number)


def procedure_rows(tables: dict[str, ir.Table], concepts: Concepts, name: str,
                   as_of: date) -> ir.Table | None:
    """person_id and date `s` of the procedures in a concept set (ect, rtms) up to the as-of
    date, or None when the database or the concept set has none."""
    ids = sorted(concepts.sets.get(name, set()))
    if "procedure_occurrence" not in tables or not ids:
        return None
    po = tables["procedure_occurrence"]
    po = po.filter(po.procedure_concept_id.isin(ids) & po.procedure_date.notnull()
                   & (po.procedure_date <= ibis.date(as_of.isoformat())))
    return po.select("person_id", s=po.procedure_date)


def _islands(t: ir.Table, group: list[str], order: list[str], start: str, end: str,
             gap: int, strict_gt: bool = True) -> ir.Table:
    """Number islands: a row opens a new one when it starts more than `gap` days after every
    earlier row of its group has ended (the running maximum of the previous ends). `order` must
    be a total order within the group: the two window passes may break ties differently."""
    w = ibis.window(group_by=group, order_by=order, rows=(None, -1))
    prev = t[end].max().over(w)
    t = t.mutate(_prev_end=prev)
    new = t._prev_end.isnull() | (_days(t[start], t._prev_end) > gap)
    if not strict_gt:
        new = t._prev_end.isnull() | (t[start] > t._prev_end)
    t = t.mutate(_new=new.cast("int32"))
    w2 = ibis.window(group_by=group, order_by=order, rows=(None, 0))
    return t.mutate(island=t._new.sum().over(w2)).drop("_prev_end", "_new")


def build_plan(
    source: OmopSource,
    concepts: Concepts,
    as_of: date,
    policy: Policy,
    spec: OmopSpec | None = None,
    knowledge: Knowledge | None = None,
    materialize: bool | None = None,
) -> CohortPlan:
    """The whole cohort's staging as Ibis expressions. With `materialize`, the intermediate
    tables used several times (drug rows, antidepressant rows, trials, current episodes,
    readings) are computed once (`Table.cache()`: a temporary table on DuckDB and PostgreSQL, a
    cached DataFrame on Spark); without it, nothing runs here. Default: on DuckDB and PostgreSQL
    (PostgreSQL otherwise recomputes them inside every join that uses them: docs/cohort.md);
    not on Spark (ibis 12's PySpark cache does not see the small lookup tables registered as
    memtables)."""
    if materialize is None:
        materialize = getattr(source.con, "name", "") in ("duckdb", "postgres")

    def keep(t: ir.Table) -> ir.Table:
        return t.cache() if materialize else t

    check_policy(policy)
    spec = spec or load_omop_spec()
    k = knowledge or load_knowledge()
    rules = spec.rules
    tables = source.tables
    asof = ibis.date(as_of.isoformat())
    duration_only = policy.missing_dose is MissingDose.duration_only

    # ---------------------------------------------------------------- drug rows
    drug_map = drug_map_table(concepts)
    agents = _memtable(agent_columns(k, policy), {"agent": "string", "mechanism": "string",
                                                  "cls": "string", "min_mg": "float64"})
    tr = k.models.thase_rush
    cls_tca, cls_maoi = class_of(k, policy, tr.stage_3_mechanism), class_of(
        k, policy, tr.stage_4_mechanism)
    rx = drug_rows(tables, concepts, drug_map, as_of, rules)
    exclusions = [
        rx.filter(rx.bad_supply).aggregate(n=lambda t: t.count()).mutate(
            reason=ibis.literal(BAD_SUPPLY)),
        rx.filter(rx.bad_end).aggregate(n=lambda t: t.count()).mutate(
            reason=ibis.literal(BAD_END)),
    ]
    rx = keep(rx.filter(~(rx.bad_supply | rx.bad_end)).select(
        "person_id", "drug_exposure_id", "agent", "is_ad", "start", "end", "dose"))
    ad = rx.filter(rx.is_ad).drop("is_ad")
    aug = rx.filter(~rx.is_ad).drop("is_ad")

    # ---------------------------------------------------------------- conditions
    def dx(name: str) -> ir.Table:
        return diagnosis_rows(tables, concepts, name, as_of)

    mdd = dx("mdd")
    flags = None
    for name in ("bipolar", "psychosis"):
        f = dx(name).select("person_id").distinct().mutate(**{name: ibis.literal(True)})
        flags = f if flags is None else flags.outer_join(f, "person_id").mutate(
            person_id=ibis.coalesce(ibis._.person_id, ibis._.person_id_right)).drop(
            "person_id_right")

    # ---------------------------------------------------------------- episodes
    events = ad.select("person_id", s=ad.start, e=ad.end)
    if rules.mdd_diagnosis_opens_episode:
        events = events.union(mdd.select("person_id", s=mdd.d, e=mdd.d), distinct=False)
    # (s, e) is not a total order, but rows tying on both can only move a row between two
    # islands whose boundary it sits on, which changes neither the last island's onset and end
    # nor the number of islands: the only things used below)
    events = _islands(events, ["person_id"], ["s", "e"], "s", "e", rules.episode_washout_days)
    episodes = events.group_by(["person_id", "island"]).aggregate(
        onset=events.s.min(), last=events.e.max())
    n_ep = episodes.group_by("person_id").aggregate(n_episodes=episodes.island.max())
    cur = episodes.inner_join(n_ep, "person_id").filter(
        lambda t: t.island == t.n_episodes)
    cur = cur.mutate(ended=_days(asof, cur["last"]) > rules.episode_washout_days)
    cur = cur.mutate(ep_end=ibis.ifelse(cur.ended, cur["last"], asof))
    cur = cur.select("person_id", "n_episodes", "onset", "ep_end")
    if rules.require_mdd_diagnosis:
        cur = cur.semi_join(mdd, "person_id")
    from trdstage.cohort.row_audit import plausible_persons_ibis

    person = plausible_persons_ibis(tables["person"], as_of, rules)
    cur = keep(cur.inner_join(person.select("person_id", "gender_concept_id", "year_of_birth"),
                              "person_id"))

    # ---------------------------------------------------------------- PHQ-9 readings
    readings = phq9_rows(tables, concepts, as_of, policy)
    if readings is not None:
        # (NaN is out of range: neither comparison is true)
        out_of_range = ~((readings.r_value >= 0) & (readings.r_value <= k.scales["PHQ-9"].max))
        exclusions.append(readings.filter(out_of_range).aggregate(
            n=lambda t: t.count()).mutate(reason=ibis.literal(PHQ9_OUT_OF_RANGE)))
        readings = keep(readings.filter(~out_of_range))

    def rated(periods: ir.Table, keys: list[str]) -> ir.Table:
        """keys + 'rated' outcome (or null) from PHQ-9 baseline and endpoint readings."""
        if readings is None:
            return periods.select(*keys).mutate(rated=ibis.null("string"))
        cols = list(dict.fromkeys([*keys, "person_id"]))
        p = periods.select(*cols, p_start=periods.start, p_end=periods.end)
        j = p.inner_join(readings, "person_id")
        base = j.filter((j.r_date >= _add_days(j.p_start, -policy.baseline_window_days))
                        & (j.r_date <= j.p_start))
        endp = j.filter((j.r_date > j.p_start) & (j.r_date <= j.p_end))

        def last(t: ir.Table, name: str) -> ir.Table:
            w = ibis.window(group_by=keys, order_by=[ibis.desc("r_date"), ibis.desc("r_id")])
            t = t.mutate(_rn=ibis.row_number().over(w))
            return t.filter(t._rn == 0).select(*keys, **{name: t.r_value})

        b, e = last(base, "b"), last(endp, "e")
        both = b.inner_join(e, keys).filter(lambda t: t.b > 0)
        reduction = (both.b - both.e) / both.b * 100
        outcome = ibis.cases(
            (reduction >= policy.response_min_reduction_pct, "response"),
            (reduction >= policy.partial_response_min_reduction_pct, "partial_response"),
            else_="non_response")
        return both.select(*keys, rated=outcome)

    # ---------------------------------------------------------------- trials
    ad = _islands(ad, ["person_id", "agent"], ["start", "drug_exposure_id"], "start", "end",
                  policy.same_agent_gap_days)
    ad = keep(ad.rename(trial="island").inner_join(agents, "agent"))
    keys = ["person_id", "agent", "trial"]
    min_days = round(policy.min_adequate_weeks * 7)
    if duration_only:
        qualifies = ad.min_mg.isnull() | ad.dose.isnull() | (ad.dose >= ad.min_mg)
    else:
        qualifies = ad.min_mg.notnull() & ad.dose.notnull() & (ad.dose >= ad.min_mg)
    q = ad.filter(qualifies)
    q = _islands(q, keys, ["start", "drug_exposure_id"], "start", "end", 0, strict_gt=False)
    q = q.group_by([*keys, "island"]).aggregate(days=_days(q.end.max(), q.start.min()))
    adequate_days = q.group_by(keys).aggregate(adequate_days=q.days.sum())
    # dose raised above the minimum (between successive recorded doses)
    dd = ad.filter(ad.dose.notnull() & ad.min_mg.notnull())
    wd = ibis.window(group_by=keys, order_by=["start", "drug_exposure_id"])
    dd = dd.mutate(prev=dd.dose.lag().over(wd))
    raised = dd.filter((dd.dose > dd.prev) & (dd.dose > dd.min_mg)).select(*keys).distinct()
    trials = ad.group_by([*keys, "mechanism", "cls", "min_mg"]).aggregate(
        start=ad.start.min(), end=ad.end.max(),
        dose_missing=(ad.dose.isnull().cast("int32")).max())
    trials = trials.left_join(adequate_days, keys).drop(
        *[f"{c}_right" for c in keys]).mutate(
        adequate_days=ibis.coalesce(ibis._.adequate_days, 0))
    trials = trials.left_join(raised.mutate(dose_optimised=ibis.literal(True)), keys).drop(
        *[f"{c}_right" for c in keys]).mutate(
        dose_optimised=ibis.coalesce(ibis._.dose_optimised, False))
    if duration_only:
        adequate = trials.adequate_days >= min_days
    else:
        adequate = trials.min_mg.notnull() & (trials.adequate_days >= min_days)
    trials = keep(trials.mutate(
        adequate=adequate,
        duration_only=ibis.literal(duration_only) & (
            trials.min_mg.isnull() | (trials.dose_missing == 1))))

    # augmenter regimens: rows of one augmenter joined as the adapter and engine.assess join them
    aug = _islands(aug, ["person_id", "agent"], ["start", "drug_exposure_id"], "start", "end",
                   augmenter_gap_days(rules, policy))
    aug_reg = keep(aug.group_by(["person_id", "agent", "island"]).aggregate(
        start=aug.start.min(), end=aug.end.max()))

    # outcome: PHQ-9, else the switch convention
    trials = trials.left_join(rated(trials, keys), keys).drop(*[f"{c}_right" for c in keys])
    others = trials.select("person_id", o_agent=trials.agent, o_start=trials.start,
                           o_end=trials.end, o_aug=ibis.literal(False)).union(
        aug_reg.select("person_id", o_agent=aug_reg.agent, o_start=aug_reg.start,
                       o_end=aug_reg.end, o_aug=ibis.literal(True)), distinct=False)
    pairs = trials.select(*keys, "start", "end").inner_join(others, "person_id")
    pairs = pairs.filter(pairs.o_aug | (pairs.o_agent != pairs.agent))
    if policy.failure_from_switch_days is not None:
        limit = _add_days(pairs.end, policy.failure_from_switch_days)
        switched = pairs.filter((pairs.o_start > pairs.start) & (pairs.o_start <= limit)).select(
            *keys).distinct().mutate(switched=ibis.literal(True))
        trials = trials.left_join(switched, keys).drop(*[f"{c}_right" for c in keys])
    else:
        trials = trials.mutate(switched=ibis.null("boolean"))
    overlap = _days(ibis.least(pairs.end, pairs.o_end), ibis.greatest(pairs.start, pairs.o_start))
    concurrent = pairs.filter(overlap >= policy.concurrent_min_days).select(
        *keys).distinct().mutate(concurrent=ibis.literal(True))
    trials = trials.left_join(concurrent, keys).drop(*[f"{c}_right" for c in keys])
    outcome = ibis.coalesce(
        trials.rated,
        ibis.ifelse(trials.adequate & trials.switched.fill_null(False), "non_response",
                    ibis.null("string")),
        ibis.literal("unknown"))
    failure = [o.value for o in policy.failure_outcomes]
    trials = trials.mutate(outcome=outcome, concurrent=trials.concurrent.fill_null(False))
    trials = trials.mutate(failed=trials.adequate & trials.outcome.isin(failure))

    # scope: the current episode
    trials = trials.inner_join(cur.select("person_id", "onset"), "person_id")
    in_episode = trials.start >= trials.onset
    trials = keep(trials.mutate(
        in_episode=in_episode,
        in_scope=in_episode if policy.scope is Scope.current_episode else ibis.literal(True)))

    # ---------------------------------------------------------------- ECT and rTMS courses
    def courses(name: str, gap: int) -> ir.Table | None:
        po = procedure_rows(tables, concepts, name, as_of)
        if po is None:
            return None
        # one row per person and day first: sessions on the same day tie on every order key,
        # and two window passes may break such ties differently
        po = po.group_by(["person_id", "s"]).aggregate(n=ibis._.count())
        po = po.mutate(e=po.s)
        po = _islands(po, ["person_id"], ["s"], "s", "e", gap)
        return po.group_by(["person_id", "island"]).aggregate(
            start=po.s.min(), end=po.s.max(), sessions=po.n.sum())

    ect = courses("ect", rules.ect_course_gap_days)
    ect_person = None
    if ect is not None:
        ect = ect.left_join(rated(ect, ["person_id", "island"]), ["person_id", "island"]).drop(
            "person_id_right", "island_right")
        ect = ect.inner_join(cur.select("person_id", "onset"), "person_id")
        ect = ect.mutate(
            in_scope=(ect.start >= ect.onset) if policy.scope is Scope.current_episode
            else ibis.literal(True),
            failed=ect.rated.isin(failure) & (ect.sessions >= policy.ect_min_sessions))
        ect_person = ect.group_by("person_id").aggregate(
            ect_courses=ect.in_scope.cast("int32").sum(),
            failed_ect=(ect.in_scope & ect.failed).cast("int32").sum())
    rtms = courses("rtms", rules.rtms_course_gap_days)
    rtms_person = None
    if rtms is not None:
        rtms = rtms.inner_join(cur.select("person_id", "onset"), "person_id")
        if policy.scope is Scope.current_episode:
            rtms = rtms.filter(rtms.start >= rtms.onset)
        rtms_person = rtms.group_by("person_id").aggregate(rtms_courses=ibis._.count())

    # ---------------------------------------------------------------- severity
    sev = None
    if readings is not None and rules.severity_from_phq9:
        r = readings.inner_join(cur.select("person_id", "onset"), "person_id")
        r = r.filter(r.r_date >= _add_days(r.onset, -rules.severity_window_days))
        w = ibis.window(group_by="person_id", order_by=["r_date", "r_id"])
        r = r.mutate(_rn=ibis.row_number().over(w))
        r = r.filter(r._rn == 0)
        bands = []
        for band in k.scales["PHQ-9"].bands:
            target = rules.severity_from_phq9.get(band.label)
            bands.append(((r.r_value >= band.low) & (r.r_value <= band.high),
                          ibis.literal(target.value if target else None, type="string")))
        sev = r.select("person_id", severity=ibis.cases(*bands, else_=ibis.null("string")))

    # ---------------------------------------------------------------- per person
    persons = _person_level(trials, cur, ect_person, rtms_person, sev, flags, policy, k,
                            cls_tca, cls_maoi, as_of, spec.gender)
    excl = exclusions[0]
    for e in exclusions[1:]:
        excl = excl.union(e, distinct=False)
    return CohortPlan(persons=persons, exclusions=excl)


def _person_level(
    trials: ir.Table,
    cur: ir.Table,
    ect_person: ir.Table | None,
    rtms_person: ir.Table | None,
    sev: ir.Table | None,
    flags: ir.Table | None,
    policy: Policy,
    k: Knowledge,
    cls_tca: str,
    cls_maoi: str,
    as_of: date,
    gender: list[GenderMap],
) -> ir.Table:
    models = k.models
    pts = models.mgh.points
    tr = models.thase_rush
    mgh_long = min_days_over_weeks(policy.mgh_duration_optimisation_weeks)
    f = trials.filter(trials.in_scope & trials.failed)
    mgh_points = (pts["failed_trial"].value
                  + ibis.ifelse(f.dose_optimised, pts["dose_optimisation"].value, 0.0)
                  + ibis.ifelse(f.adequate_days >= mgh_long, pts["duration_optimisation"].value,
                                0.0)
                  + ibis.ifelse(f.concurrent, pts["augmentation_or_combination"].value, 0.0))
    per = f.group_by("person_id").aggregate(
        failed_trials=f.count(),
        classes=f.cls.nunique(),
        failed_agents=f.agent.nunique(),
        n_tca=(f.mechanism == tr.stage_3_mechanism).cast("int32").sum(),
        n_maoi=(f.mechanism == tr.stage_4_mechanism).cast("int32").sum(),
        n_cls_tca=(f.cls == cls_tca).cast("int32").sum(),
        n_cls_maoi=(f.cls == cls_maoi).cast("int32").sum(),
        mgh_trials=mgh_points.sum(),
        first_start=f.start.min(),
        last_end=f.end.max(),
    )
    scoped = trials.filter(trials.in_scope)
    sc = scoped.group_by("person_id").aggregate(
        trials=scoped.count(),
        adequate_trials=scoped.adequate.cast("int32").sum(),
        duration_only_trials=scoped.duration_only.cast("int32").sum(),
        aug_used=scoped.concurrent.cast("int32").max(),
    )
    # regulatory: distinct agents failed in the episode, first_met = the needed-th earliest
    # end among each agent's earliest failed end
    needed = policy.regulatory_min_failed_agents
    rf = trials.filter(trials.in_episode & trials.failed)
    rf = rf.group_by(["person_id", "agent"]).aggregate(first_end=rf.end.min())
    w = ibis.window(group_by="person_id", order_by=["first_end", "agent"])
    rf = rf.mutate(_rn=ibis.row_number().over(w))
    reg = rf.group_by("person_id").aggregate(
        reg_agents=rf.count(),
        regulatory_first_met=rf.first_end.max(where=rf._rn == needed - 1))

    p = cur
    for extra in (per, sc, reg, ect_person, rtms_person, sev, flags):
        if extra is not None:
            p = p.left_join(extra, "person_id").drop("person_id_right")
    zero = ibis.literal(0)
    p = p.mutate(
        failed_trials=ibis.coalesce(p.failed_trials, zero),
        classes=ibis.coalesce(p.classes, zero),
        failed_agents=ibis.coalesce(p.failed_agents, zero),
        n_tca=ibis.coalesce(p.n_tca, zero), n_maoi=ibis.coalesce(p.n_maoi, zero),
        n_cls_tca=ibis.coalesce(p.n_cls_tca, zero), n_cls_maoi=ibis.coalesce(p.n_cls_maoi, zero),
        mgh_trials=ibis.coalesce(p.mgh_trials, 0.0),
        trials=ibis.coalesce(p.trials, zero),
        adequate_trials=ibis.coalesce(p.adequate_trials, zero),
        duration_only_trials=ibis.coalesce(p.duration_only_trials, zero),
        aug_used=ibis.coalesce(p.aug_used, zero) > 0,
        reg_agents=ibis.coalesce(p.reg_agents, zero),
        ect_courses=ibis.coalesce(p.ect_courses, zero) if ect_person is not None else zero,
        failed_ect=ibis.coalesce(p.failed_ect, zero) if ect_person is not None else zero,
        rtms_courses=ibis.coalesce(p.rtms_courses, zero) if rtms_person is not None else zero,
        severity=p.severity if sev is not None else ibis.null("string"),
        bipolar=ibis.coalesce(p.bipolar, False) if flags is not None else ibis.literal(False),
        psychosis=ibis.coalesce(p.psychosis, False) if flags is not None
        else ibis.literal(False),
    )
    # Thase & Rush (any order): see quirks.py
    drop_tca = ibis.ifelse(p.n_cls_tca == 1, 1, 0)
    drop_maoi = ibis.ifelse(p.n_cls_maoi == 1, 1, 0)
    stage3 = (p.n_tca >= 1) & (p.classes - drop_tca >= 2)
    stage4 = stage3 & (p.n_maoi >= 1) & (p.classes - drop_tca - drop_maoi >= 2)
    stage = ibis.cases((p.failed_trials == 0, 0), (p.classes < 2, 1), (~stage3, 2),
                       (~stage4, 3), (p.failed_ect == 0, 4), else_=5)
    # MGH
    mgh = p.mgh_trials + p.failed_ect.cast("float64") * pts["failed_ect_course"].value
    # European
    eu = models.european
    cat = ibis.cases(*[(p.failed_trials == step.failed, step.category)
                       for step in eu.by_failed_trials[:-1]],
                     else_=eu.by_failed_trials[-1].category)
    whole, extra = months_split(policy.european_crd_months)
    crd = (p.failed_trials >= eu.crd_min_failed_trials) & (
        _days(p.last_end, _add_months(p.first_start, whole)) >= extra)
    category = ibis.ifelse(crd, "CRD", cat)
    # Maudsley
    ms = models.maudsley
    dur: list[tuple[Any, int]] = []
    dur_else = 0
    for band in ms.duration_months:
        if band.max_months is None:
            dur_else = band.points
            break
        w_, x_ = months_split(band.max_months)
        dur.append((_days(p.ep_end, _add_months(p.onset, w_)) <= x_, band.points))
    dur_pts = ibis.cases(*dur, else_=dur_else)
    sev_pts = ibis.cases(*[(p.severity == key, value) for key, value in ms.severity.items()
                           if key != "severe_psychotic"], else_=ibis.null("int64"))
    n = p.failed_agents
    lvl: list[tuple[Any, int]] = []
    lvl_else = 0
    for cb in ms.failed_antidepressants:
        if cb.max is None:
            lvl_else = cb.points
            break
        lvl.append((n <= cb.max, cb.points))
    lvl_pts = ibis.cases(*lvl, else_=lvl_else)
    score = (dur_pts + sev_pts + lvl_pts
             + ibis.ifelse(p.aug_used, ms.augmentation_points, 0)
             + ibis.ifelse(p.ect_courses > 0, ms.ect_points, 0))
    applicable = (n > 0) & p.severity.notnull()
    msm = ibis.ifelse(applicable, score, ibis.null("int64"))
    msm_band = ibis.cases(*[((msm >= b.low) & (msm <= b.high), b.label) for b in ms.bands],
                          else_=ibis.null("string"))
    sex = ibis.cases(*[(p.gender_concept_id == g.concept_id, g.sex.value)
                       for g in gender], else_="unknown")
    return p.select(
        "person_id",
        "n_episodes",
        sex=sex,
        age=(as_of.year - p.year_of_birth).cast("int32"),
        episode_onset=p.onset,
        thase_rush_stage=stage.cast("int32"),
        mgh_score=mgh.cast("float64"),
        maudsley_score=msm.cast("int32"),
        maudsley_band=msm_band,
        european_category=category,
        regulatory_met=p.reg_agents >= needed,
        regulatory_first_met=p.regulatory_first_met,
        failed_trials=p.failed_trials.cast("int32"),
        trials=p.trials.cast("int32"),
        adequate_trials=p.adequate_trials.cast("int32"),
        duration_only_trials=p.duration_only_trials.cast("int32"),
        ect_courses=p.ect_courses.cast("int32"),
        rtms_courses=p.rtms_courses.cast("int32"),
        severity=p.severity,
        bipolar=p.bipolar,
        psychosis=p.psychosis,
    )


__all__ = ["CohortPlan", "build_plan", "check_policy"]
