"""Photo intake (supervision/photos.py): what is refused and why, what is kept, what is stripped.

Refusals are checked twice: against ``prepare_photo`` directly, and through the real form at
``/issues/new/`` (400, the message next to the photos field, nothing written, no rows).
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from PIL import Image, ImageFile, ImageOps

from supervision import photos
from supervision.models import Issue, IssueEvent, Photo

from .factories import image_file
from .worker import run_worker

# Pillow warns between its bomb limit (ours, 50 MP) and twice it; we refuse those ourselves.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

CJK = re.compile(r"[\u4e00-\u9fff]")
NOT_A_PHOTO = "不是支持的照片格式"
EXIF_MAKE, EXIF_ORIENTATION, EXIF_GPS = 0x010F, 0x0112, 0x8825
# 27°46'48"N 120°39'36"E, near 瑞安 — what a phone writes into the GPS block.
GPS_BLOCK = {1: "N", 2: (27.0, 46.0, 48.0), 3: "E", 4: (120.0, 39.0, 36.0)}


# --- making files ------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def noisy(size=(200, 150)) -> Image.Image:
    """A photo-like image: noise over gradients, so that JPEG has real work to do."""
    noise = Image.effect_noise(size, 40)
    gradient = Image.linear_gradient("L").resize(size)
    return Image.merge(
        "RGB", (noise, gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )


def jpeg_bytes(size=(200, 150), **kwargs) -> bytes:
    return _encode(noisy(size), "JPEG", **kwargs)


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[EXIF_MAKE] = "PhoneMaker"
    exif[EXIF_GPS] = dict(GPS_BLOCK)
    return exif


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` and that carries no pixels at all."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _real_tiff() -> bytes:
    return _encode(Image.new("RGB", (8, 8), (1, 2, 3)), "TIFF")


def _real_gif() -> bytes:
    return _encode(Image.new("RGB", (8, 8), (1, 2, 3)), "GIF")


def _truncated_jpeg() -> bytes:
    data = jpeg_bytes((300, 300))
    return data[: len(data) // 2]


def _too_many_pixels() -> bytes:
    # 10000 × 6000 = 60 MP of one colour: a few KB of PNG, 60 MB once decoded.
    return _encode(Image.new("1", (10000, 6000)), "PNG", optimize=True)


# name, how to make the content, the reason we expect in the message
HOSTILE = {
    "eps": (
        "plan.eps",
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        NOT_A_PHOTO,
    ),
    "tiff": ("scan.tif", _real_tiff, NOT_A_PHOTO),
    "psd": ("layers.psd", lambda: b"8BPS\x00\x01" + b"\x00" * 40, NOT_A_PHOTO),
    "svg": (
        "logo.svg",
        lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        NOT_A_PHOTO,
    ),
    "gif": ("anim.gif", _real_gif, NOT_A_PHOTO),
    "pdf": (
        "report.pdf",
        lambda: b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        NOT_A_PHOTO,
    ),
    "html": ("page.html", lambda: b"<!doctype html><script>alert(1)</script>", NOT_A_PHOTO),
    "empty": ("empty.jpg", lambda: b"", "是空文件"),
    "truncated_jpeg": ("cut.jpg", _truncated_jpeg, "文件已损坏"),
    "over_20_mb": (
        "huge.jpg",
        lambda: jpeg_bytes((16, 16)) + b"\0" * (photos.MAX_BYTES + 1),
        "文件超过 20 MB",
    ),
    "too_many_pixels": ("bomb.png", _too_many_pixels, "图片像素过大"),
    "header_claims_900_mp": ("claims.png", lambda: png_header_only(30000, 30000), "图片像素过大"),
}


@pytest.fixture(scope="module")
def hostile_content():
    """Each hostile file's bytes, made once per module."""
    cache: dict[str, bytes] = {}

    def get(key: str) -> bytes:
        if key not in cache:
            cache[key] = HOSTILE[key][1]()
        return cache[key]

    return get


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail loudly if any image gets decoded."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"decoded {self.size} pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)


