"""The integrity rule: acknowledged <= applied <= acknowledged + in doubt."""

from loadlab.analysis.integrity import check

NAME = "POST /users/[id]/visit"


def _one(applied: int, ok: int, doubt: int) -> bool:
    outcomes = [[NAME, "ok", ok], [NAME, "in_doubt", doubt], [NAME, "rejected", 3]]
    (result,) = check(
        {NAME: 100, "POST /orders": 0}, {NAME: 100 + applied, "POST /orders": 0}, outcomes
    )
    return result.holds


def test_rule_holds_inside_the_bounds() -> None:
    assert _one(applied=10, ok=10, doubt=0)
    assert _one(applied=12, ok=10, doubt=2)


def test_rule_breaks_on_lost_or_phantom_writes() -> None:
    assert not _one(applied=9, ok=10, doubt=5)  # an acknowledged write is missing
    assert not _one(applied=13, ok=10, doubt=2)  # more applied than could have been


def test_endpoints_not_driven_are_not_checked() -> None:
    assert check({NAME: 0, "POST /orders": 0}, {NAME: 0, "POST /orders": 0}, []) == []
