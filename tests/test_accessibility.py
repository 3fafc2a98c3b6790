"""Accessibility in a real browser: axe-core on every public, supervisor and panel page, in the
standard and the elder-friendly (适老化) mode; no sideways scrolling at 375 px."""

from __future__ import annotations

import pytest
from django.utils import timezone

from supervision.models import Consultation, Issue, Project

from .test_browser import log_in, shot

pytestmark = pytest.mark.browser

SERIOUS = {"serious", "critical"}


def axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


def pages_for(role: str) -> list[str]:
    project = Project.objects.get(name="西山花园老旧小区改造工程")
    issue = Issue.objects.filter(project=project).first() or Issue.objects.first()
    if role == "public":
        consultation = Consultation.objects.create(
            project=project,
            title="征询",
            opens_on=timezone.localdate(),
            closes_on=timezone.localdate(),
        )
        return [
            "/",
            "/projects/",
            f"/projects/{project.pk}/",
            f"/projects/{project.pk}/notice/",
            f"/consultations/{consultation.pk}/",
            "/accounts/login/",
        ]
    if role == "supervisor":
        return [
            "/me/",
            "/issues/",
            "/issues/new/",
            issue.get_absolute_url(),
            "/feed/",
            "/patrols/new/",
            "/notifications/",
        ]
    return [
        "/panel/",
        "/panel/supervision/issue/",
        f"/panel/supervision/issue/{Issue.objects.filter(department__name='安阳街道办事处').first().pk}/change/",
        "/dashboard/",
        "/digest/",
    ]


@pytest.fixture
def phone_page(browser_instance):
    context = browser_instance.new_context(
        viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    yield context.new_page()
    context.close()


def set_elder(page, base: str, on: bool) -> None:
    page.context.add_cookies([{"name": "elder", "value": "1" if on else "0", "url": base}])


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_no_serious_axe_violations_and_no_sideways_scrolling(demo, live_server, phone_page, elder):
    page, base = phone_page, live_server.url
    problems = []
    for role, username in (("public", None), ("supervisor", "jiandu06"), ("staff", "anyang")):
        if username:
            log_in(page, base, username)
        set_elder(page, base, elder)
        for path in pages_for(role):
            page.goto(f"{base}{path}")
            for violation in axe_violations(page):
                problems.append(f"{path}: {violation}")
            if role != "staff":  # the panel is a desk tool; residents' pages must fit a phone
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > 375:
                    problems.append(f"{path}: scrolls sideways ({width} px)")
        shot(page, f"a11y-{role}-{'elder' if elder else 'standard'}")
    assert not problems, "\n".join(problems)


def test_elder_mode_is_larger_and_remembered(demo, live_server, phone_page):
    page, base = phone_page, live_server.url
    page.goto(f"{base}/")
    assert float(page.evaluate("getComputedStyle(document.body).fontSize").rstrip("px")) >= 16
    page.click(".elder-toggle")
    page.wait_for_selector("body.elder")
    assert float(page.evaluate("getComputedStyle(document.body).fontSize").rstrip("px")) >= 20
    height = page.evaluate("document.querySelector('.elder-toggle').getBoundingClientRect().height")
    assert height >= 48
    page.goto(f"{base}/projects/")  # remembered in a cookie
    assert page.locator("body.elder").count() == 1
    shot(page, "elder-mode-projects")
    page.click(".elder-toggle")
    page.wait_for_selector("body:not(.elder)")