@pytest.fixture(scope="module")
def twelve_megapixels() -> bytes:
    return jpeg_bytes((4000, 3000), quality=85)


# --- reading back what was stored --------------------------------------------------------------


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def read_stored(name: str) -> bytes:
    with default_storage.open(name, "rb") as f:
        return f.read()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def issue_form(world, files, **fields):
    data = {
        "token": fields.pop("token", "tok-intake"),
        "project": world.project.pk,
        "category": Issue.Category.QUALITY,
        "urgency": Issue.Urgency.NORMAL,
        "title": "外墙涂料起皮",
        "description": "北面外墙涂料起皮，一碰就掉。",
        "photos": files,
    }
    data.update(fields)
    return data


def photo_errors(page: str) -> str:
    """The error block crispy renders under the photos input."""
    match = re.search(r'<div id="id_photos_error" class="invalid-feedback">(.*?)</div>', page, re.S)
    return match.group(1) if match else ""


def file_issue(client, world, captured, files, **fields):
    """Post the real form as Alice and run the on-commit callbacks (the file writes)."""
    client.force_login(world.alice)
    with captured(execute=True):
        response = client.post("/issues/new/", issue_form(world, files, **fields))
    return response


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(HOSTILE))
def test_hostile_file_is_refused_with_its_name_and_a_chinese_reason(key, hostile_content, request):
    name, _make, reason = HOSTILE[key]
    content = hostile_content(key)
    if reason == "图片像素过大":
        request.getfixturevalue("no_decoding")
    with pytest.raises(photos.PhotoError) as refused:
        photos.prepare_photo(upload(name, content))
    assert len(refused.value.messages) == 1
    message = refused.value.messages[0]
    assert message.startswith(f"{name}：")
    assert reason in message
    assert CJK.search(message.removeprefix(name))


@pytest.mark.parametrize("key", list(HOSTILE))
def test_hostile_file_posted_through_the_form_is_refused_and_nothing_is_kept(
    key, hostile_content, request, world, client, django_capture_on_commit_callbacks
):
    name, _make, reason = HOSTILE[key]
    content = hostile_content(key)
    if reason == "图片像素过大":
        request.getfixturevalue("no_decoding")
    response = file_issue(
        client, world, django_capture_on_commit_callbacks, [upload(name, content)]
    )

    assert response.status_code == 400
    errors = photo_errors(response.content.decode())
    assert name in errors and reason in errors
    assert stored_files() == []
    assert not Issue.objects.exists()
    assert not Photo.objects.exists()
    assert not IssueEvent.objects.exists()


def test_every_refused_file_is_named_so_all_can_be_fixed_at_once(hostile_content):
    files = [
        upload("ok.jpg", jpeg_bytes()),
        upload("plan.eps", hostile_content("eps")),
        upload("empty.jpg", b""),
    ]
    with pytest.raises(photos.PhotoError) as refused:
        photos.prepare_photos(files)
    assert [m.split("：")[0] for m in refused.value.messages] == ["plan.eps", "empty.jpg"]


def test_ten_photos_are_refused_with_a_chinese_count(
    world, client, django_capture_on_commit_callbacks
):
    data = jpeg_bytes((8, 6))
    with pytest.raises(photos.PhotoError) as refused:
        photos.prepare_photos([upload(f"p{n}.jpg", data) for n in range(10)])
    assert refused.value.messages == ["一次最多上传 9 张照片，您选了 10 张。"]

    response = file_issue(
        client,
        world,
        django_capture_on_commit_callbacks,
        [upload(f"p{n}.jpg", data) for n in range(10)],
    )
    assert response.status_code == 400
    assert "一次最多上传 9 张照片，您选了 10 张。" in photo_errors(response.content.decode())
    assert stored_files() == []
    assert not Issue.objects.exists() and not Photo.objects.exists()


