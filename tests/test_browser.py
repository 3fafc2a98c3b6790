"""In a real browser, as a resident meets the product: Debian's Chromium at 375 × 812.

Screenshots of each step go to ``screenshots/`` (git-ignored): look at them, Chinese text must
render. Runs whenever /usr/bin/chromium exists (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image, ImageDraw

from supervision import services
from supervision.models import Issue, IssueEvent

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
def demo(transactional_db, settings):
    settings.DEMO_DATA_ALLOWED = True
    call_command("load_demo", verbosity=0, stdout=io.StringIO())


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
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


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
