"""How much photo decoding one request may ask for (supervision/photos.py, ``check_photos``).

Every form that takes photos takes at most nine in one request (a resident's letter three, a
patrol nine over all its items), and at most ``PHOTO_MAX_PIXELS_PER_REQUEST`` pixels together,
read from the files' headers: a refused request decodes nothing, says why in Chinese beside the
photo field, keeps what was typed, and stores nothing. The decoding itself is checked at scale:
JPEG drafts, bands of other formats, orientation, colours. And a real gunicorn keeps answering
/healthz and the home page while two of the largest accepted requests are being decoded.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from supervision import acceptance as acceptance_service
from supervision import letters, photos, residents, services
from supervision.models import (
    AcceptanceEvent,
    AcceptancePhoto,
    AcceptanceView,
    Consultation,
    Household,
    Issue,
    IssueEvent,
    Letter,
    LetterEvent,
    LetterPhoto,
    Patrol,
    PatrolCheck,
    PatrolPhoto,
    Photo,
    Project,
)

# Pillow warns between its bomb limit (ours, 50 MP) and twice it; we refuse those ourselves.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
NINE = "一次最多上传 9 张照片，您选了 10 张。"
THREE = "最多附 3 张照片，您选了 4 张。"
TOO_MANY_PIXELS = "照片的像素合计过大"
CHECKS = list(Patrol.Check.values)


# --- files -------------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


SMALL_JPEG = encoded(Image.new("RGB", (8, 6), (200, 80, 40)), "JPEG")


def small_photos(n: int, prefix: str = "p") -> list[SimpleUploadedFile]:
    data = SMALL_JPEG
    return [
        SimpleUploadedFile(f"{prefix}{k}.jpg", data, content_type="image/jpeg") for k in range(n)
    ]


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    """7000 × 7000 in one bit of one colour: 5 KB of PNG, 49 MP once decoded."""
    return encoded(Image.new("1", (7000, 7000)), "PNG", optimize=True)


def bombs(data: bytes, n: int, prefix: str = "big") -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile(f"{prefix}{k}.png", data, content_type="image/png") for k in range(n)
    ]


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail loudly if any image gets decoded (its pixels, not its header)."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"decoded {self.size} pixels")

    def refuse_heif(data):
        raise AssertionError("decoded a HEIC photo")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr(photos, "_decode_heif", refuse_heif)


# --- what a refusal leaves -------------------------------------------------------------------


def snapshot() -> tuple:
    counted = (
        Issue,
        IssueEvent,
        Photo,
        Patrol,
        PatrolCheck,
        PatrolPhoto,
        Letter,
        LetterEvent,
        LetterPhoto,
        AcceptancePhoto,
        AcceptanceEvent,
    )
    views = list(AcceptanceView.objects.values().order_by("pk"))
    issues = list(Issue.objects.values("pk", "status", "updated_at").order_by("pk"))
    return {m.__name__: m.objects.count() for m in counted}, views, issues, stored_files()


def stored_files() -> list[str]:
    root = Path(default_storage.location)
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def field_errors(page: str, field_id: str) -> str:
    """The error block rendered under the field whose input has the id ``field_id``."""
    match = re.search(
        rf'<div id="{re.escape(field_id)}_error" class="invalid-feedback">(.*?)</div>', page, re.S
    )
    return match.group(1) if match else ""


# --- every form that takes photos ------------------------------------------------------------


def _schedule(world):
    """The 安阳 project completed, an acceptance with three representatives (Alice invited)."""
    Project.objects.filter(pk=world.project.pk).update(status=Project.Status.COMPLETED)
    world.project.refresh_from_db()
    today = timezone.localdate()
    consultation = Consultation.objects.create(
        project=world.project,
        title="兴业大厦改造征询",
        opens_on=today - timedelta(days=60),
        closes_on=today - timedelta(days=30),
    )
    households = [
        Household.objects.create(
            consultation=consultation,
            building="3",
            unit="1",
            room=f"{n}01",
            code=f"ACCEPTKEYS{n + 1}{n + 1}",
        )
        for n in range(1, 4)
    ]
    acceptance = acceptance_service.schedule_acceptance(
        world.project,
        actor=world.bureau,
        held_on=today + timedelta(days=3),
        place="兴业大厦小区广场",
        households=households,
    )
    return acceptance, households


def issue_form(world, client, photos_):
    client.force_login(world.alice)
    data = {
        "token": "limits",
        "project": world.project.pk,
        "category": Issue.Category.QUALITY,
        "urgency": Issue.Urgency.NORMAL,
        "title": "外墙涂料起皮",
        "description": "北面外墙涂料起皮，一碰就掉。",
        "photos": photos_,
    }
    return "/issues/new/", data, ["id_photos"], "北面外墙涂料起皮，一碰就掉。"


def comment_form(world, client, photos_):
    issue = world.submit()
    client.force_login(world.alice)
    data = {"text": "补充：西面也有起皮。", "photos": photos_}
    return f"/issues/{issue.pk}/comment/", data, ["comment-photos"], "补充：西面也有起皮。"


def rectify_form(world, client, photos_):
    issue = world.issue_in(Issue.Status.IN_PROGRESS)
    client.force_login(world.builder)
    data = {"text": "已铲除起皮部分并重新刷涂。", "photos": photos_}
    return f"/issues/{issue.pk}/rectify/", data, ["rectify-photos"], "已铲除起皮部分并重新刷涂。"


def patrol_form(world, client, photos_):
    """The patrol's pickers, one per item: the photos spread over two items, none over nine."""
    client.force_login(world.alice)
    data = {"project": world.project.pk, "note": "总体文明施工，围挡有一处倒塌。"}
    for item in CHECKS:
        data[f"check-{item}"] = "ok"
    half = len(photos_) // 2
    for item, chosen in (("fencing", photos_[:half]), ("debris", photos_[half:])):
        data[f"check-{item}"] = "problem"
        data[f"note-{item}"] = "见照片"
        data[f"photos-{item}"] = chosen
    ids = ["id_photos-fencing", "id_photos-debris"]
    return "/patrols/new/", data, ids, "总体文明施工，围挡有一处倒塌。"