def test_nine_photos_are_taken(world, django_capture_on_commit_callbacks):
    data = jpeg_bytes((8, 6))
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit(photos=[upload(f"p{n}.jpg", data) for n in range(9)])
    assert issue.photos.count() == 9
    assert len(stored_files()) == 18  # a web copy and a thumbnail each


def test_size_limit_is_checked_before_reading_the_file():
    class Unreadable:
        name = "huge.jpg"
        size = photos.MAX_BYTES + 1

        def read(self, *args):  # pragma: no cover - must not be called
            raise AssertionError("read a file that is too big")

    with pytest.raises(photos.PhotoError, match="文件超过 20 MB"):
        photos.prepare_photo(Unreadable())


def test_a_file_of_exactly_20_mb_is_not_refused_for_its_size():
    data = jpeg_bytes((16, 16))
    padded = data + b"\0" * (photos.MAX_BYTES - len(data))  # JPEG ignores bytes after EOI
    prepared = photos.prepare_photo(upload("big.jpg", padded))
    assert (prepared.width, prepared.height) == (16, 16)


# --- content decides, not the name or the content type ----------------------------------------


def test_png_content_named_jpg_is_accepted(world, client, django_capture_on_commit_callbacks):
    png = _encode(noisy((60, 40)), "PNG")
    response = file_issue(client, world, django_capture_on_commit_callbacks, [upload("x.jpg", png)])
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert (photo.width, photo.height) == (60, 40)
    assert decoded(read_stored(photo.image.name)).format == "JPEG"


def test_jpeg_named_gif_sent_as_text_plain_is_accepted(
    world, client, django_capture_on_commit_callbacks
):
    response = file_issue(
        client,
        world,
        django_capture_on_commit_callbacks,
        [upload("x.gif", jpeg_bytes((60, 40)), content_type="text/plain")],
    )
    assert response.status_code == 302
    assert Photo.objects.get().issue == Issue.objects.get()
    assert len(stored_files()) == 2


def test_webp_is_accepted():
    prepared = photos.prepare_photo(upload("x.webp", _encode(noisy((60, 40)), "WEBP")))
    assert decoded(prepared.web).format == "JPEG"


# --- metadata: stripped from the files, the position kept only with consent --------------------


def test_original_really_carries_gps_and_make():
    data = jpeg_bytes((120, 90), exif=gps_exif())
    assert b"Exif" in data and b"PhoneMaker" in data
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(EXIF_GPS)[2] == (27.0, 46.0, 48.0)


def test_stored_web_copy_and_thumbnail_carry_no_exif_and_no_gps(
    world, client, django_capture_on_commit_callbacks
):
    data = jpeg_bytes((120, 90), exif=gps_exif())
    response = file_issue(
        client, world, django_capture_on_commit_callbacks, [upload("gps.jpg", data)]
    )
    assert response.status_code == 302
    photo = Photo.objects.get()
    for name in (photo.image.name, photo.thumbnail.name):
        stored = read_stored(name)
        assert stored.startswith(b"\xff\xd8")
        assert b"Exif" not in stored
        assert b"PhoneMaker" not in stored
        assert b"GPS" not in stored
        image = decoded(stored)
        assert not image.getexif()
        assert not image.getexif().get_ifd(EXIF_GPS)
        assert "exif" not in image.info and "xmp" not in image.info


def test_position_is_taken_from_the_photo_with_consent(
    world, client, django_capture_on_commit_callbacks
):
    data = jpeg_bytes((120, 90), exif=gps_exif())
    response = file_issue(
        client,
        world,
        django_capture_on_commit_callbacks,
        [upload("gps.jpg", data)],
        share_position="on",
    )
    assert response.status_code == 302
    issue = Issue.objects.get()
    assert float(issue.latitude) == pytest.approx(27.78, abs=1e-5)
    assert float(issue.longitude) == pytest.approx(120.66, abs=1e-5)
    assert b"Exif" not in read_stored(issue.photos.get().image.name)


