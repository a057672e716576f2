from builders import History


def test_one_failed_ssri_is_stage_one() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8)
    assert h.assess().staging.thase_rush.stage == 1
