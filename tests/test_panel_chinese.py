"""/panel/ in Chinese throughout: every page a department's staff or the bureau can reach reads
as Chinese, with none of the admin's English or its boilerplate (「以 办理」, 「4 问题」,
「无可选的」, the hidden 「Model name」 headers). Staff are greeted by name; a supervisor who opens
the panel lands on 我的. The walk follows the links of each page, as a person clicking through
would, so a page added to the panel later is read too."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.utils import timezone

from supervision import letters, services
from supervision.models import (
    CalendarChange,
    Consultation,
    ConsultationItem,
    Delivery,
    Household,
    Issue,
    Letter,
    ResponseTemplate,
    RoutingRule,
)

from .factories import World, make_supervisor

S = Issue.Status

# What leaked before, word for word, and the admin's English a person would see.
LEAKS = [
    "Model name",
    "Add link",
    "Change or view list link",
    "无可选的",
    "---------",
    "来修改",
    "过滤器",
    "欢迎，",
]
LEAK_PATTERNS = [
    re.compile(r"(^|\s)以 \S"),  # 「以 办理」: the filter's title in 「以 %(filter_title)s」
    re.compile(r"(^|\s)\d+ (问题|意愿征询|改造项目|居民来信|常用回复|延期申请)"),  # 「4 问题」
]
ENGLISH = {
    "Add",
    "Change",
    "Delete",
    "View",
    "Model",
    "name",
    "Select",
    "Go",
    "Action",
    "Filter",
    "Search",
    "Save",
    "Home",
    "History",
    "Welcome",
    "Log",
    "out",
    "Show",
    "all",
    "result",
    "results",
    "total",
    "Today",
    "Now",
    "Yes",
    "No",
    "Unknown",
    "None",
    "available",
}
# The issue page's step forms come from supervision/forms.py, which the panel's templates do
# not render: their empty choice is that code's to word (「请选择」), not these templates'.
ISSUE_PAGES = re.compile(r"/panel/supervision/issue/\d+/change/")
NOT_OURS = {"---------"}
# Latin words that are fine on a Chinese page: file formats and brands people say so.
LATIN_ALLOWED = {"Excel", "CSV", "WPS", "QR", "Ctrl", "Mac"}


class VisibleText(HTMLParser):
    """The text a person sees or hears: text nodes (hidden table headers for screen readers
    included), the labels of buttons and placeholders; not scripts, styles or other attributes."""

    SKIP = {"script", "style", "template", "noscript"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.SKIP:
            self._skipping += 1
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "input" and attrs.get("type") in ("submit", "button", "reset"):
            self.parts.append(attrs.get("value") or "")
        if attrs.get("placeholder"):
            self.parts.append(attrs["placeholder"])

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.parts.append(data.strip())


def read(response) -> VisibleText:
    parser = VisibleText()
    parser.feed(response.content.decode())
    return parser


def leaks_in(text: str, data_words: set[str]) -> list[str]:
    found = [leak for leak in LEAKS if leak in text]
    found += [m.group(0).strip() for p in LEAK_PATTERNS for m in [p.search(text)] if m]
    for word in re.findall(r"[A-Za-z][A-Za-z’']*", text):
        if word in LATIN_ALLOWED or word in data_words:
            continue
        found.append(word if word not in ENGLISH else f"{word} (admin English)")
    return sorted(set(found))


# --- the scene: something on every page ---------------------------------------------------------


@pytest.fixture
def scene(world: World):
    for user, name in [
        (world.handler, "陈科长"),
        (world.other_staff, "林科长"),
        (world.builder, "王工"),
        (world.bureau, "薛工"),
        (world.alice, "李阿姨"),
        (world.bob, "周师傅"),
    ]:
        user.display_name = name
        user.save(update_fields=["display_name"])
    later = timezone.localdate() + timedelta(days=40)
    world.submit(title="楼道灯不亮")
    dispatched = world.issue_in(S.IN_PROGRESS, title="雨水管脱落")
    services.request_extension(dispatched, actor=world.handler, until=later, text="雨季无法施工")
    world.issue_in(S.CLOSED, title="井盖松动")
    ResponseTemplate.objects.create(
        department=world.office, title="已转施工单位", text="已转施工单位处理。"
    )
    RoutingRule.objects.create(subdistrict=world.yuhai, category="", department=world.other_office)
    CalendarChange.objects.create(day=date(2026, 9, 15), note="台风停工")
    Delivery.objects.create(
        channel=Delivery.Channel.EMAIL, target="chen@example.com", subject="新问题", body="正文"
    )
    make_supervisor("carol", world.project.neighbourhood, [world.project])
    consultation = Consultation.objects.create(
        project=world.project,
        title="兴业大厦改造意愿征询",
        opens_on=timezone.localdate(),
        closes_on=timezone.localdate() + timedelta(days=14),
    )
    ConsultationItem.objects.create(
        consultation=consultation, kind=ConsultationItem.Kind.RENOVATE, text="是否同意改造"
    )
    Household.objects.create(consultation=consultation, building="1幢", room="101", code="A1")
    letter = letters.send_letter(
        project=world.project, summary="围挡倒了", details="东门围挡倒在路上。", sender_address="1"
    )
    Letter.objects.filter(pk=letter.pk).update(escalated_at=timezone.now())
    return world


def data_words() -> set[str]:
    """Latin words that are the data itself (login names, e-mail addresses, certificate
    numbers), not the page's wording."""
    from accounts.models import User
    from supervision.models import Supervisor

    words = set(User.objects.values_list("username", flat=True))
    words |= {"chen", "example", "com", "RAJD", "carol"}
    words |= {
        w
        for code in Letter.objects.values_list("code", flat=True)
        for w in re.findall(r"[A-Za-z]+", code)
    }
    words |= {
        n
        for c in Supervisor.objects.values_list("certificate_number", flat=True)
        for n in c.split("-")
    }
    return words