def test_position_stays_empty_without_consent(world, client, django_capture_on_commit_callbacks):
    data = jpeg_bytes((120, 90), exif=gps_exif())
    response = file_issue(
        client, world, django_capture_on_commit_callbacks, [upload("gps.jpg", data)]
    )
    assert response.status_code == 302
    issue = Issue.objects.get()
    assert issue.latitude is None and issue.longitude is None


def test_southern_and_western_references_give_negative_coordinates():
    exif = Image.Exif()
    exif[EXIF_GPS] = {1: "S", 2: (33.0, 51.0, 0.0), 3: "W", 4: (70.0, 30.0, 0.0)}
    prepared = photos.prepare_photo(upload("s.jpg", jpeg_bytes((20, 20), exif=exif)))
    latitude, longitude = prepared.position
    assert float(latitude) == pytest.approx(-33.85)
    assert float(longitude) == pytest.approx(-70.5)


def test_photo_without_gps_has_no_position():
    assert photos.prepare_photo(upload("plain.jpg", jpeg_bytes((20, 20)))).position is None


# --- orientation -------------------------------------------------------------------------------


def test_portrait_photo_is_stored_upright(world, client, django_capture_on_commit_callbacks):
    landscape = Image.new("RGB", (400, 300), (220, 0, 0))
    landscape.paste((0, 0, 220), (200, 0, 400, 300))  # left half red, right half blue
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # the camera was turned: rotate 90° clockwise to display
    data = _encode(landscape, "JPEG", exif=exif, quality=95)
    expected = ImageOps.exif_transpose(decoded(data)).convert("RGB")
    assert expected.size == (300, 400)

    response = file_issue(
        client, world, django_capture_on_commit_callbacks, [upload("portrait.jpg", data)]
    )
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert (photo.width, photo.height) == (300, 400)
    stored = decoded(read_stored(photo.image.name)).convert("RGB")
    assert stored.size == (300, 400)
    assert decoded(read_stored(photo.thumbnail.name)).size == (300, 400)  # already under 400
    assert not stored.getexif().get(EXIF_ORIENTATION)

    def close(a, b):
        return all(abs(x - y) <= 24 for x, y in zip(a, b, strict=True))

    for point in [(150, 100), (150, 300), (50, 50), (250, 350)]:
        assert close(stored.getpixel(point), expected.getpixel(point)), point
    # And what that means: the left of the sensor is the top of the picture.
    assert close(stored.getpixel((150, 100)), (220, 0, 0))
    assert close(stored.getpixel((150, 300)), (0, 0, 220))


# --- HEIC --------------------------------------------------------------------------------------


def heic_bytes(exif: Image.Exif | None = None) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    kwargs = {"exif": exif.tobytes()} if exif is not None else {}
    return _encode(noisy((640, 480)), "HEIF", quality=50, **kwargs)


def test_heic_is_accepted_at_once_and_the_worker_stores_it_as_jpeg(
    world, client, django_capture_on_commit_callbacks
):
    """An iPhone's photo is not decoded in the request (about half a second of a core each):
    the issue is filed, the thread shows 「照片处理中」, and the worker converts it."""
    data = heic_bytes()
    assert data[4:8] == b"ftyp"  # an ISO-BMFF file, as phones write them
    response = file_issue(
        client, world, django_capture_on_commit_callbacks, [upload("IMG_0001.HEIC", data)]
    )
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.state == Photo.State.PENDING
    assert (photo.width, photo.height) == (640, 480)
    page = client.get(response["Location"]).content.decode()
    assert "有 1 张照片正在处理，稍后刷新就能看到。" in page
    for address in (photo.thumbnail_url, photo.get_absolute_url()):
        tile = client.get(address)
        assert tile["Content-Type"].startswith("image/svg+xml")
        assert "照片处理中" in tile.content.decode()
        assert tile["Cache-Control"] == "private, no-store"  # the photo shows once it is ready
    original = photo.image.name
    assert read_stored(original) == data  # kept as sent until converted, never served

    run_worker()

    photo.refresh_from_db()
    assert photo.state == Photo.State.READY
    assert (photo.width, photo.height) == (640, 480)
    assert decoded(read_stored(photo.image.name)).format == "JPEG"
    assert decoded(read_stored(photo.thumbnail.name)).size == (400, 300)
    assert not default_storage.exists(original)
    assert client.get(photo.thumbnail_url)["Content-Type"] == "image/jpeg"
    assert "正在处理" not in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("damage", ["zeros", "cut"])
