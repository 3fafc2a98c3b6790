"""Accessibility in a real browser: axe-core on every public, supervisor and panel page, in the
standard and the elder-friendly (适老化) mode; no sideways scrolling at 375 px; and the supervisors'
own pages on the smallest phone (320 px, WeChat's browser): large enough text, a tab bar that
fits."""

from __future__ import annotations

import pytest
from django.utils import timezone

from supervision.models import Consultation, Issue, Project

from .test_browser import SHOTS, WECHAT_ANDROID, log_in, shot

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


# --- the supervisors' pages on a 320 px phone (issue 16) ----------------------------------------

NARROW = {"width": 320, "height": 700}
SUPERVISOR = "jiandu03"


def their_issue() -> Issue:
    """The supervisor's first issue with photos: a page with photos and a thread."""
    reported = Issue.objects.filter(reporter__username=SUPERVISOR).order_by("pk")
    return reported.filter(photos__isnull=False).first() or reported.first()


def supervisor_pages_320() -> list[str]:
    return [
        "/",
        "/me/",
        "/me/settings/",
        "/issues/new/",
        "/issues/",
        "/feed/",
        their_issue().get_absolute_url(),
    ]


def slug(path: str) -> str:
    return path.strip("/").replace("/", "-") or "home"


@pytest.fixture
def narrow_phone(browser_instance):
    """The smallest phone a supervisor has: 320 px wide, WeChat's browser on Android."""
    context = browser_instance.new_context(
        viewport=NARROW, is_mobile=True, has_touch=True, locale="zh-CN", user_agent=WECHAT_ANDROID
    )
    yield context.new_page()
    context.close()


def visit_as_supervisor(page, base: str, elder: bool):
    """Logs the supervisor in, in the mode asked for, and yields each of their pages opened."""
    log_in(page, base, SUPERVISOR)
    set_elder(page, base, elder)
    for path in supervisor_pages_320():
        page.goto(f"{base}{path}")
        assert page.locator("body.elder").count() == int(elder)
        yield path


# The text a person reads in the page's main part, with its computed size in px. Status and role
# badges are short labels set smaller on purpose; hidden text and text for screen readers only is
# left out.
MEASURE_TEXT = """() => {
  const shown = el => {
    const box = el.getBoundingClientRect();
    if (box.width < 2 || box.height < 2) { return false; }
    const style = getComputedStyle(el);
    return style.visibility !== "hidden" && style.opacity !== "0"
      && !el.closest(".visually-hidden, .visually-hidden-focusable");
  };
  const px = el => parseFloat(getComputedStyle(el).fontSize);
  const name = el => {
    const classes = typeof el.className === "string" ? el.className.trim().split(/\\s+/) : [];
    const words = el.textContent.trim().replace(/\\s+/g, " ").slice(0, 20);
    return [el.tagName.toLowerCase(), ...classes.filter(Boolean)].join(".") + " «" + words + "»";
  };
  const main = document.querySelector("main");
  const found = {body: px(document.body), text: [], labels: [], headings: []};
  const reading = "p, li, label, dd, dt, td, a, button, .form-text, legend";
  for (const el of main.querySelectorAll(reading)) {
    if (!el.textContent.trim() || !shown(el) || el.closest(".status, .role-badge, .tab-badge")) {
      continue;
    }
    found[el.matches("label, legend") ? "labels" : "text"].push([px(el), name(el)]);
  }
  for (const el of main.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    if (el.textContent.trim() && shown(el)) { found.headings.push([px(el), name(el)]); }
  }
  return found;
}"""

# Every piece of text in an issue's thread (处理记录), badges left out: the system's lines (who
# did what, the deadline), the name line above each message, and the messages.
MEASURE_THREAD = """() => {
  const found = [];
  for (const el of document.querySelectorAll("main .thread *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width < 2 || el.closest(".status, .role-badge, .visually-hidden")) {
      continue;
    }
    const words = el.textContent.trim().replace(/\\s+/g, " ").slice(0, 24);
    const meta = el.matches(".system-line, .bubble-meta");
    found.push([parseFloat(getComputedStyle(el).fontSize), meta, el.className, words]);
  }
  return found;
}"""