def patrol_issue_form(world, client, photos_):
    """转为问题 for a problem the patrol took no photo of."""
    patrol = residents.log_patrol(
        supervisor=world.alice,
        project=world.project,
        checks=[
            residents.CheckInput(item=item, ok=item != "fencing", note="围挡倒了")
            for item in CHECKS
        ],
    )
    check = patrol.checks.get(item="fencing")
    client.force_login(world.alice)
    data = {f"check-{check.pk}-photos": photos_}
    return (
        f"/patrols/{patrol.pk}/checks/{check.pk}/issue/",
        data,
        [f"id_check-{check.pk}-photos"],
        "围挡倒了",
    )


def letter_form(world, client, photos_):
    data = {"summary": "3 幢门口的施工围挡倒了", "details": "倒在人行道上。", "photos": photos_}
    return (
        f"/projects/{world.project.pk}/letters/new/",
        data,
        ["id_photos"],
        "3 幢门口的施工围挡倒了",
    )


def letter_file_form(world, client, photos_):
    letter = letters.send_letter(
        project=world.project,
        summary="围挡倒了",
        details="倒在人行道上。",
        sender_address="10.1.1.9",
    )
    client.force_login(world.alice)
    data = {
        "category": Issue.Category.SAFETY,
        "urgency": Issue.Urgency.NORMAL,
        "title": "3 幢门口围挡倒塌",
        "description": "居民来信：围挡倒在人行道上。",
        "photos": photos_,
    }
    return f"/me/letters/{letter.pk}/file/", data, ["file-photos"], "3 幢门口围挡倒塌"


def acceptance_sign_form(world, client, photos_):
    acceptance, households = _schedule(world)
    data = {
        "code": households[0].code,
        "opinion": "reservation",
        "note": "3 幢楼道扶手没有装好。",
        "photos": photos_,
    }
    return f"/acceptances/{acceptance.pk}/sign/", data, ["id_photos"], "3 幢楼道扶手没有装好。"


def acceptance_opinion_form(world, client, photos_):
    acceptance, _households = _schedule(world)
    client.force_login(world.alice)
    data = {"opinion": "reservation", "note": "北面外墙还有空鼓。", "photos": photos_}
    return f"/acceptances/{acceptance.pk}/opinion/", data, ["id_photos"], "北面外墙还有空鼓。"


