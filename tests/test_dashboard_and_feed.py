"""Issue 18: the dashboard counts the period it shows, in charts people can read, with rates
that never read 「—%」; the 监督群 feed folds what the system does by itself into one line a
day; links in messages lead to the address the site is served at."""

from __future__ import annotations

import io
import os
import re
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from supervision import charts, services, stats
from supervision.feed import LISTED
from supervision.issue_views import FEED_PAGE
from supervision.models import Delivery, Issue, IssueEvent, Region

from .test_settings import run_python

ROOT = Path(__file__).resolve().parent.parent
Kind = IssueEvent.Kind
S = Issue.Status
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _fresh_figures():
    cache.clear()
    yield
    cache.clear()


def page_of(response) -> str:
    return response.content.decode()


def filed_at(world, when: datetime, **fields) -> Issue:
    issue = world.submit(**fields)
    issue.created_at = when
    issue.save(update_fields=["created_at"])  # saved: the dashboard's rollups follow saves
    return issue


# --- the dashboard's period --------------------------------------------------------------------


def test_first_load_counts_the_period_it_shows(world, client):
    """Issue 18: the first load said 「近 30 天」 (the select's first option) and counted 90."""
    now = timezone.now()
    filed_at(world, now - 10 * DAY)
    filed_at(world, now - 60 * DAY)
    filed_at(world, now - 120 * DAY)
    client.force_login(world.bureau)

    response = client.get("/dashboard/")
    page = page_of(response)
    today = timezone.localdate()
    start = today - timedelta(days=89)
    period = response.context["period"]
    assert (period.start, period.end, period.preset) == (start, today, "90")
    assert response.context["headline"]["filed"] == 2
    # The one button marked current is the period counted, and the label names its days.
    current = re.findall(r'<a class="btn btn-primary" href="\?preset=(\w+)" aria-current', page)
    assert current == ["90"]
    assert f"近 90 天（{start.isoformat()} 至 {today.isoformat()}）" in page
    assert f'value="{start.isoformat()}"' in page and f'value="{today.isoformat()}"' in page
    assert "近 30 天" not in re.sub(r'<a class="btn btn-outline-primary".*?</a>', "", page)


def test_each_preset_counts_and_shows_its_own_days(world, client):
    now = timezone.now()
    filed_at(world, now - 10 * DAY)
    filed_at(world, now - 60 * DAY)
    filed_at(world, now - 400 * DAY)
    client.force_login(world.bureau)
    today = timezone.localdate()
    for preset, filed, label in [
        ("30", 1, "近 30 天"),
        ("90", 2, "近 90 天"),
        ("365", 2, "近一年"),
        ("all", 3, "全部"),
    ]:
        response = client.get("/dashboard/", {"preset": preset})
        assert response.context["headline"]["filed"] == filed, preset
        page = page_of(response)
        assert f'href="?preset={preset}" aria-current="true">{label}</a>' in page
        assert f'<strong class="text-body" id="period-label">{label}' in page
        if preset != "all":
            start = today - timedelta(days=int(preset) - 1)
            assert response.context["period"].start == start
            assert f'data-period-start="{start.isoformat()}"' in page


def test_dates_mark_no_preset_and_stay_in_their_fields(world, client):
    client.force_login(world.bureau)
    response = client.get("/dashboard/", {"start": "2026-02-01", "end": "2026-02-28"})
    page = page_of(response)
    assert response.context["period"].preset == ""
    assert "aria-current" not in re.search(r'<div class="btn-group.*?</div>', page, re.S).group()
    assert 'value="2026-02-01"' in page and 'value="2026-02-28"' in page
    assert "2026-02-01 至 2026-02-28" in page


# --- rates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (12.5, "12.5%"), (57, "57%"), (0, "0%"), (100, "100%"), (33.0, "33%")],
)
def test_a_rate_is_a_number_and_a_percent_sign_or_a_dash_alone(value, text):
    assert stats.format_rate(value) == text


