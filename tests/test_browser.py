"""In a real browser, as a resident meets the product: Debian's Chromium at 375 × 812.

Screenshots of each step go to ``screenshots/`` (git-ignored): look at them, Chinese text must
render. Runs whenever /usr/bin/chromium exists (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from PIL import Image, ImageDraw, ImageStat
from playwright.sync_api import expect

from supervision import services
from supervision.models import Issue, IssueEvent, Photo, Project

from .conftest import CHROMIUM, CHROMIUM_ARGS
from .worker import run_worker

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
PASSWORD = "renovate-2023"


def portrait_jpeg_with_gps(path: Path) -> Path:
    """Stored 1200 × 900 sideways with EXIF orientation 6, as a phone held upright saves it."""
    image = Image.new("RGB", (1200, 900), (200, 200, 200))
    ImageDraw.Draw(image).rectangle([0, 0, 600, 900], fill=(200, 40, 40))
    exif = image.getexif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (27.0, 46.0, 48.0), 3: "E", 4: (120.0, 39.0, 36.0)}
    image.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def heic(path: Path) -> Path:
    import pillow_heif

    pillow_heif.register_heif_opener()
    image = Image.new("RGB", (640, 480), (40, 120, 200))
    ImageDraw.Draw(image).ellipse([160, 120, 480, 360], fill=(250, 220, 0))
    image.save(path, "HEIF", quality=60)
    return path


@pytest.fixture
def phone(browser_instance):
    context = browser_instance.new_context(
        viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    yield context.new_page()
    context.close()


def shot(page, name: str, *, full_page: bool = True) -> None:
    """The whole page, or with ``full_page=False`` just what the screen shows."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def log_in(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    # Each lands where their work is: 我的, the panel's queue or the figures.
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def test_supervisor_files_an_issue_with_two_photos_and_follows_it(
    demo, live_server, phone, tmp_path
):
    page, base = phone, live_server.url
    log_in(page, base, "jiandu02")
    page.goto(f"{base}/issues/new/")
    shot(page, "supervisor-01-new-issue")

    # A hostile file is refused next to the field, and what was typed stays.
    evil = tmp_path / "evil.svg"
    evil.write_text("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    page.select_option("select[name=project]", index=1)
    page.check("text=质量")
    page.fill("input[name=title]", "3 幢楼道扶手松动")
    page.fill("textarea[name=description]", "三楼到四楼的扶手一推就晃，老人上下楼很危险。")
    page.set_input_files("#id_photos", [str(evil)])
    page.click("[data-submit]")
    page.wait_for_selector(".invalid-feedback:has-text('evil.svg')")
    assert "不是支持的照片格式" in page.inner_text("form#issue-form")
    assert page.input_value("input[name=title]") == "3 幢楼道扶手松动"
    assert not Issue.objects.filter(title="3 幢楼道扶手松动").exists()
    shot(page, "supervisor-02-hostile-file-refused")

    # Two photos — a portrait JPEG with GPS and an iPhone HEIC — with the position consent.
    photos = [portrait_jpeg_with_gps(tmp_path / "IMG_0001.jpg"), heic(tmp_path / "IMG_2041.HEIC")]
    page.set_input_files("#id_photos", [str(p) for p in photos])
    page.wait_for_selector("[data-photo-previews] figure >> nth=1")
    page.fill("input[name=building]", "3 幢")
    page.fill("input[name=location]", "三楼楼道")
    page.check("input[name=share_position]")
    shot(page, "supervisor-03-previews")
    page.click("[data-submit]")
    page.wait_for_url(re.compile(r"/issues/\d+/$"))
    assert page.get_attribute("[data-status]", "data-status") == "submitted"
    shot(page, "supervisor-04-issue-page")

    issue = Issue.objects.get(title="3 幢楼道扶手松动")
    assert page.is_visible(f"text={issue.reference}")
    assert round(float(issue.latitude), 2) == 27.78 and round(float(issue.longitude), 2) == 120.66
    # The HEIC is converted by the worker, not in the request: until then a tile says so.
    expect(page.locator("[data-photos-pending]")).to_have_text(
        "有 1 张照片正在处理，稍后刷新就能看到。"
    )
    assert len(loaded_widths(page, issue_page_photos(page))) == 2  # the tile is a picture too
    shot(page, "supervisor-04a-heic-pending")
    page.wait_for_load_state("networkidle")  # the live server shares the test's SQLite
    run_worker()
    # The page shows the converted photo by itself (photo-pending.js): no reload, nothing lost.
    expect(page.locator("[data-photos-pending]")).to_have_count(0, timeout=15_000)
    expect(page.locator("img[data-photo-pending]")).to_have_count(0)
    assert len(loaded_widths(page, issue_page_photos(page))) == 2
    shot(page, "supervisor-04b-heic-converted")
    stored = list(issue.photos.order_by("pk"))
    assert len(stored) == 2
    for photo in stored:
        for field in (photo.image, photo.thumbnail):
            data = default_storage.open(field.name).read()
            assert b"GPS" not in data and b"Exif" not in data
            image = Image.open(io.BytesIO(data))
            assert image.format == "JPEG" and max(image.size) <= 1600
            assert not image.getexif()
    portrait = stored[0]
    assert portrait.height > portrait.width  # stored upright

    # It is in the list and in the feed; a comment appears in the thread.
    page.goto(f"{base}/issues/")
    assert page.is_visible(f"text={issue.title}")
    shot(page, "supervisor-05-issue-list")
    page.goto(f"{base}/feed/")
    assert page.is_visible(f"text={issue.reference}")
    shot(page, "supervisor-06-feed")

    page.goto(f"{base}{issue.get_absolute_url()}")
    page.fill("#comment-text", "补充：二楼扶手也有点松。")
    page.click("#step-comment [data-submit]")
    page.wait_for_selector("text=补充：二楼扶手也有点松。")
    assert IssueEvent.objects.filter(issue=issue, kind=IssueEvent.Kind.COMMENTED).count() == 1
    shot(page, "supervisor-07-commented")


def test_feed_shows_new_events_without_a_reload(demo, live_server, phone):
    page, base = phone, live_server.url
    log_in(page, base, "jiandu03")
    page.goto(f"{base}/feed/")
    # The live server shares the test's in-memory SQLite: a write from here while it still serves
    # the page's thumbnails fails with "database table is locked". Let the page settle first.
    page.wait_for_load_state("networkidle")
    issue = Issue.objects.filter(status=Issue.Status.SUBMITTED).first()
    handler = issue.department.members.first()
    services.comment_on_issue(issue, actor=handler, text="我们明天上午到现场看。")
    # The page polls every 20 s; the same request is triggered now rather than waited for.
    page.evaluate("htmx.trigger('#feed-poll', 'refresh')")
    page.wait_for_selector("text=我们明天上午到现场看。")
    shot(page, "supervisor-08-feed-updated")


def portrait_after_photo(path: Path) -> Path:
    Image.new("RGB", (800, 600), (60, 160, 90)).save(path, "JPEG", quality=85)
    return path


@pytest.fixture
def desk(browser_instance):
    context = browser_instance.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    yield context.new_page()
    context.close()


def test_an_issue_through_the_departments_to_closed(demo, live_server, phone, desk, tmp_path):
    """jiandu06 files; anyang signs for it in the panel and dispatches it; shigong01 reports the
    fix with an after-photo; jiandu06 verifies 满意. yuhai never sees it."""
    base = live_server.url
    log_in(phone, base, "jiandu06")
    project = Project.objects.get(name="虞池小区老旧小区改造工程")  # under way this year
    phone.goto(f"{base}/issues/new/?project={project.pk}")
    phone.check("text=安全")
    phone.fill("input[name=title]", "脚手架踏板松动")
    phone.fill("textarea[name=description]", "2 幢东侧脚手架第三层踏板松动，工人走过时晃得厉害。")
    phone.set_input_files("#id_photos", [str(heic(tmp_path / "IMG_3001.HEIC"))])
    phone.click("[data-submit]")
    phone.wait_for_url(re.compile(r"/issues/\d+/$"))
    issue = Issue.objects.get(title="脚手架踏板松动")
    assert issue.department.name == "安阳街道办事处"

    # anyang signs for it in the panel with a deadline, then dispatches it to the contractor.
    log_in(desk, base, "anyang")
    desk.goto(f"{base}/panel/supervision/issue/")
    assert desk.is_visible(f"text={issue.reference}")
    shot(desk, "department-01-panel-queue")
    desk.click(f"text={issue.reference}")
    deadline = (issue.created_at + timedelta(days=10)).date().isoformat()
    desk.fill("#accept-deadline", deadline)
    desk.fill("#accept-text", "已签收，明天上午到现场。")
    desk.click("#step-accept [data-submit]")
    desk.wait_for_selector("[data-status=accepted]")
    shot(desk, "department-02-signed-for")
    desk.select_option("#dispatch-department", label="瑞安市宏程建设有限公司")
    desk.click("#step-dispatch [data-submit]")
    desk.wait_for_selector("[data-status=in_progress]")
    issue.refresh_from_db()
    assert issue.status == "in_progress" and issue.contractor.name == "瑞安市宏程建设有限公司"
    assert timezone.localtime(issue.rectify_due_at).date().isoformat() == deadline

    # yuhai cannot see or touch it.
    log_in(desk, base, "yuhai")
    for path in (
        issue.get_absolute_url(),
        f"/panel/supervision/issue/{issue.pk}/change/",
        f"/photos/{issue.photos.first().pk}/",
    ):
        assert desk.goto(f"{base}{path}").status == 404
    desk.goto(f"{base}/panel/supervision/issue/")
    assert not desk.is_visible(f"text={issue.reference}")

    # shigong01 reports the fix with an after-photo.
    log_in(desk, base, "shigong01")
    desk.goto(f"{base}{issue.get_absolute_url()}")
    desk.fill("#rectify-text", "踏板已全部重新绑扎固定，并加设了防滑条。")
    desk.set_input_files("#rectify-photos", [str(portrait_after_photo(tmp_path / "after.jpg"))])
    desk.click("#step-rectify [data-submit]")
    desk.wait_for_selector("[data-status=rectified]")
    shot(desk, "department-03-rectified")

    # jiandu06 verifies 满意.
    phone.goto(f"{base}{issue.get_absolute_url()}")
    phone.check("text=满意 >> nth=0")
    phone.click("#step-verify [data-submit]")
    phone.wait_for_selector("[data-status=closed]")
    assert phone.inner_text("[data-status]") == "已办结"
    shot(phone, "department-04-closed")
    issue.refresh_from_db()
    assert issue.status == "closed" and issue.rating == "satisfied"
    assert list(issue.events.values_list("kind", flat=True)) == [
        "submitted",
        "accepted",
        "dispatched",
        "rectified",
        "verified",
    ]

    # The bureau makes it public; the project page shows the before/after pair to anyone.
    log_in(desk, base, "zhujianju")
    desk.goto(f"{base}/panel/supervision/issue/?q={issue.reference}")
    desk.check(f"input[name=_selected_action][value='{issue.pk}']")
    desk.select_option("select[name=action]", "make_public")
    desk.click("button[name=index]")
    desk.wait_for_selector("text=已公开 1 个问题")
    phone.context.clear_cookies()
    phone.goto(f"{base}{project.get_absolute_url()}")
    pair = phone.locator("figure", has_text=issue.title)
    assert pair.locator("img").count() == 2
    assert str(issue.reporter) not in phone.content()  # no reporter name on a public page
    shot(phone, "public-03-before-after")


def test_an_issue_left_alone_turns_red_and_reaches_the_bureau(demo, live_server, desk):
    base = live_server.url
    issue = Issue.objects.filter(status=Issue.Status.SUBMITTED).first()
    Issue.objects.filter(pk=issue.pk).update(
        sign_for_due_at=timezone.now() - timedelta(hours=3), escalated_at=None
    )
    call_command("escalate_overdue", stdout=io.StringIO())
    log_in(desk, base, "zhujianju")
    desk.goto(f"{base}/panel/supervision/issue/?escalated=open")
    row = desk.locator("#result_list tr", has_text=issue.reference)
    assert row.locator(".status-overdue").is_visible()
    shot(desk, "department-05-escalation-list")
    desk.goto(f"{base}{issue.get_absolute_url()}")
    assert desk.locator(".deadline-overdue").first.is_visible()


def result_verdicts(page) -> list[str]:
    """The 结果 column of a consultation page: one per question."""
    cells = page.locator("section[aria-labelledby=result-heading] tbody tr td:last-child")
    return [text.strip() for text in cells.all_inner_texts()]


def vote_yes_with_code(page, code: str, household: str) -> None:
    """Types the code from the slip, agrees to every question, prefers 真石漆 and a property
    management company."""
    page.fill("#code", code)
    page.click("text=去投票")
    expect(page.locator("#ballot-heading")).to_have_text(f"{household} 的选票")
    assert code.upper() not in page.url.upper()  # the code went in the POST body, not the URL
    for radio in page.locator("input[type=radio][value=yes]").all():
        radio.check()
    page.locator("fieldset", has_text="外立面整治").locator("select").select_option("真石漆")
    page.locator("fieldset", has_text="改造后由谁来管理小区").locator("select").select_option(
        "物业服务企业管理"
    )
    page.get_by_role("button", name="投票", exact=True).click()
    expect(page.locator(".alert-success")).to_contain_text(f"已收到 {household} 的选票")


def test_residents_decide_and_a_patrol_problem_becomes_an_issue(
    demo, live_server, phone, desk, tmp_path
):
    from supervision import residents
    from supervision.models import Consultation, Household

    base = live_server.url
    # This year's batch: 罗南公寓 is still being planned; jiandu25 is one of its supervisors.
    project = Project.objects.get(name="罗南公寓老旧小区改造工程")
    today = timezone.localdate()

    # zhujianju opens a consultation with the guided form: 改不改、改什么、怎么改、如何管.
    log_in(desk, base, "zhujianju")
    desk.goto(f"{base}/panel/supervision/consultation/add/")
    desk.select_option("#id_project", label=project.name)
    desk.fill("#id_title", "罗南公寓改造意愿征询")
    desk.fill("#id_opens_on", today.isoformat())
    desk.fill("#id_closes_on", (today + timedelta(days=14)).isoformat())
    desk.fill("#id_renovate_text", "是否同意对本小区进行改造")
    desk.fill("#id_building_text", "外立面整治")
    desk.fill("#id_building_options", "真石漆\n普通涂料")
    desk.fill("#id_management_text", "改造后由谁来管理小区")
    shot(desk, "residents-01-guided-form")
    desk.click("input.default")
    desk.wait_for_url(re.compile(r"/panel/supervision/consultation/\d+/import/$"))
    expect(desk.locator(".messagelist")).to_contain_text(
        "已发起「罗南公寓改造意愿征询」，共 3 个事项"
    )
    consultation = Consultation.objects.get(title="罗南公寓改造意愿征询")
    assert consultation.project == project and consultation.closes_on == today + timedelta(14)
    assert [(i.kind, i.area, i.options) for i in consultation.items.order_by("position")] == [
        ("renovate", "", ""),
        ("scope", "building", "真石漆\n普通涂料"),
        ("management", "", "物业服务企业管理\n业主委员会管理\n居民自治管理"),
    ]

    # It lands on the household import: 40 households, two rows refused.
    rows = ["楼栋,单元,室"] + [f"{b} 幢,1 单元,{r}" for b in range(1, 5) for r in range(101, 111)]
    csv_file = tmp_path / "households.csv"
    csv_file.write_text("\n".join(rows + [",,", "5 幢,1 单元,"]), encoding="utf-8")
    desk.set_input_files("#id_file", str(csv_file))
    desk.click("input.default")
    desk.wait_for_selector("text=成功导入 40 户")
    assert consultation.households.count() == 40
    shot(desk, "residents-02-households-imported")

    # The slips to hand out: each household's code, and the page's address (no code in it).
    desk.click("text=打印投票通知单")
    slips = desk.locator(".slip")
    expect(slips).to_have_count(40)
    url = f"{base}{consultation.get_absolute_url()}"
    assert slips.first.locator(".text-break").inner_text() == url
    slip = []
    for n in range(4):
        text = slips.nth(n).inner_text()
        household = re.search(r"住户：(.+)", text).group(1).strip()
        slip.append((household, slips.nth(n).locator(".font-monospace").inner_text().strip()))

    # A resident mistypes the code: it stays in its field, with why beside it.
    phone.context.clear_cookies()
    phone.goto(url)
    expect(phone.locator("main")).to_contain_text("投票进行中")
    phone.fill("#code", "ABCD-EFGH-JKLM")
    phone.click("text=去投票")
    expect(phone.locator("#code-error")).to_contain_text("投票码不正确")
    assert phone.input_value("#code") == "ABCD-EFGH-JKLM"

    # Two households vote on their own phones, one in lowercase; on the second phone a
    # neighbour then votes too, after 「不是这一户？换一个投票码」.
    vote_yes_with_code(phone, slip[0][1], slip[0][0])
    shot(phone, "residents-03-ballot")
    phone.context.clear_cookies()
    phone.goto(url)
    vote_yes_with_code(phone, slip[1][1].lower(), slip[1][0])
    phone.click("text=不是这一户？换一个投票码")
    vote_yes_with_code(phone, slip[2][1], slip[2][0])

    # jiandu25 enters one paper ballot (代录), from 我的.
    log_in(phone, base, "jiandu25")
    phone.click("text=代录纸质选票：罗南公寓改造意愿征询")
    phone.select_option("select[name=household]", label=slip[3][0])
    for radio in phone.locator("input[type=radio][value=yes]").all():
        radio.check()
    phone.click("text=保存代录选票")
    phone.wait_for_selector("text=已代录")
    paper = Household.objects.get(consultation=consultation, code=slip[3][1])
    assert paper.ballot.entered_by.username == "jiandu25"
    answers = {item.pk: (True, "") for item in consultation.items.all()}
    for household in consultation.households.filter(ballot__isnull=True)[:24]:
        residents.cast_ballot(consultation, household, answers)

    # While the vote is open anyone sees the live count, and no item is said to have passed.
    phone.context.clear_cookies()
    phone.goto(url)
    text = phone.inner_text("main")
    assert "参与户数 28 / 40" in text and "其中代录纸质选票 1 张" in text
    assert "目前投票情况（实时）" in text and "投票截止后公布是否通过" in text
    assert result_verdicts(phone) == ["投票中"] * 3
    shot(phone, "residents-04-live-count")

    # Once it has closed, the page says what was decided.
    Consultation.objects.filter(pk=consultation.pk).update(
        opens_on=today - timedelta(days=15), closes_on=today - timedelta(days=1)
    )
    phone.reload()
    text = phone.inner_text("main")
    assert "已截止" in text and "征询结果" in text and "参与率已达到要求" in text
    assert "真石漆（3）" in text and "物业服务企业管理（3）" in text
    assert result_verdicts(phone) == ["通过"] * 3
    expect(phone.locator("#code")).to_have_count(0)  # no more voting
    shot(phone, "residents-05-result")

    # jiandu07 logs a patrol with one problem and turns it into an issue in one tap.
    log_in(phone, base, "jiandu07")
    phone.goto(f"{base}/patrols/new/")
    phone.select_option("select[name=project]", index=1)
    phone.check("input[name=check-fencing][value=problem]")
    phone.fill("input[name=note-fencing]", "3 幢北侧围挡倒了一段，小孩可以直接走进工地。")
    phone.set_input_files(
        "input[name=photos-fencing]", [str(portrait_after_photo(tmp_path / "fence.jpg"))]
    )
    phone.click("[data-submit]")
    phone.wait_for_selector("text=巡查记录已保存")
    shot(phone, "residents-06-patrol")
    phone.click("text=转为问题反映")
    phone.wait_for_url(re.compile(r"/issues/\d+/$"))
    issue = Issue.objects.get(title="巡查发现：围挡")
    assert issue.category == "safety" and issue.photos.count() == 1
    assert "围挡倒了一段" in issue.description
    shot(phone, "residents-07-patrol-issue")


def test_the_public_follows_the_qr_and_the_bureau_reads_the_figures(
    demo, live_server, phone, desk, tmp_path
):
    import openpyxl
    import segno

    base = live_server.url
    # A site of this year's batch under way, whose fixed problems are public with their photos.
    project = Project.objects.get(name="新街小区老旧小区改造工程")
    assert project.status == Project.Status.CONSTRUCTION
    # The notice board's QR code carries the project page's own address.
    notice = desk.goto(f"{base}/projects/{project.pk}/notice/")
    assert notice.status == 200
    url = f"{base}/projects/{project.pk}/"
    expected = segno.make(url, error="m").svg_inline(scale=8, title=url, border=2, omitsize=True)
    assert expected in notice.text()
    shot(desk, "public-01-notice")

    phone.goto(url)
    text = phone.inner_text("main")
    for milestone in ("征询", "设计", "开工", "完工", "验收"):
        assert milestone in text
    assert f"总体进度\n{project.progress()}%" in text and "整改前后" in text
    # The before/after photos render (waited for: a loaded machine serves them late).
    expect(phone.locator(".photo-pair img").first).to_be_visible()
    assert phone.locator(".photo-pair img").first.evaluate("img => img.complete")
    shot(phone, "public-02-project-page")

    # The residents' consultation on it is linked from the top of the page, closed and decided.
    consultation = phone.locator("[data-consultation-link]")
    expect(consultation).to_contain_text("已截止")
    consultation.click()
    expect(phone.locator("#result-heading")).to_have_text("征询结果")
    assert "通过" in result_verdicts(phone) and "投票中" not in result_verdicts(phone)
    shot(phone, "public-03-consultation-result")

    # zhujianju lands on the figures and asks for all of them with the 全部 button.
    log_in(desk, base, "zhujianju")
    assert desk.url == f"{base}/dashboard/"
    desk.get_by_role("link", name="全部", exact=True).click()
    desk.wait_for_url(f"{base}/dashboard/?preset=all")
    expect(desk.locator(".period-presets [aria-current=true]")).to_have_text("全部")
    expect(desk.locator("#period-label")).to_have_text("全部")
    assert desk.locator("svg.chart-svg").count() == 3
    filed = desk.locator(".figure").first.inner_text()
    # Ruian's bureau counts Ruian's issues (the demo's 乐清 has its own bureau).
    ruian = Issue.objects.filter(project__neighbourhood__subdistrict__region__code="330381")
    assert filed == str(ruian.count())
    # The numbers behind a chart are folded under it, one tap away.
    categories = desk.locator("section[aria-labelledby=category-heading] details")
    expect(categories.locator("table")).not_to_be_visible()
    categories.locator("summary").click()
    expect(categories.locator("table")).to_be_visible()
    counts = categories.locator("tbody td").all_inner_texts()
    assert sum(int(count) for count in counts) == ruian.count()
    shot(desk, "bureau-01-dashboard")
    with desk.expect_download() as download:
        desk.click("text=导出 Excel")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".xlsx"
    book = openpyxl.load_workbook(saved)
    assert {"统计", "问题清单"} <= set(book.sheetnames)
    assert book["问题清单"].max_row == ruian.count() + 1

    # anyang lands on the panel's queue; its figures are its own.
    log_in(desk, base, "anyang")
    desk.goto(f"{base}/dashboard/")
    desk.get_by_role("link", name="全部", exact=True).click()
    desk.wait_for_url(f"{base}/dashboard/?preset=all")
    anyang = Issue.objects.filter(department__name="安阳街道办事处").count()
    assert desk.locator(".figure").first.inner_text() == str(anyang)
    assert "玉海街道办事处" not in desk.inner_text("main")
    shot(desk, "department-06-dashboard-anyang")


# --- 群众监督员 on their own phones: WeChat's browser on Android (issue 16) ----------------------

WECHAT_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin "
    "NetType/WIFI Language/zh_CN ABI/arm64"
)
# jiandu06 watches it; it is 安阳街道办事处's, so anyang sees what is filed on it.
PROJECT = "虞池小区老旧小区改造工程"  # under way this year (a finished one is in warranty)
MB = 1024 * 1024