# form → (how to fill it, how many photos it takes, the count refusal)
FORMS = {
    "issue": (issue_form, 9, NINE),
    "comment": (comment_form, 9, NINE),
    "rectify": (rectify_form, 9, NINE),
    "patrol": (patrol_form, 9, NINE),
    "patrol_issue": (patrol_issue_form, 9, NINE),
    "letter": (letter_form, 3, THREE),
    "letter_file": (letter_file_form, 9, NINE),
    "acceptance_sign": (acceptance_sign_form, 9, NINE),
    "acceptance_opinion": (acceptance_opinion_form, 9, NINE),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_every_photo_form_refuses_one_photo_too_many_before_reading_any(
    form, world, client, request, django_capture_on_commit_callbacks
):
    fill, limit, message = FORMS[form]
    url, data, field_ids, typed = fill(world, client, small_photos(limit + 1))
    before = snapshot()
    request.getfixturevalue("no_decoding")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data, REMOTE_ADDR="10.2.2.2")

    assert response.status_code == 400
    page = response.content.decode()
    for field_id in field_ids:  # beside each picker that held photos
        assert message in field_errors(page, field_id), field_id
    assert typed in page  # what was typed is still in the form
    assert snapshot() == before


@pytest.mark.parametrize("form", list(FORMS))
def test_every_photo_form_refuses_too_many_pixels_together_before_decoding(
    form, world, client, request, bomb_png, django_capture_on_commit_callbacks
):
    # Three photos of 49 MP each: every one under the 50 MP a photo may have, 147 MP together.
    fill, _limit, _message = FORMS[form]
    url, data, field_ids, typed = fill(world, client, bombs(bomb_png, 3))
    before = snapshot()
    request.getfixturevalue("no_decoding")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data, REMOTE_ADDR="10.2.2.3")

    assert response.status_code == 400
    page = response.content.decode()
    for field_id in field_ids:
        errors = field_errors(page, field_id)
        assert TOO_MANY_PIXELS in errors and "12000 万像素" in errors, field_id
    assert typed in page
    assert snapshot() == before


def test_the_pixel_refusal_says_the_limit_and_the_total_in_chinese(bomb_png, no_decoding):
    with pytest.raises(photos.PhotoError) as refused:
        photos.prepare_photos(bombs(bomb_png, 3))
    [message] = refused.value.messages
    assert message == (
        "照片的像素合计过大：一次最多 12000 万像素，您选的 3 张共 14700 万像素。"
        "请少选几张，或压缩后再传。"
    )


def test_nine_ordinary_phone_photos_fit_in_the_pixel_budget():
    assert 9 * 4000 * 3000 <= photos.PHOTO_MAX_PIXELS_PER_REQUEST < 3 * 7000 * 7000


def test_services_refuse_like_their_forms(world, bomb_png, no_decoding):
    """The API and the demo call the services: the same checks hold there."""

    def submit(files):
        return services.submit_issue(
            reporter=world.alice,
            project=world.project,
            category=Issue.Category.QUALITY,
            title="外墙涂料起皮",
            description="北面外墙涂料起皮。",
            photos=files,
        )

    with pytest.raises(services.WorkflowError, match="一次最多上传 9 张照片") as refused:
        submit(small_photos(10))
    assert refused.value.field == "photos"
    with pytest.raises(services.WorkflowError, match=TOO_MANY_PIXELS):
        submit(bombs(bomb_png, 3))
    checks = [
        residents.CheckInput(item=item, ok=False, note="见照片", photos=small_photos(5, item))
        for item in ("fencing", "debris")
    ]
    with pytest.raises(services.WorkflowError, match="您选了 10 张"):
        residents.log_patrol(supervisor=world.alice, project=world.project, checks=checks)
    with pytest.raises(services.WorkflowError, match=THREE):
        letters.send_letter(
            project=world.project, summary="围挡倒了", photos=small_photos(4), sender_address="1"
        )
    assert not Issue.objects.exists() and not Patrol.objects.exists()
    assert not Letter.objects.exists()