def _bureau_row_without_fixes(world):
    """住建局 has an issue (an appeal lands there) but nothing fixed or answered: no reopen
    rate. 安阳 has two fixed, one sent back: 50 %."""
    rejected = world.issue_in(S.REJECTED)
    services.appeal_issue(rejected, actor=world.alice, text="不是重复反映")
    sent_back = world.issue_in(S.RECTIFIED)
    services.reopen_issue(sent_back, actor=world.alice, text="墙面还在掉")
    world.issue_in(S.CLOSED)


def test_the_bureaus_reopen_rate_cell_reads_a_dash_not_dash_percent(world, client):
    _bureau_row_without_fixes(world)
    client.force_login(world.bureau)
    response = client.get("/dashboard/", {"preset": "all"})
    rows = {row["department__name"]: row for row in response.context["departments"]}
    assert rows["市住建局"]["reopen_rate"] is None
    assert rows["安阳街道办事处"]["reopen_rate"] == 50
    page = page_of(response)
    assert "—%" not in page
    league = page[page.index('id="league-heading"') : page.index('id="contractor-heading"')]
    bureau = re.search(r"<th scope=\"row\">市住建局</th>.*?</tr>", league).group()
    assert "<td data-reopen-rate>—</td>" in bureau
    anyang = re.search(r"<th scope=\"row\">安阳街道办事处</th>.*?</tr>", league).group()
    assert "<td data-reopen-rate>50%</td>" in anyang


def test_no_page_of_figures_writes_a_dash_with_a_percent_sign(world, client):
    _bureau_row_without_fixes(world)
    world.submit(reporter=world.bob, project=world.other_project)  # 玉海: nothing rated
    month = timezone.localdate().strftime("%Y-%m")
    for user in (world.bureau, world.handler, world.other_staff):
        client.force_login(user)
        for url, query in [
            ("/dashboard/", {"preset": "all"}),
            ("/dashboard/", {}),
            ("/dashboard/report/", {"month": month}),
        ]:
            page = page_of(client.get(url, query))
            assert "—%" not in page, (user, url)
            assert "None" not in re.sub(r"<[^>]+>", "", page), (user, url)


# --- the charts --------------------------------------------------------------------------------

OKABE_ITO = {
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#999999",
}


def test_chart_colours_are_okabe_ito_one_per_status_and_one_green():
    colours = list(charts.STATUS_COLOURS.values())
    assert set(charts.STATUS_COLOURS) == set(S.values)
    assert len(set(colours)) == len(colours)
    assert set(colours) <= OKABE_ITO
    assert "#2e7d32" not in colours and "#5a9e5f" not in colours  # the two greens
    assert charts.BAR_COLOUR in OKABE_ITO


def test_chart_text_is_at_least_12_px_and_never_scaled_down(world, client):
    now = timezone.now()
    for n in range(12):
        filed_at(world, now - n * 7 * DAY, category=Issue.Category.PROGRESS)
    client.force_login(world.bureau)
    for preset in ("30", "90", "365", "all"):
        page = page_of(client.get("/dashboard/", {"preset": preset}))
        svgs = re.findall(r"<svg role=\"img\".*?</svg>", page, re.S)
        assert len(svgs) == 3
        for svg in svgs:
            # Drawn at its own size: the viewBox is the width and height it is shown at.
            box = re.search(
                r'viewBox="0 0 ([\d.]+) ([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg
            )
            assert box.group(1) == box.group(3) and box.group(2) == box.group(4)
            sizes = [float(size) for size in re.findall(r'font-size="([\d.]+)"', svg)]
            assert sizes and min(sizes) >= 12


