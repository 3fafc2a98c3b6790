"""/admin/ (superusers) cannot change an issue behind the workflow's back: its workflow fields are
shown as text, a forged POST does not change them, there are no bulk actions that would, and the
issue's events cannot be added, changed or deleted there."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from supervision.admin import WORKFLOW_FIELDS
from supervision.models import Issue

S = Issue.Status


@pytest.fixture
def root(world, client) -> User:
    admin = User.objects.create_superuser("root", "root@example.cn", "root-pass-1")
    client.force_login(admin)
    return admin


def change_url(issue: Issue) -> str:
    return f"/admin/supervision/issue/{issue.pk}/change/"


def inputs_of(page: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', page))


def test_the_change_form_shows_workflow_fields_as_text_not_inputs(world, client, root):
    issue = world.issue_in(S.ACCEPTED, urgency=Issue.Urgency.URGENT)
    response = client.get(change_url(issue))

    assert response.status_code == 200
    page = response.content.decode()
    names = inputs_of(page)
    assert not names & set(WORKFLOW_FIELDS)
    assert {"title", "description", "location"} <= names  # the wording can still be corrected
    assert '<div class="readonly">已签收</div>' in page  # status
    assert '<div class="readonly">紧急</div>' in page  # urgency


def test_a_posted_change_of_status_and_urgency_is_ignored(world, client, root):
    issue = world.issue_in(S.ACCEPTED)
    events = list(issue.events.values_list("pk", "kind", "text"))
    data = {
        "title": "外墙涂料大面积起皮",
        "description": issue.description,
        "building": "",
        "unit": "",
        "location": "",
        "households": "",
        "area": "",
        # What the form does not offer, forged:
        "status": S.CLOSED,
        "urgency": Issue.Urgency.URGENT,
        "category": Issue.Category.SAFETY,
        "is_public": "on",
        "rating": Issue.Rating.SATISFIED,
        "department": world.other_office.pk,
        "closed_at": "2024-01-01 00:00:00",
        # … and the history, forged too.
        "events-TOTAL_FORMS": str(len(events)),
        "events-INITIAL_FORMS": str(len(events)),
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "0",
        **{
            f"events-{n}-{name}": value
            for n, event in enumerate(issue.events.order_by("created_at", "pk"))
            for name, value in (
                ("id", event.pk),
                ("issue", issue.pk),
                ("text", "改写的记录"),
                ("DELETE", "on"),
            )
        },
        "_save": "保存",
    }
    response = client.post(change_url(issue), data)

    assert response.status_code == 302
    saved = Issue.objects.get(pk=issue.pk)
    assert saved.title == "外墙涂料大面积起皮"  # the form was saved …
    assert saved.status == S.ACCEPTED  # … but not the workflow fields
    assert saved.urgency == Issue.Urgency.NORMAL
    assert saved.category == Issue.Category.QUALITY
    assert saved.is_public is False
    assert saved.rating == ""
    assert saved.department == world.office
    assert saved.closed_at is None
    assert list(saved.events.values_list("pk", "kind", "text")) == events  # none changed, none gone


def test_issue_list_has_no_bulk_action_that_changes_the_workflow(world, client, root):
    world.submit()
    response = client.get("/admin/supervision/issue/")

    assert response.status_code == 200
    actions = {name for name, _label in response.context["action_form"].fields["action"].choices}
    assert actions <= {"", "delete_selected"}
    assert not response.context["cl"].list_editable


def test_events_have_no_page_of_their_own_in_admin(world, client, root):
    world.submit()
    assert client.get("/admin/supervision/issueevent/").status_code == 404