# Every FormData the page sends through XMLHttpRequest: the size of each file in it, kept in
# sessionStorage so that it can still be read on the page the form leads to.
RECORD_UPLOADS = """(() => {
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (body) {
    if (body instanceof FormData) {
      const files = [];
      for (const [field, value] of body.entries()) {
        if (value instanceof Blob) {
          files.push({field: field, name: value.name || "", type: value.type, size: value.size});
        }
      }
      const sent = JSON.parse(sessionStorage.getItem("uploads") || "[]");
      sent.push(files);
      sessionStorage.setItem("uploads", JSON.stringify(sent));
    }
    return send.call(this, body);
  };
})();"""


def uploads(page) -> list[list[dict]]:
    return json.loads(page.evaluate("sessionStorage.getItem('uploads') || '[]'"))


def wait_until(page, script: str, timeout: float = 20):
    """Poll an expression (the pages' CSP forbids the eval behind ``wait_for_function``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {script}")
        page.wait_for_timeout(100)


RED, GREEN, BLUE = (200, 40, 40), (40, 160, 60), (40, 60, 200)


def camera_photo(path: Path, color, *, size=(4000, 3000), exif: bytes | None = None) -> Path:
    """A 12-megapixel phone photo: a busy scene (lines and sensor noise) that a phone saves at
    2–3 MB, mostly one colour so that it can be told apart once stored."""
    width, height = size
    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 97):
        draw.line([(x, 0), (width - x, height)], fill=(250, 250, 250), width=9)
    image = Image.blend(image, Image.effect_noise(size, 16).convert("RGB"), 0.1)
    image.save(path, "JPEG", quality=90, **({"exif": exif} if exif else {}))
    return path


def upright_camera_photo_with_gps(path: Path) -> Path:
    """Like ``portrait_jpeg_with_gps`` at 12 megapixels, all red: stored 4000 × 3000 sideways
    with EXIF orientation 6 (a phone held upright) and the position where it was taken."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (27.0, 46.0, 48.0), 3: "E", 4: (120.0, 39.0, 36.0)}
    return camera_photo(path, RED, exif=exif.tobytes())


