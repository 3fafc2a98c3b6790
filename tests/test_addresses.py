"""Addresses read as people write them, on every page, slip, export, message and Open311 answer."""

import pytest

from supervision import notifications
from supervision.addresses import address
from supervision.models import Household, Issue

from .factories import image_file


@pytest.mark.parametrize(
    ("parts", "written"),
    [
        (("3", "2", "101"), "3幢2单元101室"),
        (("5", "", "", "北面外墙"), "5幢北面外墙"),
        (("", "", "", "北面外墙"), "北面外墙"),
        (("3号楼", "2单元", "101室"), "3号楼2单元101室"),
        (("12栋", "", ""), "12栋"),
        (("", "", ""), ""),
        (("全小区",), "全小区"),
        (("整个小区", "", "", "东门"), "整个小区东门"),
    ],
)
def test_an_address_names_each_part_once(parts, written):
    assert address(*parts) == written


def test_an_issue_and_a_household_read_the_same_way(
    world, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit(
            title="外墙渗水", building="3", unit="2", location="北面外墙", photos=[image_file()]
        )
    assert issue.place == "3幢2单元北面外墙"
    assert str(Household(building="1", unit="1", room="101")) == "1幢1单元101室"

    client.force_login(world.handler)
    page = client.get(f"/issues/{issue.pk}/").content.decode()
    assert "3幢2单元北面外墙" in page and "3 2" not in page


def test_the_message_to_the_department_names_the_place(world):
    issue = world.issue_in(Issue.Status.SUBMITTED, building="5", location="楼道")
    _subject, body = notifications.describe(issue.events.get())
    assert "位置：5幢楼道" in body