# Each tab of the bottom bar: its label's lines and box against the link's and the screen's, and
# the underlines of the link and its icon.
MEASURE_TABBAR = """() => [...document.querySelectorAll("nav.tabbar a")].map(link => {
  const label = [...link.childNodes].find(n => n.nodeType === 3 && n.textContent.trim());
  const range = document.createRange();
  range.selectNodeContents(label);
  const box = range.getBoundingClientRect();
  const around = link.getBoundingClientRect();
  const style = getComputedStyle(link);
  return {
    label: label.textContent.trim(),
    fontSize: parseFloat(style.fontSize),
    lineHeight: parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize),
    height: box.height,
    lines: new Set([...range.getClientRects()].map(r => Math.round(r.top))).size,
    text: [box.left, box.right],
    room: [Math.max(around.left, 0), Math.min(around.right, window.innerWidth)],
    underlined: [link, ...link.querySelectorAll("span")]
      .map(el => getComputedStyle(el).textDecorationLine)
      .filter(line => line !== "none"),
  };
})"""

# The unread count on 我的: its box against the screen's width and the tab's label.
MEASURE_BADGE = """() => {
  const badge = document.querySelector("nav.tabbar .tab-badge");
  const box = badge.getBoundingClientRect();
  const link = badge.closest("a");
  const range = document.createRange();
  range.selectNodeContents([...link.childNodes].find(n => n.nodeType === 3 && n.textContent.trim()));
  const label = range.getBoundingClientRect();
  const overlaps = box.left < label.right && label.left < box.right
    && box.top < label.bottom && label.top < box.bottom;
  return {text: badge.firstChild.textContent, left: box.left, right: box.right,
          width: box.width, screen: document.documentElement.clientWidth,
          covers_label: overlaps};
}"""


def mode(elder: bool) -> str:
    return "elder" if elder else "standard"


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_supervisor_pages_at_320_px_pass_axe_and_do_not_scroll_sideways(
    demo, live_server, narrow_phone, elder
):
    page, base = narrow_phone, live_server.url
    problems = []
    for path in visit_as_supervisor(page, base, elder):
        problems += [f"{path}: {violation}" for violation in axe_violations(page)]
        width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        if width[0] > width[1]:
            problems.append(f"{path}: scrolls sideways ({width[0]} px in {width[1]} px)")
        shot(page, f"a11y-320-{mode(elder)}-{slug(path)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_supervisor_pages_at_320_px_have_text_large_enough_to_read(
    demo, live_server, narrow_phone, elder
):
    """Standard: 16 px at least. Elder mode: body text 20 px, labels 18 px, headings larger."""
    page, base = narrow_phone, live_server.url
    problems, smallest = [], {}
    for path in visit_as_supervisor(page, base, elder):
        found = page.evaluate(MEASURE_TEXT)
        assert found["text"] and found["headings"], f"{path}: nothing measured"
        floor = {"text": 20, "labels": 18} if elder else {"text": 16, "labels": 16}
        for kind, minimum in floor.items():
            for size, what in found[kind]:
                smallest[kind] = min(smallest.get(kind, size), size)
                if size < minimum:
                    problems.append(f"{path}: {what} is {size} px (< {minimum})")
        for size, what in found["headings"]:
            smallest["headings"] = min(smallest.get("headings", size), size)
            if elder and size <= found["body"]:
                problems.append(
                    f"{path}: heading {what} is {size} px, body text {found['body']} px"
                )
    print(f"\n{mode(elder)} at 320 px, smallest font sizes: {smallest}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_the_tab_bar_labels_fit_320_px_on_one_line_and_no_icon_is_underlined(
    demo, live_server, narrow_phone, elder
):
    page, base = narrow_phone, live_server.url
    problems = []
    for path in visit_as_supervisor(page, base, elder):
        tabs = page.evaluate(MEASURE_TABBAR)
        assert [tab["label"] for tab in tabs] == ["首页", "问题", "我要反映", "监督群", "我的"]
        for tab in tabs:
            where = f"{path}: tab 「{tab['label']}」"
            if tab["lines"] != 1 or tab["height"] > 1.5 * tab["lineHeight"]:
                problems.append(f"{where} wraps: {tab['lines']} lines, {tab['height']:.1f} px high")
            (left, right), (room_left, room_right) = tab["text"], tab["room"]
            if left < room_left - 0.5 or right > room_right + 0.5:
                problems.append(
                    f"{where} is clipped: text {left:.1f}–{right:.1f} px in {tab['room']}"
                )
            if tab["underlined"]:
                problems.append(f"{where} is underlined: {tab['underlined']}")
    print(f"\n{mode(elder)} tab bar at 320 px: {tabs}")
    assert not problems, "\n".join(problems)