@pytest.fixture(scope="session")
def camera_photos(tmp_path_factory):
    """Three 12-megapixel photos, one red, one green, one blue (made once: each takes a second)."""
    folder = tmp_path_factory.mktemp("camera")
    return {
        name: camera_photo(folder / f"IMG_{name}.jpg", color)
        for name, color in (("red", RED), ("green", GREEN), ("blue", BLUE))
    }


def dominant_colour(field) -> str:
    with default_storage.open(field.name) as stored:
        means = ImageStat.Stat(Image.open(stored).convert("RGB")).mean
    return ("red", "green", "blue")[means.index(max(means))]


@pytest.fixture
def wechat(browser_instance):
    """Opens a page in WeChat's browser on an Android phone of the given size."""
    contexts = []

    def open_page(width=375, height=740, *, browser=None, **options):
        context = (browser or browser_instance).new_context(
            viewport={"width": width, "height": height},
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            user_agent=WECHAT_ANDROID,
            **options,
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def browser_with_microphone(browser_instance):
    """A second Chromium whose microphone is Chromium's fake one (a beep), allowed without a
    prompt: the session's browser has no such device."""
    browser = browser_instance.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
        ],
    )
    yield browser
    browser.close()


def thumbnails(page):
    return page.locator("[data-photo-previews] figure")