def test_a_file_refused_on_its_own_is_named_and_not_counted_in_the_total(bomb_png, request):
    """A 60 MP photo is refused by name (and not added up with the others)."""
    sixty = encoded(Image.new("1", (10000, 6000)), "PNG", optimize=True)
    request.getfixturevalue("no_decoding")
    files = [SimpleUploadedFile("huge.png", sixty), *bombs(bomb_png, 2)]
    with pytest.raises(photos.PhotoError) as refused:
        photos.check_photos(files)
        photos.prepare_photo(files[0])
    assert refused.value.messages == ["huge.png：图片像素过大"]


def test_webp_is_held_to_its_own_pixel_limit(request):
    """libwebp and Pillow hold a WebP four times over while it is decoded."""
    big = encoded(Image.new("RGB", (4100, 4000)), "WEBP", quality=10)  # 16.4 MP
    request.getfixturevalue("no_decoding")
    with pytest.raises(photos.PhotoError) as refused:
        photos.prepare_photos([SimpleUploadedFile("chat.webp", big)])
    assert refused.value.messages == [
        "chat.webp：图片像素过大（WEBP 最多 1600 万像素，请转成 JPEG 再传）"
    ]


# --- accepted: the ordinary filing, and the largest ------------------------------------------


def test_nine_small_photos_are_filed_through_the_form(
    world, client, django_capture_on_commit_callbacks
):
    url, data, _ids, _typed = issue_form(world, client, small_photos(9))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302
    issue = Issue.objects.get()
    assert issue.photos.count() == 9
    assert len(stored_files()) == 18  # a web copy and a thumbnail each


def test_a_patrol_takes_nine_photos_over_its_items(
    world, client, django_capture_on_commit_callbacks
):
    url, data, _ids, _typed = patrol_form(world, client, small_photos(9))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302
    patrol = Patrol.objects.get()
    per_item = {c.item: c.photos.count() for c in patrol.checks.all() if c.photos.exists()}
    assert per_item == {"fencing": 4, "debris": 5}


def test_two_photos_of_49_megapixels_are_within_the_budget_and_shrunk(bomb_png):
    prepared = photos.prepare_photos(bombs(bomb_png, 2))
    assert [(p.width, p.height) for p in prepared] == [(1600, 1600)] * 2
    web = Image.open(io.BytesIO(prepared[0].web))
    assert web.mode == "RGB" and web.getpixel((800, 800)) == (0, 0, 0)


# --- decoding at scale: draft, bands, orientation, colours -----------------------------------