def test_a_long_period_gets_narrower_columns_not_smaller_text():
    weeks = [
        {"week": date(2024, 1, 1) + timedelta(weeks=n), "counts": {"submitted": n % 5 + 1}}
        for n in range(150)
    ]
    chart = charts.stacked_columns(weeks, list(S.choices))
    assert chart["width"] <= 1110
    assert chart["font"] >= 12
    labelled = [column for column in chart["columns"] if column["labelled"]]
    # Labels never overlap: about 3 em apart at least.
    gaps = [b["x"] - a["x"] for a, b in zip(labelled, labelled[1:], strict=False)]
    assert min(gaps) >= 3 * chart["font"]


def test_the_weekly_chart_spans_the_whole_period_quiet_weeks_included(world, client):
    now = timezone.now()
    filed_at(world, now - 80 * DAY)
    filed_at(world, now - 2 * DAY)
    client.force_login(world.bureau)
    response = client.get("/dashboard/")
    columns = response.context["weekly_chart"]["columns"]
    start, end = response.context["period"].start, response.context["period"].end
    assert columns[0]["week"] == start - timedelta(days=start.weekday())
    assert columns[-1]["week"] == end - timedelta(days=end.weekday())
    assert [b["week"] - a["week"] for a, b in zip(columns, columns[1:], strict=False)] == [
        timedelta(days=7)
    ] * (len(columns) - 1)
    assert sum(column["total"] for column in columns) == response.context["headline"]["filed"]
    # The data table has the same weeks.
    table = page_of(response).split('id="weekly-table"')[1].split("</table>")[0]
    assert table.count('<th scope="row">') == len(columns)


def test_dates_a_century_apart_chart_only_the_weeks_with_issues_and_between(world, client):
    now = timezone.now()
    filed_at(world, now - 30 * DAY)
    filed_at(world, now - 2 * DAY)
    client.force_login(world.bureau)
    response = client.get("/dashboard/", {"start": "2000-01-01", "end": "2100-12-31"})
    columns = response.context["weekly_chart"]["columns"]
    assert 4 <= len(columns) <= 6
    assert sum(column["total"] for column in columns) == 2


def test_each_charts_table_folds_away_under_it_closed(world, client):
    world.submit()
    client.force_login(world.bureau)
    page = page_of(client.get("/dashboard/"))
    for heading in ("weekly-heading", "category-heading", "subdistrict-heading"):
        start = page.index(f'id="{heading}"')
        section = page[start : page.index("</section>", start)]
        chart = section.index("<svg")
        folded = re.search(r"<details([^>]*)><summary>查看数据表</summary>.*?<table", section, re.S)
        assert folded and folded.start() > chart, heading
        assert "open" not in folded.group(1)


# --- the feed: the system's own steps, one line a day ------------------------------------------


def overdue_issues(world, n: int, **fields) -> list[Issue]:
    issues = [world.submit(title=f"超期问题{i}", **fields) for i in range(n)]
    Issue.objects.filter(pk__in=[i.pk for i in issues]).update(
        sign_for_due_at=timezone.now() - HOUR
    )
    return issues


def feed_lines(page: str) -> list[str]:
    return re.findall(r'<article class="feed-item[^"]*"[^>]*>', page)


def test_the_sweeps_escalations_of_a_day_are_one_line_that_opens_to_the_issues(world, client):
    issues = overdue_issues(world, 3)
    services.comment_on_issue(issues[0], actor=world.bob, text="这个我也看到了")
    assert len(services.escalate_overdue()) == 3
    assert IssueEvent.objects.filter(kind=Kind.ESCALATED, actor=None).count() == 3

    client.force_login(world.alice)
    response = client.get("/feed/")
    page = page_of(response)
    (group,) = response.context["groups"]
    assert (group.kind, group.count, group.day) == (Kind.ESCALATED, 3, timezone.localdate())
    assert page.count("今日系统自动督办 3 件") == 1
    assert "已超过办理时限，系统自动提请住建局督办" not in page  # no line per escalation
    line = re.search(r'<article class="feed-item feed-group.*?</article>', page, re.S).group()
    assert re.search(r"<details>\s*<summary>", line)
    for issue in issues:
        assert f'<a href="/issues/{issue.pk}/">{issue.reference} ' in line
    # People's own steps stay one line each: 3 filings and Bob's comment, then the day's line.
    assert "这个我也看到了" in page
    assert len(response.context["events"]) == 4
    assert len(feed_lines(page)) == 5
    assert response.context["items"][0] is group  # the newest thing that happened