def wait_for_decoded_thumbnails(page, count: int) -> list[int]:
    """The thumbnails are real pictures: each has been decoded and has a width."""
    expect(page.locator("[data-photo-previews] img")).to_have_count(count)
    return wait_until(
        page,
        "(() => { const widths = [...document.querySelectorAll('[data-photo-previews] img')]"
        ".map(img => img.complete ? img.naturalWidth : 0);"
        " return widths.every(w => w > 0) && widths; })()",
    )


def fill_in_the_issue(
    page, title: str, description: str = "", category: str = "质量", project: str | None = None
) -> None:
    """Chooses the project (the named one, or the first of theirs), a category pill and types."""
    select = page.locator("#id_project")
    if select.count():  # one watched project only: the form names it instead of asking
        select.select_option(**({"label": project} if project else {"index": 1}))
    page.locator("[data-field=category] label", has_text=category).click()
    page.fill("#id_title", title)
    if description:
        page.fill("#id_description", description)


def file_it(page) -> Issue:
    page.click("[data-submit]")
    page.wait_for_url(re.compile(r"/issues/\d+/$"), timeout=30_000)
    return Issue.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def issue_page_photos(page):
    return page.locator("section", has=page.locator("h2", has_text="问题照片")).locator("img")


def loaded_widths(page, images) -> list[int]:
    """Scrolls each (lazy-loaded) image into view and returns the widths it decoded to."""
    widths = []
    for index in range(images.count()):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        expect(image).to_be_visible()
        deadline = time.monotonic() + 10
        while not (width := image.evaluate("img => img.complete ? img.naturalWidth : 0")):
            assert time.monotonic() < deadline, "a photo on the issue page did not load"
            page.wait_for_timeout(100)
        widths.append(width)
    return widths