def test_a_heic_the_worker_cannot_decode_is_reported_on_the_issue_and_to_its_sender(
    damage, world, client, django_capture_on_commit_callbacks
):
    """The header reads (so the request took it) but the picture does not decode."""
    data = heic_bytes()
    start = data.index(b"mdat") + 8
    broken = data[:start] + (
        b"\0" * (len(data) - start) if damage == "zeros" else data[start:][:100]
    )
    response = file_issue(
        client, world, django_capture_on_commit_callbacks, [upload("IMG_0009.HEIC", broken)]
    )
    assert response.status_code == 302
    photo = Photo.objects.get()

    run_worker()

    photo.refresh_from_db()
    assert photo.state == Photo.State.FAILED
    assert photo.failure == "IMG_0009.HEIC：文件已损坏"
    page = client.get(response["Location"]).content.decode()
    assert "一张照片无法处理（IMG_0009.HEIC：文件已损坏），请重新补充照片。" in page
    tile = client.get(photo.thumbnail_url)
    assert "照片无法处理" in tile.content.decode()
    told = world.alice.notifications.get()
    assert (
        told.text
        == f"{photo.issue.reference} 的一张照片无法处理：IMG_0009.HEIC：文件已损坏。请重新补充照片。"
    )
    assert told.url == photo.issue.get_absolute_url()
    run_worker()  # nothing more to do, and nobody is told twice
    assert world.alice.notifications.count() == 1