def test_reminders_to_rate_are_a_line_of_their_own(world, client):
    fixed = [world.issue_in(S.RECTIFIED, title=f"已整改{i}") for i in range(2)]
    Issue.objects.filter(pk__in=[i.pk for i in fixed]).update(
        verify_remind_at=timezone.now() - HOUR
    )
    overdue_issues(world, 1)
    services.escalate_overdue()
    reminded, _closed = services.sweep_unverified()
    assert len(reminded) == 2

    client.force_login(world.alice)
    page = page_of(client.get("/feed/"))
    assert "今日系统自动提醒评价 2 件" in page
    assert "今日系统自动督办 1 件" in page
    assert "请您到现场看看" not in page


def test_an_escalation_by_a_person_stays_its_own_line(world, client):
    (issue,) = overdue_issues(world, 1)
    services.escalate_issue(issue, actor=world.bureau, text="请三天内回复")
    client.force_login(world.alice)
    response = client.get("/feed/")
    assert response.context["groups"] == []
    assert "请三天内回复" in page_of(response)


def test_earlier_days_are_named_by_their_date(world, client):
    issues = overdue_issues(world, 4)
    services.escalate_overdue()
    today = timezone.localdate()
    earlier = today - timedelta(days=3)
    moment = timezone.make_aware(datetime.combine(earlier, datetime.min.time())) + 10 * HOUR
    IssueEvent.objects.filter(kind=Kind.ESCALATED, issue__in=issues[:3]).update(created_at=moment)

    client.force_login(world.alice)
    page = page_of(client.get("/feed/"))
    if earlier.year == today.year:
        name = f"{earlier.month}月{earlier.day}日"
    else:
        name = f"{earlier.year}年{earlier.month}月{earlier.day}日"
    assert f"{name} 系统自动督办 3 件" in page
    assert "今日系统自动督办 1 件" in page
    assert page.index("今日系统自动督办 1 件") < page.index(f"{name} 系统自动督办 3 件")


def test_a_day_line_counts_only_the_issues_the_viewer_may_see(world, client):
    overdue_issues(world, 2)  # 安阳's
    overdue_issues(world, 1, reporter=world.bob, project=world.other_project)  # 玉海's
    services.escalate_overdue()
    client.force_login(world.other_staff)
    page = page_of(client.get("/feed/"))
    assert "今日系统自动督办 1 件" in page and "超期问题0" in page
    client.force_login(world.alice)
    assert "今日系统自动督办 3 件" in page_of(client.get("/feed/"))


def test_a_big_day_lists_its_first_issues_and_counts_the_rest(world, client):
    overdue_issues(world, LISTED + 5)
    services.escalate_overdue()
    client.force_login(world.bureau)
    response = client.get("/feed/")
    (group,) = response.context["groups"]
    assert (group.count, len(group.issues), group.more) == (LISTED + 5, LISTED, 5)
    assert "还有 5 件" in page_of(response)