@pytest.mark.parametrize("width,height", [(375, 740), (320, 700)], ids=["375px", "320px"])
def test_photos_from_the_camera_and_the_album_add_up_and_one_can_be_taken_out(
    demo, live_server, wechat, camera_photos, width, height
):
    page, base = wechat(width, height), live_server.url
    page.add_init_script(RECORD_UPLOADS)
    log_in(page, base, "jiandu03")
    page.goto(f"{base}/issues/new/")

    # 拍照 adds one; 从相册选 adds two more to it rather than replacing it.
    page.set_input_files("#id_photos-camera", str(camera_photos["red"]))
    wait_for_decoded_thumbnails(page, 1)
    page.set_input_files("#id_photos", [str(camera_photos["green"]), str(camera_photos["blue"])])
    assert len(wait_for_decoded_thumbnails(page, 3)) == 3
    expect(page.locator("[data-photo-count]")).to_have_text("已选 3 张，最多 9 张")
    shot(page, f"photos-{width}-01-three-thumbnails")

    # The × on the second (green) one takes it out; the other two stay.
    thumbnails(page).nth(1).locator(".photo-remove").click()
    assert len(wait_for_decoded_thumbnails(page, 2)) == 2
    expect(page.locator("[data-photo-count]")).to_have_text("已选 2 张，最多 9 张")
    shot(page, f"photos-{width}-02-one-taken-out")

    fill_in_the_issue(page, "北面外墙脚手架没有安全网", "3 幢北面，工人在上面作业，下面是通道。")
    issue = file_it(page)
    photos = issue_page_photos(page)
    expect(photos).to_have_count(2)
    assert all(w > 0 for w in loaded_widths(page, photos))
    shot(page, f"photos-{width}-03-filed")

    stored = list(Photo.objects.filter(issue=issue).order_by("pk"))
    assert [photo.kind for photo in stored] == [Photo.Kind.BEFORE] * 2
    assert [dominant_colour(photo.image) for photo in stored] == ["red", "blue"]
    # Each 12-megapixel photo went up shrunk on the phone.
    (sent,) = uploads(page)
    chosen = [camera_photos[c].stat().st_size for c in ("red", "blue")]
    print(f"\n{width}px: chosen {chosen} bytes, sent {[f['size'] for f in sent]} bytes")
    assert len(sent) == 2 and all(f["type"] == "image/jpeg" and f["size"] <= MB for f in sent)


