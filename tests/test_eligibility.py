"""Which neighbourhoods qualify for renovation (the article's 相关链接), with reasons."""

import pytest

from supervision.models import Neighbourhood, Subdistrict


def hood(year_built, **flags):
    return Neighbourhood(
        subdistrict=Subdistrict(name="安阳街道", code="anyang"),
        name="x",
        year_built=year_built,
        **flags,
    )


def test_built_1995_qualifies():
    verdict = hood(1995).eligibility()
    assert verdict.qualifies
    assert any("1995" in str(reason) for reason in verdict.reasons)


def test_built_1995_but_due_for_expropriation_does_not_qualify():
    verdict = hood(1995, expropriation_within_5_years=True).eligibility()
    assert not verdict.qualifies
    assert any("征收" in str(reason) for reason in verdict.reasons)


def test_built_1995_in_shantytown_plan_does_not_qualify():
    verdict = hood(1995, in_shantytown_plan=True).eligibility()
    assert not verdict.qualifies
    assert any("棚改" in str(reason) for reason in verdict.reasons)


def test_built_2005_with_incomplete_facilities_and_strong_wish_qualifies():
    verdict = hood(2005, incomplete_facilities=True, strong_resident_wish=True).eligibility()
    assert verdict.qualifies
    assert any("意愿" in str(reason) for reason in verdict.reasons)


def test_built_2005_without_does_not_qualify():
    verdict = hood(2005).eligibility()
    assert not verdict.qualifies
    assert len(verdict.reasons) >= 2


@pytest.mark.parametrize(
    ("flags", "qualifies"),
    [({"incomplete_facilities": True}, False), ({"strong_resident_wish": True}, False)],
)
def test_built_2005_needs_both_conditions(flags, qualifies):
    assert hood(2005, **flags).eligibility().qualifies is qualifies


def test_year_2000_counts_as_after_2000():
    assert not hood(2000).eligibility().qualifies
    assert hood(1999).eligibility().qualifies