def test_the_poll_brings_the_days_line_again_with_the_new_count(world, client):
    first = overdue_issues(world, 2)
    services.escalate_overdue()
    client.force_login(world.alice)
    response = client.get("/feed/")
    newest = response.context["newest"]
    assert "今日系统自动督办 2 件" in page_of(response)

    # Nothing new: the poll brings nothing, and the day's line is not repeated.
    quiet = client.get("/feed/", {"after": newest})
    assert quiet.context["items"] == [] and quiet.context["newest"] == newest

    overdue_issues(world, 1)
    services.escalate_overdue()
    services.comment_on_issue(first[0], actor=world.bob, text="又超期了")
    poll = client.get("/feed/", {"after": newest})
    assert [t.name for t in poll.templates][0] == "supervision/_feed_new.html"
    (group,) = poll.context["groups"]
    assert group.count == 3
    page = page_of(poll)
    assert "今日系统自动督办 3 件" in page and "又超期了" in page
    assert f'data-day-group="{group.slot}"' in page  # the page keeps this copy, drops the old
    # 3 filed + 1 comment: the new filing and the comment are new.
    assert [e.text for e in poll.context["events"]][0] == "又超期了"
    again = client.get("/feed/", {"after": poll.context["newest"]})
    assert again.context["items"] == []


def test_paging_shows_every_event_and_every_day_line_once(world, client):
    issue = world.submit()
    # Noon of today, or of yesterday before noon: the escalations an hour or five before it stay
    # on its day whatever the time the test runs (at 00:55 they fell on the day before).
    now = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    if now > timezone.now():
        now -= DAY
    # 70 comments over 5 days, and the sweep's escalations on 4 of those days.
    IssueEvent.objects.bulk_create(
        IssueEvent(
            issue=issue,
            kind=Kind.COMMENTED,
            actor=world.alice,
            text=f"第 {n} 条",
            created_at=now - n * 100 * 60 * timedelta(seconds=1),
        )
        for n in range(70)
    )
    overdue = overdue_issues(world, 8)
    IssueEvent.objects.bulk_create(
        IssueEvent(
            issue=target,
            kind=Kind.ESCALATED,
            actor=None,
            text="已超过办理时限，系统自动提请住建局督办。",
            created_at=now - day * DAY - n * HOUR,
        )
        for day in range(4)
        for n, target in enumerate(overdue[: day + 2])
    )
    people = set(IssueEvent.objects.exclude(actor=None).values_list("pk", flat=True))

    client.force_login(world.alice)
    response = client.get("/feed/")
    seen_events = [e.pk for e in response.context["events"]]
    seen_groups = [(g.day, g.kind, g.count) for g in response.context["groups"]]
    sizes = [len(response.context["items"])]
    older = response.context["older"]
    while older:
        response = client.get("/feed/", {"before": older})
        seen_events += [e.pk for e in response.context["events"]]
        seen_groups += [(g.day, g.kind, g.count) for g in response.context["groups"]]
        sizes.append(len(response.context["items"]))
        older = response.context["older"]
    assert sorted(seen_events) == sorted(people) and len(seen_events) == len(set(seen_events))
    days = {(timezone.localdate(now - day * DAY)) for day in range(4)}
    assert {g[0] for g in seen_groups} == days and len(seen_groups) == len(days)
    assert all(size <= FEED_PAGE for size in sizes)
    assert "已经到底了" in page_of(response)


def feed_queries(client) -> int:
    client.get("/feed/")  # the session's first request of the page loads a little more
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/feed/")
    assert response.status_code == 200
    return len(queries)


def test_the_day_lines_cost_the_same_queries_however_many_escalations(world, client):
    client.force_login(world.bureau)
    overdue_issues(world, 2)
    services.escalate_overdue()
    small = feed_queries(client)
    overdue_issues(world, 30)
    services.escalate_overdue()
    # An earlier day too: two lines now.
    first = IssueEvent.objects.filter(kind=Kind.ESCALATED).order_by("pk").first()
    IssueEvent.objects.filter(pk=first.pk).update(created_at=timezone.now() - 3 * DAY)
    large = feed_queries(client)
    assert large == small
    assert large <= 12


# --- links in messages -------------------------------------------------------------------------

SERVED_AT = "http://127.0.0.1:8612"