def unread_notifications(username: str, count: int) -> None:
    """Gives the supervisor exactly ``count`` unread notifications, about issues they may read."""
    from django.contrib.auth import get_user_model

    from supervision.access import watched_projects
    from supervision.models import IssueEvent, Notification

    reader = get_user_model().objects.get(username=username)
    mine = Notification.objects.filter(recipient=reader)
    events = IssueEvent.objects.filter(issue__project__in=watched_projects(reader)).exclude(
        pk__in=mine.values("event")
    )
    Notification.objects.bulk_create(
        Notification(recipient=reader, event=event)
        for event in events[: max(0, count - mine.count())]
    )
    mine.update(read_at=timezone.now())
    keep = mine.order_by("-pk").values_list("pk", flat=True)[:count]
    Notification.objects.filter(pk__in=list(keep)).update(read_at=None)
    assert mine.filter(read_at=None).count() == count


@pytest.mark.parametrize("unread", [4, 10], ids=["one-digit", "two-digits"])
def test_the_unread_count_on_the_me_tab_stays_on_the_screen_at_320_px(
    demo, live_server, narrow_phone, unread
):
    """The red count on 我的, the last tab at the screen's right edge, in both modes."""
    page, base = narrow_phone, live_server.url
    unread_notifications(SUPERVISOR, unread)
    log_in(page, base, SUPERVISOR)
    problems = []
    for elder in (False, True):
        set_elder(page, base, elder)
        page.goto(f"{base}/me/")
        badge = page.evaluate(MEASURE_BADGE)
        assert badge["text"] == str(unread)
        print(f"\n{unread} unread, {mode(elder)}: {badge}")
        if badge["covers_label"]:
            problems.append(f"{mode(elder)}: the count 「{badge['text']}」 covers the label 我的")
        if badge["right"] > badge["screen"] + 0.5:
            problems.append(
                f"{mode(elder)}: the count 「{badge['text']}」 spans {badge['left']:.1f}–"
                f"{badge['right']:.1f} px on a {badge['screen']} px screen"
            )
        page.locator("nav.tabbar").screenshot(
            path=str(SHOTS / f"a11y-320-{mode(elder)}-tabbar-{unread}-unread.png")
        )
    assert not problems, "\n".join(problems)


def test_the_issue_thread_is_large_enough_to_read_at_320_px(demo, live_server, narrow_phone):
    """Standard: 16 px at least. Elder mode: the messages 20 px; the small lines above them (who,
    when, the deadline) 18 px, as elder mode sets the name line (``.bubble-meta``)."""
    page, base = narrow_phone, live_server.url
    problems = []
    log_in(page, base, SUPERVISOR)
    path = their_issue().get_absolute_url()
    for elder in (False, True):
        set_elder(page, base, elder)
        page.goto(f"{base}{path}")
        found = page.evaluate(MEASURE_THREAD)
        assert any(meta for _, meta, _, _ in found) and any(not m for _, m, _, _ in found)
        for size, meta, classes, words in found:
            minimum = (18 if meta else 20) if elder else 16
            if size < minimum:
                problems.append(
                    f"{mode(elder)} {path}: .{classes or '(text)'} «{words}» is {size} px "
                    f"(< {minimum})"
                )
        thread = page.locator(".thread")
        thread.scroll_into_view_if_needed()
        thread.screenshot(path=str(SHOTS / f"a11y-320-{mode(elder)}-issue-thread.png"))
    assert not problems, "\n".join(sorted(set(problems)))
