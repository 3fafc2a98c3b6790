"""In a real browser, as a resident meets the product: Debian's Chromium at 375 × 812.

Screenshots of each step go to ``screenshots/`` (git-ignored): look at them, Chinese text must
render. Runs whenever /usr/bin/chromium exists (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from PIL import Image, ImageDraw

from supervision import services
from supervision.models import Issue, IssueEvent, Project

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


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


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
    page.set_input_files("input[name=photos]", [str(evil)])
    page.click("[data-submit]")
    page.wait_for_selector(".invalid-feedback:has-text('evil.svg')")
    assert "不是支持的照片格式" in page.inner_text("form#issue-form")
    assert page.input_value("input[name=title]") == "3 幢楼道扶手松动"
    assert not Issue.objects.filter(title="3 幢楼道扶手松动").exists()
    shot(page, "supervisor-02-hostile-file-refused")

    # Two photos — a portrait JPEG with GPS and an iPhone HEIC — with the position consent.
    photos = [portrait_jpeg_with_gps(tmp_path / "IMG_0001.jpg"), heic(tmp_path / "IMG_2041.HEIC")]
    page.set_input_files("input[name=photos]", [str(p) for p in photos])
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
    project = Project.objects.get(name="西山花园老旧小区改造工程")
    phone.goto(f"{base}/issues/new/?project={project.pk}")
    phone.check("text=安全")
    phone.fill("input[name=title]", "脚手架踏板松动")
    phone.fill("textarea[name=description]", "2 幢东侧脚手架第三层踏板松动，工人走过时晃得厉害。")
    phone.set_input_files("input[name=photos]", [str(heic(tmp_path / "IMG_3001.HEIC"))])
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


def test_residents_decide_and_a_patrol_problem_becomes_an_issue(
    demo, live_server, phone, desk, tmp_path
):
    from supervision import residents
    from supervision.models import Consultation, Household

    base = live_server.url
    project = Project.objects.get(name="西山花园老旧小区改造工程")
    today = timezone.localdate()

    # zhujianju opens a consultation in the panel and imports 40 households.
    log_in(desk, base, "zhujianju")
    desk.goto(f"{base}/panel/supervision/consultation/add/")
    desk.select_option("#id_project", label=project.name)
    desk.fill("#id_title", "西山花园改造意愿征询")
    desk.fill("#id_opens_on", today.isoformat())
    desk.fill("#id_closes_on", (today + timedelta(days=14)).isoformat())
    desk.select_option("#id_items-0-kind", "renovate")
    desk.fill("#id_items-0-text", "是否同意对本小区进行改造")
    desk.select_option("#id_items-1-kind", "scope")
    desk.select_option("#id_items-1-area", "building")
    desk.fill("#id_items-1-text", "外立面整治")
    desk.fill("#id_items-1-options", "真石漆\n普通涂料")
    desk.select_option("#id_items-2-kind", "management")
    desk.fill("#id_items-2-text", "改造后引入物业管理")
    desk.click("input[name=_save]")
    consultation = Consultation.objects.get(title="西山花园改造意愿征询")
    rows = ["楼栋,单元,室"] + [f"{b} 幢,1 单元,{r}" for b in range(1, 5) for r in range(101, 111)]
    csv_file = tmp_path / "households.csv"
    csv_file.write_text("\n".join(rows + [",,", "5 幢,1 单元,"]), encoding="utf-8")
    desk.goto(f"{base}/panel/supervision/consultation/{consultation.pk}/import/")
    desk.set_input_files("#id_file", str(csv_file))
    desk.click("input[type=submit]")
    desk.wait_for_selector("text=成功导入 40 户")
    assert consultation.households.count() == 40
    shot(desk, "residents-01-households-imported")

    # Votes through codes on a phone, then one paper ballot entered by a supervisor (代录).
    households = list(Household.objects.filter(consultation=consultation).order_by("pk"))
    for household in households[:3]:
        phone.context.clear_cookies()
        phone.goto(f"{base}{consultation.get_absolute_url()}?code={household.code}")
        for radio in phone.locator("input[type=radio][value=yes]").all():
            radio.check()
        phone.select_option("select[name^=option-]", "真石漆")
        phone.click("main form button[type=submit]")
        phone.wait_for_selector("text=已收到")
    shot(phone, "residents-02-ballot")
    log_in(phone, base, "jiandu06")
    phone.goto(f"{base}/consultations/{consultation.pk}/paper/")
    phone.select_option("select[name=household]", str(households[3].pk))
    for radio in phone.locator("input[type=radio][value=yes]").all():
        radio.check()
    phone.click("main form button[type=submit]")
    phone.wait_for_selector("text=已代录")
    assert households[3].ballot.entered_by.username == "jiandu06"
    answers = {item.pk: (True, "") for item in consultation.items.all()}
    for household in households[4:28]:
        residents.cast_ballot(consultation, household, answers)

    phone.goto(f"{base}{consultation.get_absolute_url()}")
    text = phone.inner_text("main")
    assert "参与户数 28 / 40" in text and "其中代录纸质选票 1 张" in text
    assert phone.locator("text=通过").count() >= 3
    shot(phone, "residents-03-result")

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
    shot(phone, "residents-04-patrol")
    phone.click("text=转为问题反映")
    phone.wait_for_url(re.compile(r"/issues/\d+/$"))
    issue = Issue.objects.get(title="巡查发现：围挡")
    assert issue.category == "safety" and issue.photos.count() == 1
    assert "围挡倒了一段" in issue.description
    shot(phone, "residents-05-patrol-issue")


def test_the_public_follows_the_qr_and_the_bureau_reads_the_figures(
    demo, live_server, phone, desk, tmp_path
):
    import openpyxl
    import segno

    base = live_server.url
    project = Project.objects.filter(issues__is_public=True, issues__status="closed").first()
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
    assert "总体进度" in text and "整改前后" in text
    assert phone.locator(".photo-pair img").first.is_visible()
    shot(phone, "public-02-project-page")

    log_in(desk, base, "zhujianju")
    desk.goto(f"{base}/dashboard/?preset=all")
    assert desk.locator("svg.chart-svg").count() == 3
    filed = desk.locator(".figure").first.inner_text()
    assert filed == str(Issue.objects.count())
    shot(desk, "bureau-01-dashboard")
    with desk.expect_download() as download:
        desk.click("text=导出 Excel")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".xlsx"
    book = openpyxl.load_workbook(saved)
    assert {"统计", "问题清单"} <= set(book.sheetnames)
    assert book["问题清单"].max_row == Issue.objects.count() + 1

    log_in(desk, base, "anyang")
    desk.goto(f"{base}/dashboard/?preset=all")
    anyang = Issue.objects.filter(department__name="安阳街道办事处").count()
    assert desk.locator(".figure").first.inner_text() == str(anyang)
    assert "玉海街道办事处" not in desk.inner_text("main")
    shot(desk, "department-06-dashboard-anyang")