def test_emails_and_wecom_messages_link_to_the_site_url(
    world, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = SERVED_AT
    world.handler.email = "anyang@example.com"
    world.handler.save()
    world.office.webhook_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test"
    world.office.save()
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit()
    link = f"{SERVED_AT}/issues/{issue.pk}/"
    email = Delivery.objects.get(channel=Delivery.Channel.EMAIL)
    robot = Delivery.objects.get(channel=Delivery.Channel.WEBHOOK)
    assert link in email.body and link in robot.body
    assert ":8000" not in email.body + robot.body


def test_the_digest_links_to_the_site_url(world, settings, client):
    settings.SITE_URL = SERVED_AT
    issue = world.submit()
    today = timezone.localdate()
    out = io.StringIO()
    call_command("daily_digest", "--date", today.isoformat(), stdout=out)
    assert f"{SERVED_AT}/issues/{issue.pk}/" in out.getvalue()
    client.force_login(world.bureau)
    page = page_of(client.get("/digest/", {"date": today.isoformat()}))
    assert f"{SERVED_AT}/issues/{issue.pk}/" in page and ":8000" not in page


def test_site_url_comes_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"
    )
    assert run_python(code, SITE_URL="https://jiandu.example.cn/ ").stdout.strip() == (
        "https://jiandu.example.cn"
    )
    assert run_python(code, SITE_URL="").stdout.strip() == "http://127.0.0.1:8000"