def test_sending_without_a_photo_keeps_the_text_and_shows_what_is_missing_in_view(
    demo, live_server, wechat
):
    page, base = wechat(320, 700), live_server.url
    log_in(page, base, "jiandu03")
    page.goto(f"{base}/issues/new/")
    fill_in_the_issue(page, "楼道里堆满了建筑垃圾", "二单元一楼到三楼的楼道堆了好几天的碎砖。")
    page.locator("[data-submit]").scroll_into_view_if_needed()  # 提交 is at the bottom
    page.click("[data-submit]")

    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("请至少拍一张现场照片")
    box = summary.bounding_box()
    assert -1 <= box["y"] <= 700, f"the summary is out of sight: {box}"
    assert page.input_value("#id_title") == "楼道里堆满了建筑垃圾"
    assert page.input_value("#id_description") == "二单元一楼到三楼的楼道堆了好几天的碎砖。"
    assert page.locator("[data-field=category] input:checked").count() == 1
    assert not Issue.objects.filter(title="楼道里堆满了建筑垃圾").exists()
    shot(page, "photos-320-04-summary-in-view", full_page=False)

    # Its line leads to the photo buttons.
    summary.get_by_role("link", name="请至少拍一张现场照片").click()
    camera = page.locator("label[for=id_photos-camera]")
    expect(camera).to_be_in_viewport()


