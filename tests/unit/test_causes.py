from ivrpowers.calls.causes import REASONS, cause_text, hangup_request_cause


def test_a_far_end_hangup_without_a_cause_is_normal_clearing_and_a_soft_one_tells_none() -> None:
    assert hangup_request_cause(None, None) == 16  # a BYE: the Hangup() after Stasis() sets 16
    assert hangup_request_cause(17, None) == 17
    assert hangup_request_cause(32, True) is None  # AST_SOFTHANGUP_EXPLICIT, not a Q.850 cause


def test_cause_names() -> None:
    assert cause_text(16) == "Normal call clearing"
    assert cause_text(REASONS["unallocated"]) == "Unallocated (unassigned) number"
    assert cause_text(250) == "cause 250"
    assert cause_text(0) is None and cause_text(None) is None
