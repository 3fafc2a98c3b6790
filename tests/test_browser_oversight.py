"""In Debian's Chromium at a desk (1366 px): the province presses on another county's overdue
issue (上级督办) with a note and a date, is refused when it tries to sign for it, and that
county's bureau answers; Ruian's bureau finds nothing of it."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from supervision.models import Issue, IssueEvent, Region

from .factories import PASSWORD, make_second_county, make_user, make_world

pytestmark = pytest.mark.browser


@pytest.fixture
def desk(browser_instance):
    contexts: list = []

    def open_page():
        context = browser_instance.new_context(
            viewport={"width": 1366, "height": 900}, locale="zh-CN"
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def two_counties(transactional_db):
    world = make_world()
    county = make_second_county()
    shengting = make_user(
        "shengting", role=User.Role.OVERSIGHT, region=Region.objects.get(code="330000")
    )
    return world, county, shengting


def sign_in(page, live_server, user: User) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_the_province_presses_and_the_county_answers(two_counties, live_server, desk):
    world, county, shengting = two_counties
    issue = county["issues"][1]  # still waiting to be signed for
    page = desk()
    sign_in(page, live_server, shengting)
    page.goto(f"{live_server.url}/issues/{issue.pk}/")
    page.wait_for_load_state("networkidle")
    # Its one step is open, with a date three days on; no department step is offered.
    form = page.locator("form[action$='/escalate/']")
    assert form.is_visible()
    assert page.locator("form[action$='/accept/']").count() == 0
    assert re.match(r"\d{4}-\d{2}-\d{2}", form.locator("input[name=deadline]").input_value())
    form.locator("textarea[name=text]").fill("请西湖区住建局督促城关街道今天签收，按期回复。")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "已上级督办" in page.locator(".alert").first.inner_text()
    assert "住建局须在" in page.locator("[data-oversight-due]").inner_text()
    # Signing for it is not theirs to do: refused, and nothing changes.
    refused = page.evaluate(
        """async (url) => {
            const token = document.querySelector('[name=csrfmiddlewaretoken]').value;
            const body = new URLSearchParams({csrfmiddlewaretoken: token});
            const r = await fetch(url, {method: 'POST', body});
            return [r.status, await r.text()];
        }""",
        f"{live_server.url}/issues/{issue.pk}/accept/",
    )
    assert refused[0] == 403 and "只有承办部门或住建局可以签收" in refused[1]
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SUBMITTED and issue.oversight_due_at is not None

    answer = desk()
    sign_in(answer, live_server, county["bureau"])
    answer.goto(f"{live_server.url}/issues/{issue.pk}/")
    answer.wait_for_load_state("networkidle")
    reply = answer.locator("form[action$='/reply/']")
    assert reply.is_visible()  # what the 督办 asks for comes first, open
    reply.locator("textarea[name=text]").fill("已督促城关街道今天签收，明天上午整改完毕。")
    reply.locator("button[type=submit]").click()
    answer.wait_for_load_state("networkidle")
    assert "已回复上级督办" in answer.locator(".alert").first.inner_text()
    assert answer.locator("[data-oversight-due]").count() == 0
    issue.refresh_from_db()
    assert issue.oversight_due_at is None
    assert issue.events.filter(kind=IssueEvent.Kind.OVERSIGHT_REPLIED).exists()

    ruian = desk()
    sign_in(ruian, live_server, world.bureau)
    for url in (f"/issues/{issue.pk}/", f"/photos/{issue.photos.first().pk}/"):
        assert ruian.goto(f"{live_server.url}{url}").status == 404