def test_a_12_megapixel_photo_goes_up_under_1_mb_upright_without_gps_and_heic_files(
    demo, live_server, wechat, camera_photos, tmp_path
):
    page, base = wechat(375, 740), live_server.url
    page.add_init_script(RECORD_UPLOADS)
    log_in(page, base, "jiandu03")

    # One photo as the phone saved it: 4000 × 3000 sideways, turned by EXIF, with GPS.
    original = upright_camera_photo_with_gps(tmp_path / "IMG_20240312_101500.jpg")
    page.goto(f"{base}/issues/new/")
    page.set_input_files("#id_photos-camera", str(original))
    wait_for_decoded_thumbnails(page, 1)
    fill_in_the_issue(page, "3 幢外墙保温板脱落", "三楼窗边的保温板掉下来一块，楼下是小区通道。")
    issue = file_it(page)
    (sent,) = uploads(page)
    print(f"\none photo: {original.stat().st_size} bytes chosen, sent {[f['size'] for f in sent]}")
    assert [f["type"] for f in sent] == ["image/jpeg"] and sent[0]["size"] <= MB
    (photo,) = issue.photos.all()
    assert photo.height > photo.width  # upright
    assert dominant_colour(photo.image) == "red"
    for field in (photo.image, photo.thumbnail):
        data = default_storage.open(field.name).read()
        assert b"GPS" not in data
        assert not Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    assert issue.latitude is None  # no consent was given to share the position

    # An iPhone's HEIC among two 12-megapixel photos: a labelled tile, and it files.
    page.goto(f"{base}/issues/new/")
    page.set_input_files(
        "#id_photos",
        [
            str(heic(tmp_path / "IMG_2041.HEIC")),
            str(camera_photos["green"]),
            str(camera_photos["blue"]),
        ],
    )
    expect(thumbnails(page)).to_have_count(3)
    expect(page.locator("[data-photo-previews] .photo-heic")).to_have_text("HEIC 照片")
    wait_for_decoded_thumbnails(page, 2)
    shot(page, "photos-375-05-heic-tile")
    fill_in_the_issue(page, "新装的雨水管接口漏水", "5 幢西侧雨水管接口处一下雨就往墙上流水。")
    issue = file_it(page)
    sent = uploads(page)[-1]
    chosen = [tmp_path.joinpath("IMG_2041.HEIC").stat().st_size] + [
        camera_photos[c].stat().st_size for c in ("green", "blue")
    ]
    print(f"three photos: {chosen} bytes chosen, sent {[f['size'] for f in sent]}")
    assert len(sent) == 3 and all(f["size"] <= MB for f in sent)
    assert issue.photos.count() == 3
    expect(issue_page_photos(page)).to_have_count(3)


def draft_banner(page):
    return page.locator("#draft-banner")


def drafts_on_the_phone(page) -> int:
    return page.evaluate("window.Drafts.mine().then(drafts => drafts.length)")


def write_offline(page, base: str, title: str, photo: Path) -> None:
    page.goto(f"{base}/issues/new/")
    page.set_input_files("#id_photos", [str(photo)])
    wait_for_decoded_thumbnails(page, 1)
    fill_in_the_issue(page, title, "没有信号，先存在手机上。", category="安全")
    page.context.set_offline(True)
    page.click("[data-submit]")
    expect(draft_banner(page)).to_contain_text("有 1 条反映还没发出去")
    page.context.set_offline(False)


def test_an_issue_written_offline_is_kept_and_sent_once_and_logging_out_clears_drafts(
    demo, live_server, wechat, tmp_path
):
    page, base = wechat(320, 700), live_server.url
    photo = portrait_after_photo(tmp_path / "IMG_0420.jpg")
    log_in(page, base, "jiandu03")
    title = "断网时写的反映：脚手架下没有围挡"
    write_offline(page, base, title, photo)
    expect(page.locator("[data-upload-status]")).to_contain_text("已保存在手机上")
    shot(page, "offline-320-01-kept-on-the-phone")
    assert not Issue.objects.filter(title=title).exists()

    # Back online, even after a reload, it is still there; 现在发送 (tapped twice) files it once.
    page.reload()
    expect(draft_banner(page)).to_contain_text("有 1 条反映还没发出去")
    page.locator("[data-send-drafts]").dblclick()
    page.wait_for_url(re.compile(r"/issues/\d+/$"), timeout=30_000)
    expect(page.locator("h1")).to_contain_text(title)
    shot(page, "offline-320-02-sent")
    page.goto(f"{base}/me/")
    assert drafts_on_the_phone(page) == 0
    expect(draft_banner(page)).to_have_count(0)
    assert Issue.objects.filter(title=title).count() == 1
    assert Issue.objects.get(title=title).photos.count() == 1

    # A second draft is still on the phone when its owner logs out: logging out clears it.
    write_offline(page, base, "退出前没发出去的反映", photo)
    page.goto(f"{base}/me/")
    expect(draft_banner(page)).to_contain_text("有 1 条反映还没发出去")
    page.click(".navbar-toggler")
    page.click("form[data-logout] button")
    page.wait_for_url(f"{base}/")
    log_in(page, base, "jiandu03")
    page.goto(f"{base}/me/")
    assert drafts_on_the_phone(page) == 0
    expect(draft_banner(page)).to_have_count(0)
    assert not Issue.objects.filter(title="退出前没发出去的反映").exists()