def halves(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue; in a mode without colour, left white and right black.
    Flat colours, no dithering: what is decoded can be compared pixel for pixel."""
    if mode in ("1", "L", "I;16"):
        image = Image.new("L", size, 255)
        image.paste(0, (size[0] // 2, 0, size[0], size[1]))
        return image.convert(mode) if mode != "1" else image.convert("1", dither=Image.Dither.NONE)
    image = Image.new("RGB", size, (220, 0, 0))
    image.paste((0, 0, 220), (size[0] // 2, 0, size[0], size[1]))
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE)
    return image if mode == "RGB" else image.convert(mode)


def close(a, b, tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_a_12_megapixel_jpeg_is_decoded_in_draft_and_stored_upright(monkeypatch):
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90° clockwise to display
    data = encoded(halves((4000, 3000)), "JPEG", exif=exif, quality=90)
    drafted = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    prepared = photos.prepare_photo(SimpleUploadedFile("IMG_1.jpg", data))

    assert drafted == [(2000, 1500)]  # decoded at half scale: a quarter of the pixels
    assert (prepared.width, prepared.height) == (1200, 1600)
    web = Image.open(io.BytesIO(prepared.web)).convert("RGB")
    assert web.size == (1200, 1600)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    expected.thumbnail((1600, 1600))
    for point in [(600, 300), (600, 1300), (100, 100), (1100, 1500)]:
        assert close(web.getpixel(point), expected.getpixel(point)), point
    # The left of the sensor is the top of the picture.
    assert close(web.getpixel((600, 300)), (220, 0, 0))
    assert close(web.getpixel((600, 1300)), (0, 0, 220))
    assert not web.getexif()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "1", "I;16"])
def test_a_large_png_is_shrunk_in_bands_with_its_colours(mode):
    size = (5000, 3001)  # an odd height: the last band is a short one
    image = halves(size, mode)
    data = encoded(image, "PNG", compress_level=1)
    prepared = photos.prepare_photo(SimpleUploadedFile("scan.png", data))

    assert (prepared.width, prepared.height) == (1600, 960)
    web = Image.open(io.BytesIO(prepared.web))
    assert web.mode == "RGB" and web.size == (1600, 960)
    expected = image.convert("RGB")
    for x in (200, 1400):
        for y in (5, 480, 955):  # the first band, the middle, the last rows
            want = expected.getpixel((x * 5000 // 1600, y * 3001 // 960))
            assert close(web.getpixel((x, y)), want), (x, y, mode)
    thumb = Image.open(io.BytesIO(prepared.thumbnail))
    assert thumb.size == (400, 240)


def test_a_large_png_with_exif_orientation_is_turned_after_shrinking():
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    data = encoded(halves((4800, 3200)), "PNG", exif=exif, compress_level=1)
    prepared = photos.prepare_photo(SimpleUploadedFile("turned.png", data))

    assert (prepared.width, prepared.height) == (1067, 1600)
    web = Image.open(io.BytesIO(prepared.web)).convert("RGB")
    # Turned counter-clockwise, the right (blue) half of the sensor is the top.
    assert close(web.getpixel((533, 300)), (0, 0, 220))
    assert close(web.getpixel((533, 1300)), (220, 0, 0))


def test_a_large_heic_is_shrunk_from_libheif_s_buffer_upright():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(halves((4000, 3000)), "HEIF", quality=60, exif=exif.tobytes())
    prepared = photos.prepare_photo(SimpleUploadedFile("IMG_2.HEIC", data))

    assert (prepared.width, prepared.height) == (1200, 1600)
    web = Image.open(io.BytesIO(prepared.web)).convert("RGB")
    assert close(web.getpixel((600, 300)), (220, 0, 0), 40)
    assert close(web.getpixel((600, 1300)), (0, 0, 220), 40)


# --- a real server under two of the largest accepted requests ---------------------------------


@pytest.mark.slow
def test_healthz_and_the_home_page_answer_while_two_of_the_largest_requests_are_decoded():
    """gunicorn (gunicorn.conf.py, three workers) on a database of its own; two filings of nine
    photos, 120 MP together each (two PNGs of 49 MP), posted at once. While both are in
    flight, /healthz and the home page answer 200; then both filings are stored. How fast they
    answer is measured by benchmarks/photo_intake.py, not asserted here."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import photo_intake

    big = encoded(Image.linear_gradient("L").resize((7000, 7000)).convert("RGB"), "PNG")
    small = encoded(halves((1772, 1772)), "PNG")
    files = [("big0.png", big), ("big1.png", big), *((f"s{n}.png", small) for n in range(7))]

    with photo_intake.photo_server(workers=3) as server:
        done = threading.Event()
        statuses: list[int] = []
        answered: dict[str, list[int]] = {"/healthz": [], "/": []}

        def upload(n: int) -> None:
            fields = {**photo_intake.issue_fields(n), "project": str(server["project"])}
            statuses.append(photo_intake.post(server, "/issues/new/", fields, {"photos": files}))
            done.set()

        uploads = [threading.Thread(target=upload, args=(n,)) for n in range(2)]
        for thread in uploads:
            thread.start()
        time.sleep(0.3)  # both requests sent (1.5 MB each over loopback) and being decoded
        while not done.is_set():
            for page, seen in answered.items():
                with photo_intake.urllib.request.urlopen(server["base"] + page, timeout=60) as r:
                    if not done.is_set():  # answered while neither upload had come back
                        seen.append(r.status)
        for thread in uploads:
            thread.join()
        media = server["media"]
        stored = sorted(p for p in media.rglob("*.jpg")) if media.exists() else []

    assert statuses == [302, 302]
    assert answered["/healthz"] and set(answered["/healthz"]) == {200}
    assert answered["/"] and set(answered["/"]) == {200}
    assert len(stored) == 2 * 9 * 2  # web copies and thumbnails of both filings