def test_a_conversion_a_stopped_worker_left_behind_is_queued_again_by_the_sweep(
    world, client, django_capture_on_commit_callbacks
):
    file_issue(
        client, world, django_capture_on_commit_callbacks, [upload("IMG_0001.HEIC", heic_bytes())]
    )
    DBTaskResult.objects.all().delete()  # the worker took the task and died with it
    photo = Photo.objects.get()
    assert photos.recover_pending() == 0  # too soon: the worker may still be at it
    Photo.objects.filter(pk=photo.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    assert photos.recover_pending() == 1
    run_worker()
    photo.refresh_from_db()
    assert photo.state == Photo.State.READY


def test_a_pending_photo_is_shown_to_nobody_who_may_not_see_its_issue(
    world, client, django_capture_on_commit_callbacks
):
    file_issue(
        client, world, django_capture_on_commit_callbacks, [upload("IMG_0001.HEIC", heic_bytes())]
    )
    photo = Photo.objects.get()
    assert not photo.issue.is_public  # until the department makes it public
    client.logout()
    assert client.get(photo.thumbnail_url).status_code == 404
    assert client.get(photo.get_absolute_url()).status_code == 404


def test_letters_and_other_intakes_convert_heic_at_once():
    """Only an issue's photos wait for the worker; elsewhere a HEIC is decoded as it comes."""
    prepared = photos.prepare_photos([upload("IMG_0001.HEIC", heic_bytes())])
    assert not prepared[0].pending
    assert decoded(prepared[0].web).format == "JPEG"


def test_heic_position_is_read_with_consent_and_not_kept_in_the_file(
    world, client, django_capture_on_commit_callbacks
):
    response = file_issue(
        client,
        world,
        django_capture_on_commit_callbacks,
        [upload("IMG_0002.HEIC", heic_bytes(gps_exif()), content_type="image/heic")],
        share_position="on",
    )
    assert response.status_code == 302
    issue = Issue.objects.get()
    assert float(issue.latitude) == pytest.approx(27.78, abs=1e-5)
    assert float(issue.longitude) == pytest.approx(120.66, abs=1e-5)
    run_worker()
    web = read_stored(issue.photos.get().image.name)
    assert decoded(web).format == "JPEG"
    assert b"Exif" not in web and b"PhoneMaker" not in web
    assert not decoded(web).getexif()


# --- a real phone photo ------------------------------------------------------------------------


def test_twelve_megapixel_photo_becomes_1600_web_copy_and_400_thumbnail(twelve_megapixels):
    assert len(twelve_megapixels) < photos.MAX_BYTES
    prepared = photos.prepare_photo(upload("IMG_4000.jpg", twelve_megapixels))
    assert (prepared.width, prepared.height) == (1600, 1200)
    web, thumb = decoded(prepared.web), decoded(prepared.thumbnail)
    assert (web.format, web.size) == ("JPEG", (1600, 1200))
    assert (thumb.format, thumb.size) == ("JPEG", (400, 300))
    assert len(prepared.web) < len(twelve_megapixels) / 2


def test_twelve_megapixel_photo_filed_through_the_form(
    twelve_megapixels, world, client, django_capture_on_commit_callbacks
):
    response = file_issue(
        client,
        world,
        django_capture_on_commit_callbacks,
        [upload("IMG_4000.jpg", twelve_megapixels)],
    )
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert max(decoded(read_stored(photo.image.name)).size) == 1600
    assert max(decoded(read_stored(photo.thumbnail.name)).size) == 400


# --- files follow the transaction --------------------------------------------------------------


class Boom(Exception):
    pass


def test_no_files_are_written_when_the_transaction_rolls_back(
    world, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        world.submit(photos=[image_file(), image_file()])
        assert Photo.objects.count() == 2
        raise Boom
    assert callbacks == []
    assert stored_files() == []
    assert not Issue.objects.exists() and not Photo.objects.exists()


def test_files_are_written_only_once_the_transaction_commits(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        issue = world.submit(photos=[image_file()])
        assert stored_files() == []
    for callback in callbacks:
        callback()
    photo = issue.photos.get()
    assert {p.relative_to(settings.MEDIA_ROOT).as_posix() for p in stored_files()} == {
        photo.image.name,
        photo.thumbnail.name,
    }


@pytest.mark.django_db(transaction=True)
def test_no_orphan_files_with_real_commits_and_rollbacks(world):
    with pytest.raises(Boom), transaction.atomic():
        world.submit(photos=[image_file()])
        raise Boom
    assert stored_files() == []
    assert not Photo.objects.exists()

    issue = world.submit(photos=[image_file()], title="第二次提交")
    photo = issue.photos.get()
    assert default_storage.exists(photo.image.name)
    assert default_storage.exists(photo.thumbnail.name)
    assert len(stored_files()) == 2


def test_rotated_heic_is_stored_upright_and_not_rotated_twice():
    landscape = Image.new("RGB", (400, 300), (220, 0, 0))
    landscape.paste((0, 0, 220), (200, 0, 400, 300))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    data = _encode(landscape, "HEIF", quality=90, exif=exif.tobytes())

    prepared = photos.prepare_photo(upload("IMG_0003.HEIC", data))
    assert (prepared.width, prepared.height) == (300, 400)
    web = decoded(prepared.web).convert("RGB")
    top, bottom = web.getpixel((150, 100)), web.getpixel((150, 300))
    assert top[0] > 180 and top[2] < 60  # red on top, as on the phone's screen
    assert bottom[2] > 180 and bottom[0] < 60