def test_a_voice_note_recorded_on_the_phone_plays_for_the_department(
    demo, live_server, wechat, browser_with_microphone, browser_instance, tmp_path
):
    page = wechat(375, 740, browser=browser_with_microphone, permissions=["microphone"])
    base = live_server.url
    log_in(page, base, "jiandu06")
    page.goto(f"{base}/issues/new/")
    record = page.locator("[data-voice-record]")
    expect(record).to_have_text("按住说话")
    page.set_input_files("#id_photos", [str(portrait_after_photo(tmp_path / "IMG_0501.jpg"))])
    fill_in_the_issue(page, "进度拖了半个月，说一下情况", category="进度", project=PROJECT)

    record.click()  # a tap starts it …
    expect(record).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(2200)
    record.click()  # … and a second tap ends it
    expect(page.locator("[data-voice-preview]")).to_be_visible()
    expect(page.locator("[data-voice-status]")).to_contain_text(re.compile(r"已录 [23] 秒"))
    expect(record).to_have_text("重新录")
    shot(page, "voice-375-01-recorded")
    issue = file_it(page)
    (note,) = issue.events.get(kind=IssueEvent.Kind.SUBMITTED).voice_notes.all()
    assert note.seconds > 1

    # anyang at the desk hears it.
    desk = browser_instance.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    try:
        office = desk.new_page()
        log_in(office, base, "anyang")
        office.goto(f"{base}{issue.get_absolute_url()}")
        audio = office.locator(".voice-note audio")
        expect(audio).to_have_count(1)
        expect(audio).to_be_visible()
        audio.evaluate("audio => audio.load()")
        duration = wait_until(
            office,
            "(() => { const a = document.querySelector('.voice-note audio');"
            " return a.readyState >= 1 && a.duration; })()",
        )
        assert 1 < duration < 10
        box = audio.bounding_box()
        audio.click(position={"x": 20, "y": box["height"] / 2})  # the ▶ at the left of the player
        played = wait_until(
            office, "document.querySelector('.voice-note audio').currentTime > 0.3", timeout=10
        )
        assert played
        shot(office, "voice-1366-02-anyang-listens")
        print(f"\nvoice note: {note.seconds} s stored, {duration:.2f} s in the browser")
    finally:
        desk.close()


def test_a_patrols_items_share_nine_photos_and_the_page_says_what_is_left(
    demo, live_server, wechat, tmp_path
):
    """Nine photos for the whole patrol (the server refuses more in one request): choosing six
    for 围挡 and then five for 扬尘 adds three, says why next to the picker, and every picker
    tells how many are left; the patrol then goes up with all nine."""
    page, base = wechat(320, 640), live_server.url
    colours = [(40 * k % 255, 90, 160) for k in range(11)]
    files = []
    for k, colour in enumerate(colours):
        path = tmp_path / f"IMG_{k:04d}.jpg"
        Image.new("RGB", (640, 480), colour).save(path, quality=80)
        files.append(str(path))
    log_in(page, base, "jiandu07")
    page.goto(f"{base}/patrols/new/")
    page.select_option("select[name=project]", index=1)
    for item, note in (("fencing", "北侧围挡倒了一段。"), ("dust", "渣土没有覆盖。")):
        page.check(f"input[name=check-{item}][value=problem]")
        page.fill(f"input[name=note-{item}]", note)
    page.set_input_files("#id_photos-fencing", files[:6])
    fencing = page.locator("[data-photo-picker][data-name=photos-fencing]")
    dust = page.locator("[data-photo-picker][data-name=photos-dust]")
    expect(fencing.locator("[data-photo-count]")).to_have_text("已选 6 张，这次还能再选 3 张")
    expect(dust.locator("[data-photo-count]")).to_have_text("这次还能再选 3 张")
    # She scrolls to 扬尘's 从相册选 and picks five.
    page.locator("label.photo-button[for=id_photos-dust]").scroll_into_view_if_needed()
    page.set_input_files("#id_photos-dust", files[6:])
    expect(dust.locator("[data-photo-previews] figure")).to_have_count(3)
    problem = dust.locator("[data-photo-problems]")
    expect(problem).to_have_text("这次一共最多 9 张照片，多选的没有加上。")
    box = problem.bounding_box()
    tabs = page.locator("nav.tabbar").bounding_box()
    bottom = tabs["y"] if tabs else 640
    assert box is not None and 0 <= box["y"] <= bottom - box["height"], "the reason is in view"
    expect(fencing.locator("[data-photo-count]")).to_have_text("已选 6 张，这次还能再选 0 张")
    shot(page, "patrol-photos-320-shared-allowance", full_page=False)
    page.click("[data-submit]")
    page.wait_for_selector("text=巡查记录已保存")
    from supervision.models import Patrol, PatrolPhoto

    patrol = Patrol.objects.latest("pk")
    assert PatrolPhoto.objects.filter(check_item__patrol=patrol).count() == 9
