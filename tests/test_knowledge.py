"""The knowledge data: complete, sourced, and refusing malformed policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from trdstage.knowledge import KnowledgeError, load_knowledge, load_policy, policy_names


def test_formulary_has_at_least_35_antidepressants_with_sourced_minimum_doses() -> None:
    k = load_knowledge()
    dosed = [a for a in k.antidepressants.values() if a.min_adequate_mg is not None]
    assert len(dosed) >= 35
    for a in dosed:
        assert a.sources.get("min_dose") in k.sources, a.name
        assert a.mechanism in k.classes


def test_every_field_group_with_a_value_has_a_source() -> None:
    k = load_knowledge()
    for a in k.antidepressants.values():
        if a.usual_max_mg is not None:
            assert k.source_of(a, "max_dose") in k.sources, a.name
        if a.atc:
            assert k.source_of(a, "atc") in k.sources
    for aug in k.augmenters.values():
        assert k.source_of(aug, "target_dose") in k.sources, aug.name


def test_names_brands_and_aliases_resolve() -> None:
    k = load_knowledge()
    assert k.resolve("Wellbutrin XL").name == "bupropion"  # type: ignore[union-attr]
    assert k.resolve("T3").kind == "augmenter"  # type: ignore[union-attr]
    assert k.resolve("Spravato").kind == "rapid_acting"  # type: ignore[union-attr]
    assert k.resolve("dothiepin").name == "dosulepin"  # type: ignore[union-attr]
    assert k.resolve("aspirin") is None


def test_scales_bands_cover_their_range() -> None:
    for scale in load_knowledge().scales.values():
        assert scale.bands[0].low == scale.min and scale.bands[-1].high == scale.max
        for lo, hi in zip(scale.bands, scale.bands[1:], strict=False):
            assert hi.low == lo.high + 1


def test_bundled_policies_load_with_sources() -> None:
    k = load_knowledge()
    assert {"default", "lifetime", "non-response-only", "literal-sequential",
            "claims"} <= set(policy_names())
    for name in policy_names():
        policy = load_policy(name)
        for setting, key in policy.sources.items():
            assert setting in type(policy).model_fields and key in k.sources


def test_policy_file_with_a_typo_or_unknown_source_fails_clearly(tmp_path: Path) -> None:
    from trdstage.knowledge.loader import DATA
    text = (DATA / "policies" / "default.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(text.replace("min_adequate_weeks:", "min_adequat_weeks:"))
    with pytest.raises(KnowledgeError, match="min_adequat_weeks"):
        load_policy(typo)
    unsourced = tmp_path / "unsourced.yaml"
    unsourced.write_text(text.replace("scope: project-defaults-adequacy", "scope: my-opinion"))
    with pytest.raises(KnowledgeError, match="my-opinion"):
        load_policy(unsourced)
