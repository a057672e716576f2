"""A synthetic OMOP CDM 5.4 database: deterministic from a seed, vectorised with numpy.

Shapes (the numbers are synthetic-data settings, not clinical facts, except the STAR*D remission
rates per level, source `star-d-remission-levels`):

- 75 % people with depression: an MDD diagnosis, then treatment levels 1-4 after STAR*D: level 1
  an SSRI; level 2 a switch (bupropion, sertraline, venlafaxine) or an augmentation
  (aripiprazole) or a combination (bupropion added); level 3 a switch (mirtazapine,
  nortriptyline) or an augmentation (quetiapine); level 4 tranylcypromine or venlafaxine plus
  mirtazapine. Remission at each level with the STAR*D rates (36.8, 30.6, 13.7, 13.0 %); a
  remitter continues the drug for a few months and stops; others may drop out; after level 4
  some have ECT or rTMS. 30-day fills with titration, late refills (short gaps, some long enough
  to split a trial), early discontinuation, fills without quantity (dose unknown), PHQ-9 for
  some, a recurrence for some remitters;
- 10 % people on a low-dose tricyclic or trazodone without any depression diagnosis, 4 % with
  bipolar disorder, 11 % with no relevant rows: distractors.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from trdstage.cohort.omop_io import to_arrow
from trdstage.cohort.vocab import vocabulary, vocabulary_tables
from trdstage.knowledge import load_knowledge
from trdstage.knowledge.omop_schema import load_omop_spec

DEMO_AS_OF = date(2026, 1, 1)
EPOCH = date(1970, 1, 1)

# Level menus: (action, agent, added agent) with probabilities. Synthetic shapes.
LEVELS: list[list[tuple[str, str, str | None, float]]] = [
    [("switch", "citalopram", None, 0.6), ("switch", "sertraline", None, 0.2),
     ("switch", "escitalopram", None, 0.1), ("switch", "fluoxetine", None, 0.1)],
    [("switch", "bupropion", None, 0.2), ("switch", "sertraline", None, 0.2),
     ("switch", "venlafaxine", None, 0.2), ("augment", "", "aripiprazole", 0.2),
     ("combine", "", "bupropion", 0.2)],
    [("switch", "mirtazapine", None, 0.35), ("switch", "nortriptyline", None, 0.35),
     ("augment", "", "quetiapine", 0.3)],
    [("switch", "tranylcypromine", None, 0.5), ("switch_combine", "venlafaxine", "mirtazapine",
                                                 0.5)],
]


def _days(d: date) -> int:
    return (d - EPOCH).days


class _Sink:
    def __init__(self) -> None:
        self.cols: dict[str, dict[str, list[np.ndarray[Any, Any]]]] = defaultdict(
            lambda: defaultdict(list))

    def add(self, table: str, **cols: Any) -> None:
        n = max(len(v) for v in cols.values() if isinstance(v, np.ndarray))
        for k, v in cols.items():
            arr = v if isinstance(v, np.ndarray) else np.full(n, v)
            self.cols[table][k].append(arr)

    def table(self, name: str) -> dict[str, np.ndarray[Any, Any]]:
        return {k: np.concatenate(v) for k, v in self.cols[name].items()}


def synth_tables(persons: int, seed: int = 0, as_of: date = DEMO_AS_OF) -> dict[str, pa.Table]:
    """Every table of the synthetic database, as Arrow tables."""
    k = load_knowledge()
    vocab = vocabulary()
    rng = np.random.default_rng(seed)
    sink = _Sink()
    n = persons
    pid = np.arange(1, n + 1, dtype=np.int64)
    asof = _days(as_of)
    female, male = (next(g.concept_id for g in load_omop_spec().gender if g.sex.value == s)
                    for s in ("female", "male"))
    gender = np.where(rng.random(n) < 0.62, female, male)
    yob = rng.integers(1940, 2006, n)
    sink.add("person", person_id=pid, gender_concept_id=gender, year_of_birth=yob,
             month_of_birth=rng.integers(1, 13, n), day_of_birth=rng.integers(1, 29, n),
             race_concept_id=0, ethnicity_concept_id=0)
    kind = rng.choice(4, n, p=[0.75, 0.10, 0.04, 0.11])  # depressed, AD no MDD, bipolar, none
    index = _days(date(2015, 1, 1)) + rng.integers(0, _days(date(2025, 6, 30))
                                                     - _days(date(2015, 1, 1)), n)
    sink.add("observation_period", observation_period_id=pid, person_id=pid,
             observation_period_start_date=index - 365 - rng.integers(0, 2000, n),
             observation_period_end_date=np.full(n, asof), period_type_concept_id=0)
    spec = load_omop_spec()
    remission = spec.synthetic.star_d_remission
    mdd_ids = spec.concept_sets["mdd"].concepts
    product = {a: vocab.products[a][0] for a in vocab.products}
    minimum = {a: (k.antidepressants[a].min_adequate_mg if a in k.antidepressants
                   else k.augmenters[a].target_min_mg) or 10.0 for a in vocab.products}

    def fills(who: np.ndarray[Any, Any], agent: np.ndarray[Any, Any],
              start: np.ndarray[Any, Any], dose: np.ndarray[Any, Any]) -> None:
        """30-day fills of `agent` (object array of names) for persons `who`."""
        missing = rng.random(len(who)) < 0.08
        for a in np.unique(agent):
            m = agent == a
            p = product[str(a)]
            qty = dose[m] * 30 / p.strength_mg
            sink.add("drug_exposure", person_id=pid[who[m]], drug_concept_id=p.concept_id,
                     start=start[m], days=np.full(m.sum(), 30),
                     quantity=np.where(missing[m], np.nan, qty))

    def phq(who: np.ndarray[Any, Any], when: np.ndarray[Any, Any],
            value: np.ndarray[Any, Any]) -> None:
        sink.add("observation", person_id=pid[who], observation_date=when,
                 value_as_number=np.clip(np.round(value), 0, 27).astype(float))

    def dx(who: np.ndarray[Any, Any], concept: Any, when: np.ndarray[Any, Any]) -> None:
        sink.add("condition_occurrence", person_id=pid[who], condition_concept_id=concept,
                 condition_start_date=when)

    # ---------------------------------------------------------------- depression pathways
    dep = np.flatnonzero((kind == 0) | (kind == 2))
    dx(dep, rng.choice(mdd_ids[:2], len(dep), p=[0.7, 0.3]), index[dep])
    bip = np.flatnonzero(kind == 2)
    dx(bip, spec.concept_sets["bipolar"].concepts[0], index[bip] + rng.integers(0, 400, len(bip)))
    has_phq = rng.random(n) < 0.4
    t = index[dep] + rng.integers(0, 15, len(dep))
    active = np.ones(len(dep), dtype=bool)
    prev_agent = np.full(len(dep), "", dtype=object)
    prev_dose = np.zeros(len(dep))
    remitted_at = np.full(len(dep), -1)
    for level, menu in enumerate(LEVELS):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        choice = rng.choice(len(menu), len(idx), p=[m[3] for m in menu])
        action = np.array([menu[c][0] for c in choice], dtype=object)
        if level == 0:
            action[:] = "switch"
        main = np.array([menu[c][1] or "" for c in choice], dtype=object)
        added = np.array([menu[c][2] or "" for c in choice], dtype=object)
        keep = np.isin(action, ["augment", "combine"])
        main = np.where(keep, prev_agent[idx], main)
        main = np.where(main == "", "citalopram", main)
        mins = np.array([minimum[a] for a in main])
        dose = np.where(keep, prev_dose[idx], np.where(rng.random(len(idx)) < 0.5, mins / 2,
                                                       mins))
        n_fills = np.where(rng.random(len(idx)) < 0.12, 1, rng.integers(2, 6, len(idx)))
        titrate = rng.random(len(idx)) < 0.35
        start = t[idx].copy()
        cur = start.copy()
        for j in range(int(n_fills.max())):
            on = n_fills > j
            if j >= 1:
                dose = np.where(on & ~keep & (dose < mins), mins, dose)
            if j >= 2:
                dose = np.where(on & ~keep & titrate & (dose <= mins), mins * 1.5, dose)
            who = dep[idx[on]]
            fills(who, main[on], cur[on], dose[on])
            with_added = on & (added != "")
            if with_added.any():
                a_mins = np.array([minimum[a] if a else 0.0 for a in added[with_added]])
                fills(dep[idx[with_added]], added[with_added], cur[with_added], a_mins)
            r = rng.random(len(idx))
            delay = np.where(r < 0.8, 0, np.where(r < 0.96, rng.integers(3, 26, len(idx)),
                                                  rng.integers(35, 91, len(idx))))
            cur = np.where(on, cur + 30 + delay, cur)
        end = cur
        remit = rng.random(len(idx)) < remission[level]
        rated = has_phq[dep[idx]]
        base = rng.integers(14, 25, len(idx)).astype(float)
        endpoint = np.where(remit, rng.integers(0, 5, len(idx)),
                            base * (1 - rng.uniform(0, 0.45, len(idx))))
        m = rated & (n_fills >= 2)
        phq(dep[idx[m]], start[m] - rng.integers(0, 8, m.sum()), base[m])
        phq(dep[idx[m]], start[m] + rng.integers(42, 60, m.sum()), endpoint[m])
        # remitters continue a few months, then stop
        rm = np.flatnonzero(remit)
        extra = rng.integers(2, 8, len(rm))
        for j in range(int(extra.max()) if len(rm) else 0):
            on = extra > j
            fills(dep[idx[rm[on]]], main[rm[on]], end[rm[on]] + 30 * j, dose[rm[on]])
        remitted_at[idx[rm]] = end[rm] + 30 * extra
        dropout = ~remit & (rng.random(len(idx)) < 0.2)
        active[idx[remit | dropout]] = False
        prev_agent[idx] = main
        prev_dose[idx] = dose
        t[idx] = end + rng.integers(0, 21, len(idx))
    # after level 4: ECT or rTMS for some
    left = np.flatnonzero(active)
    r = rng.random(len(left))
    ect = left[r < 0.3]
    sessions = rng.integers(4, 13, len(ect))
    for j in range(int(sessions.max()) if len(ect) else 0):
        on = sessions > j
        sink.add("procedure_occurrence", person_id=pid[dep[ect[on]]],
                 procedure_concept_id=spec.concept_sets["ect"].concepts[0],
                 procedure_date=t[ect[on]] + (j * 7) // 3)
    m = has_phq[dep[ect]]
    phq(dep[ect[m]], t[ect[m]] - 2, rng.integers(18, 27, m.sum()).astype(float))
    phq(dep[ect[m]], t[ect[m]] + 28, rng.integers(3, 24, m.sum()).astype(float))
    rtms = left[(r >= 0.3) & (r < 0.4)]
    code = spec.concept_sets["rtms"].codes[1]
    rtms_concept = vocab.procedure_codes[(code.vocabulary, code.code)]
    for j in range(20):
        sink.add("procedure_occurrence", person_id=pid[dep[rtms]],
                 procedure_concept_id=rtms_concept, procedure_date=t[rtms] + (j * 7) // 5)
    # recurrence for some remitters: a new MDD diagnosis and a new level-1 trial
    rec = np.flatnonzero((remitted_at > 0) & (rng.random(len(dep)) < 0.15))
    when = remitted_at[rec] + rng.integers(200, 1200, len(rec))
    dx(dep[rec], mdd_ids[0], when)
    agents = rng.choice(["sertraline", "escitalopram", "venlafaxine"], len(rec)).astype(object)
    n_fills = rng.integers(1, 6, len(rec))
    for j in range(5):
        on = n_fills > j
        fills(dep[rec[on]], agents[on], when[on] + 30 * j,
              np.array([minimum[a] for a in agents[on]]))

    # ---------------------------------------------------------------- distractors
    other = np.flatnonzero(kind == 1)
    agents = rng.choice(["amitriptyline", "trazodone"], len(other)).astype(object)
    n_fills = rng.integers(1, 7, len(other))
    low = np.where(agents == "amitriptyline", 25.0, 50.0)
    for j in range(6):
        on = n_fills > j
        fills(other[on], agents[on], index[other[on]] + 30 * j, low[on])
    for b in (bip,):
        fills(b, np.full(len(b), "quetiapine", dtype=object), index[b] + 20,
              np.full(len(b), 300.0))
    screened = np.flatnonzero((kind == 3) & (rng.random(n) < 0.3))
    phq(screened, index[screened], rng.integers(0, 5, len(screened)).astype(float))

    return _tables(sink, asof)


def _date(a: np.ndarray[Any, Any]) -> pa.Array:
    return pa.array(a.astype(np.int32), type=pa.int32()).cast(pa.date32())


def _tables(sink: _Sink, asof: int) -> dict[str, pa.Table]:
    out: dict[str, pa.Table] = {}
    person = sink.table("person")
    out["person"] = to_arrow("person", person)
    op = sink.table("observation_period")
    op["observation_period_start_date"] = _date(op["observation_period_start_date"])
    op["observation_period_end_date"] = _date(op["observation_period_end_date"])
    out["observation_period"] = to_arrow("observation_period", op)
    de = sink.table("drug_exposure")
    keep = de["start"] <= asof
    de = {k2: v[keep] for k2, v in de.items()}
    order = np.lexsort((de["start"], de["person_id"]))
    de = {k2: v[order] for k2, v in de.items()}
    n = len(de["start"])
    out["drug_exposure"] = to_arrow("drug_exposure", {
        "drug_exposure_id": np.arange(1, n + 1, dtype=np.int64),
        "person_id": de["person_id"], "drug_concept_id": de["drug_concept_id"],
        "drug_exposure_start_date": _date(de["start"]),
        "drug_exposure_end_date": _date(de["start"] + de["days"] - 1),
        "drug_type_concept_id": np.zeros(n, dtype=np.int64),
        "quantity": pa.array(de["quantity"], from_pandas=True),
        "days_supply": de["days"].astype(np.int32)})
    for name, date_col, id_col in (
            ("condition_occurrence", "condition_start_date", "condition_occurrence_id"),
            ("procedure_occurrence", "procedure_date", "procedure_occurrence_id"),
            ("observation", "observation_date", "observation_id")):
        t = sink.table(name)
        keep = t[date_col] <= asof
        t = {k2: v[keep] for k2, v in t.items()}
        order = np.lexsort((t[date_col], t["person_id"]))
        t = {k2: v[order] for k2, v in t.items()}
        m = len(t[date_col])
        t[date_col] = _date(t[date_col])
        t[id_col] = np.arange(1, m + 1, dtype=np.int64)
        type_col = {"condition_occurrence": "condition_type_concept_id",
                    "procedure_occurrence": "procedure_type_concept_id",
                    "observation": "observation_type_concept_id"}[name]
        t[type_col] = np.zeros(m, dtype=np.int64)
        if name == "observation":
            phq9 = load_omop_spec().concept_sets["phq9_total"].concepts[0]
            t["observation_concept_id"] = np.full(m, phq9, dtype=np.int64)
        out[name] = to_arrow(name, t)
    out.update(vocabulary_tables())
    return out


__all__ = ["DEMO_AS_OF", "synth_tables"]