def test_make_run_tells_the_site_its_port(tmp_path):
    """`make run PORT=8612` serves on 8612 and the links of its worker say 8612; an explicit
    SITE_URL wins. A stand-in python prints what each command of the target would get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text('#!/bin/sh\necho "SITE_URL=$SITE_URL $*"\n')
    fake.chmod(0o755)
    stamp = tmp_path / "installed"
    stamp.touch()
    os.utime(stamp, (2**31, 2**31))  # newer than pyproject.toml: nothing to install
    environment = {k: v for k, v in os.environ.items() if k != "SITE_URL"}

    def run(*args, **env):
        return subprocess.run(
            ["make", "-s", "run", f"BIN={bin_dir}", f"STAMP={stamp}", *args],
            cwd=ROOT,
            env={**environment, **env},
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    assert f"SITE_URL={SERVED_AT} manage.py runserver 127.0.0.1:8612" in run("PORT=8612")
    assert "SITE_URL=http://127.0.0.1:8000 manage.py runserver 127.0.0.1:8000" in run()
    explicit = run("PORT=8612", SITE_URL="https://jiandu.example.cn")
    assert "SITE_URL=https://jiandu.example.cn manage.py runserver 127.0.0.1:8612" in explicit


# --- in Chromium, as people see it -------------------------------------------------------------

WECHAT_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.40(0x18002831) NetType/WIFI Language/zh_CN"
)
# The size each chart text is drawn at on the screen: its CSS size times the SVG's scale.
DRAWN_FONT_SIZES = """Array.from(document.querySelectorAll('svg.chart-svg text')).map(
  (t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)"""


@pytest.mark.browser
def test_the_bureau_reads_the_dashboard_at_1366_px(demo, live_server, browser_instance):
    from .test_browser import log_in, shot

    context = browser_instance.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        log_in(page, live_server.url, "zhujianju")
        page.goto(f"{live_server.url}/dashboard/")
        sizes = page.evaluate(DRAWN_FONT_SIZES)
        assert len(sizes) > 10 and min(sizes) >= 12, sizes
        # The period the page says is the period its figures and chart count.
        assert page.locator(".period-presets [aria-current]").inner_text() == "近 90 天"
        today = timezone.localdate()
        start = today - timedelta(days=89)
        label = page.inner_text("#period-label")
        assert label == f"近 90 天（{start.isoformat()} 至 {today.isoformat()}）"
        assert page.input_value("#id_start") == start.isoformat()
        tables = page.locator("details.chart-data")
        assert tables.count() == 3
        assert page.evaluate(
            "Array.from(document.querySelectorAll('details.chart-data')).every((d) => !d.open)"
        )
        assert not page.locator("#weekly-table").is_visible()
        page.click("details.chart-data >> nth=0 >> summary")
        assert page.locator("#weekly-table").is_visible()
        weeks = page.locator("#weekly-table tbody th").all_inner_texts()
        first = date.fromisoformat(weeks[0])
        assert first <= start < first + timedelta(days=7)
        assert date.fromisoformat(weeks[-1]) <= today < date.fromisoformat(weeks[-1]) + 7 * DAY
        totals = [int(t) for t in page.locator("#weekly-table [data-total]").all_inner_texts()]
        assert str(sum(totals)) == page.locator(".figure").first.inner_text()
        assert "—%" not in page.inner_text("main")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        shot(page, "bureau-dashboard-1366")
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize(
    ("width", "elder"), [(375, False), (320, False), (320, True)], ids=["375", "320", "320-elder"]
)
def test_a_supervisor_sees_the_days_escalations_as_one_line_on_the_phone(
    demo, live_server, browser_instance, width, elder
):
    from .test_browser import log_in, shot, wait_until

    def fall_overdue(issues) -> None:
        Issue.objects.filter(pk__in=[issue.pk for issue in issues]).update(
            sign_for_due_at=timezone.now() - HOUR,
            rectify_due_at=timezone.now() - HOUR,
            escalated_at=None,
        )

    # Filed more than two hours ago, so that a deadline an hour ago still comes after filing.
    open_issues = list(
        Issue.objects.filter(
            status__in=Issue.OPEN_STATUSES, created_at__lt=timezone.now() - 2 * HOUR
        ).order_by("pk")
    )
    fall_overdue(open_issues[:-1])
    services.escalate_overdue()
    today = timezone.localdate()
    # The supervisor's feed is Ruian's programme: 乐清's escalations are not in it.
    expected = (
        IssueEvent.objects.filter(
            kind=Kind.ESCALATED,
            actor=None,
            created_at__date=today,
            issue__project__neighbourhood__subdistrict__region=Region.objects.ruian(),
        )
        .values("issue")
        .distinct()
        .count()
    )
    assert expected >= 4

    context = browser_instance.new_context(
        viewport={"width": width, "height": 740},
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        user_agent=WECHAT_IPHONE,
    )
    page = context.new_page()
    try:
        base = live_server.url
        log_in(page, base, "jiandu03")
        if elder:
            page.goto(f"{base}/feed/")
            page.click(".elder-toggle")
            page.wait_for_selector("body.elder")
        page.goto(f"{base}/feed/")
        line = page.locator(".feed-group summary", has_text="今日系统自动督办")
        assert line.count() == 1
        assert line.inner_text().startswith(f"今日系统自动督办 {expected} 件")
        assert line.is_visible()
        links = page.locator(f'.feed-group[data-day-group="{today:%Y%m%d}-escalated"] li a')
        assert not links.first.is_visible()  # closed until opened
        line.click()
        assert links.first.is_visible()
        assert links.count() == min(expected, LISTED)
        minimum = 20 if elder else 16
        assert (
            float(
                page.evaluate(
                    "parseFloat(getComputedStyle(document.querySelector('.feed-group summary')).fontSize)"
                )
            )
            >= minimum
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot(page, f"supervisor-feed-grouped-{width}{'-elder' if elder else ''}", full_page=False)

        # The sweep escalates one more: the poll brings the day's line back with the new count,
        # once, at the top.
        fall_overdue(open_issues[-1:])
        assert len(services.escalate_overdue()) == 1
        page.evaluate("htmx.trigger('#feed-poll', 'refresh')")
        wait_until(
            page,
            f"document.querySelector('.feed-group summary').innerText"
            f".startsWith('今日系统自动督办 {expected + 1} 件')",
        )
        assert page.locator(".feed-group summary", has_text="今日系统自动督办").count() == 1
        first_item = page.locator("#feed .feed-item").first
        assert "今日系统自动督办" in first_item.inner_text()
    finally:
        context.close()
