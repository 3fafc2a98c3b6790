"""The clerk's day in a real browser (Debian's Chromium, 1366 × 768, as a desk screen): anyang
opens the panel on the demo and sees its urgent and most overdue issues first, then signs for
one and dispatches it in a handful of clicks. Screenshots go to ``screenshots/``."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from supervision.models import Issue
from supervision.panel import IssuePanel

from .test_browser import log_in, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def screen(browser_instance):
    context = browser_instance.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    yield page
    context.close()


def clicks(page):
    """Counts the person's clicks, as a wrapper of ``page.click``."""
    count = [0]

    def click(selector: str, **options) -> None:
        count[0] += 1
        page.click(selector, **options)

    return click, count


def test_anyang_sees_its_urgent_and_most_overdue_issues_first(demo, live_server, screen):
    base = live_server.url
    anyang = User.objects.get(username="anyang")
    queue = list(
        Issue.objects.visible_to(anyang)
        .filter(due_at__isnull=False)
        .order_by(*IssuePanel.WORK_ORDER, "-pk")[:5]
    )
    assert queue and queue[0].urgency == Issue.Urgency.URGENT, "the demo has urgent work"
    log_in(screen, base, "anyang")
    screen.goto(f"{base}/panel/supervision/issue/")
    shot(screen, "clerk-01-anyang-queue", full_page=False)

    rows = screen.locator("#result_list tbody tr")
    shown = [rows.nth(n).locator("th a, td.field-reference a").first.inner_text() for n in range(5)]
    assert shown == [issue.reference for issue in queue]

    first = rows.nth(0)
    badge = first.locator(".badge-urgent")
    assert badge.inner_text() == "紧急"
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(198, 40, 40)"
    box = badge.bounding_box()
    assert box and box["y"] + box["height"] < 768, "the urgent badge is on the first screen"
    # One overdue marker per row, saying how late.
    for n in range(5):
        text = rows.nth(n).inner_text()
        assert text.count("已超期") <= 1, text
    overdue = [issue for issue in queue if issue.is_overdue]
    if overdue:
        assert re.search(r"已超期 (\d+ (分钟|小时|个工作日)|，不到 1 个工作日)", screen.content())
    # Staff read the panel in Chinese.
    assert "Model name" not in screen.content()


def test_signing_for_then_dispatching_takes_at_most_five_clicks(demo, live_server, screen):
    base = live_server.url
    anyang = User.objects.get(username="anyang")
    issue = (
        Issue.objects.visible_to(anyang)
        .filter(status=Issue.Status.SUBMITTED, project__contractor__isnull=False)
        .order_by(*IssuePanel.WORK_ORDER, "-pk")
        .first()
    )
    assert issue is not None, "the demo has an issue waiting for anyang to sign for"
    log_in(screen, base, "anyang")
    screen.goto(f"{base}/panel/supervision/issue/")
    click, count = clicks(screen)

    click(f"text={issue.reference}")
    screen.wait_for_selector("#step-accept[open]")
    click("#step-accept [data-submit]")
    screen.wait_for_selector("[data-status=accepted]")
    # The next form is dispatch, open, with the project's contractor chosen.
    dispatch = screen.locator("#step-dispatch")
    assert dispatch.get_attribute("open") is not None
    chosen = screen.eval_on_selector("#dispatch-department", "e => e.options[e.selectedIndex].text")
    assert chosen == issue.project.contractor.name
    shot(screen, "clerk-02-dispatch-offered", full_page=False)
    click("#step-dispatch [data-submit]")
    screen.wait_for_selector("[data-status=in_progress]")

    assert count[0] <= 5
    issue.refresh_from_db()
    assert issue.status == Issue.Status.IN_PROGRESS
    assert issue.contractor == issue.project.contractor
    shot(screen, "clerk-03-dispatched", full_page=False)