# --- the walk ------------------------------------------------------------------------------------

MAX_PAGES = 150
QUERY_VARIANTS = 2  # per path: a filter or two, so that 「共 N 个…」 and 「显示全部」 show


def walk(client, start: list[str]) -> dict[str, list[str]]:
    """Every panel page reachable from ``start``, GET only: {url: leaks}."""
    seen_paths: dict[str, int] = {}
    queue, visited, report = list(start), set(), {}
    words = data_words()
    while queue and len(visited) < MAX_PAGES:
        url = queue.pop(0)
        if url in visited:
            continue
        visited.add(url)
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        page = read(response)
        report[url] = leaks_in(" \n ".join(page.parts), words)
        for href in page.links:
            if href.startswith("?"):
                href = urlsplit(url).path + href
            parts = urlsplit(href)
            if not parts.path.startswith("/panel/") or parts.netloc:
                continue
            if "/logout/" in parts.path or parts.path.startswith("/panel/r/"):
                continue
            # Sorting, popups and the way back to a filtered list show the same words again.
            query = [
                (key, value)
                for key, value in parse_qsl(parts.query)
                if key not in ("o", "_changelist_filters", "_popup", "_to_field")
            ]
            href = parts.path + (f"?{urlencode(query)}" if query else "")
            if query:
                if seen_paths.get(parts.path, 0) >= QUERY_VARIANTS:
                    continue
                seen_paths[parts.path] = seen_paths.get(parts.path, 0) + 1
            if href not in visited:
                queue.append(href)
    return report


STAFF = ["bureau", "handler", "builder"]


@pytest.mark.parametrize("role", STAFF)
def test_every_panel_page_reads_in_chinese(scene, client, role):
    user = getattr(scene, role)
    client.force_login(user)
    issue = Issue.objects.visible_to(user).order_by("pk").first()
    start = [
        "/panel/",
        "/panel/supervision/",
        "/panel/supervision/issue/",
        f"/panel/supervision/issue/{issue.pk}/change/",
        "/panel/supervision/issue/?q=楼道",
        "/panel/password_change/",
    ]
    report = walk(client, start)
    assert len(report) >= 10, sorted(report)
    assert "/panel/supervision/issue/" in report
    if role != "builder":
        consultation = Consultation.objects.get()
        for url in [
            "/panel/supervision/consultation/",
            "/panel/supervision/consultation/add/",
            f"/panel/supervision/consultation/{consultation.pk}/change/",
            f"/panel/supervision/consultation/{consultation.pk}/import/",
        ]:
            assert url in report, url
    if role == "bureau":
        for model in ["supervisor", "department", "routingrule", "calendarchange", "delivery"]:
            assert f"/panel/supervision/{model}/" in report, model
        assert "/panel/supervision/supervisor/add/" in report
    for url in report:
        if ISSUE_PAGES.match(url):
            report[url] = [leak for leak in report[url] if leak not in NOT_OURS]
    leaking = [f"{url}: {'、'.join(leaks)}" for url, leaks in report.items() if leaks]
    assert not leaking, "\n".join(leaking)


@pytest.mark.parametrize("role", STAFF)
def test_staff_are_greeted_by_name(scene, client, role):
    user = getattr(scene, role)
    client.force_login(user)
    text = " ".join(read(client.get("/panel/")).parts)
    assert f"{user.display_name}，您好" in text


def test_the_list_counts_in_words(scene, client):
    client.force_login(scene.handler)
    text = " ".join(read(client.get("/panel/supervision/issue/?queue=all")).parts)
    assert re.search(r"共 \d+ 个问题", text), text


def test_filters_read_as_headings_not_以(scene, client):
    client.force_login(scene.bureau)
    text = " ".join(read(client.get("/panel/supervision/issue/")).parts)
    assert "以 " not in text
    assert "筛选" in text


@pytest.mark.parametrize(
    "url", ["/panel/", "/panel/supervision/issue/", "/panel/supervision/consultation/add/"]
)
def test_a_supervisor_opening_the_panel_is_sent_to_me(scene, client, url):
    client.force_login(scene.alice)
    response = client.get(url, follow=True)
    assert response.redirect_chain[-1][0] == "/me/"
    assert response.status_code == 200
    assert "部门工作台供部门工作人员使用" in response.content.decode()


def test_a_visitor_opening_the_panel_is_asked_to_log_in(scene, client):
    response = client.get("/panel/supervision/issue/")
    assert response.status_code == 302
    assert response["Location"].startswith("/panel/login/")
    response = client.get(response["Location"])
    assert response["Location"].startswith("/accounts/login/")


def test_the_panels_scripts_speak_chinese_too(world, client):
    """The two-box department picker on a project's page wrote its help in English: Django 5.2's
    admin scripts added strings its zh_Hans catalogue lacks; ours fills them."""
    client.force_login(world.bureau)
    catalogue = client.get("/panel/jsi18n/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for english, chinese in [
        ("Choose all %s", "全部选择%s"),
        ("Remove all %s", "全部移除%s"),
        ("Choose selected %s", "选择选中的%s"),
    ]:
        escaped = chinese.encode("unicode_escape").decode()  # as the catalogue writes it
        assert f'"{english}": "{escaped}"' in catalogue
