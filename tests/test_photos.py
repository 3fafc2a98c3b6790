"""Photo intake basics used by the engine (the supervisors' issue extends this)."""

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from supervision import photos
from supervision.models import Photo

from .factories import image_file


def test_large_photo_becomes_web_copy_and_thumbnail(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit(photos=[image_file(size=(4000, 3000))])
    photo = issue.photos.get()
    assert (photo.width, photo.height) == (1600, 1200)
    with default_storage.open(photo.image.name) as f:
        assert Image.open(f).size == (1600, 1200)
    with default_storage.open(photo.thumbnail.name) as f:
        assert max(Image.open(f).size) == 400
    assert photo.image.name.startswith("photos/")


def test_stored_photo_has_no_exif(world, django_capture_on_commit_callbacks):
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (30.0, 10.0, 0.0)}  # GPSInfo
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit(photos=[image_file(size=(100, 80), exif=exif)])
    with default_storage.open(issue.photos.get().image.name) as f:
        stored = Image.open(f)
        assert not stored.getexif()
        assert "exif" not in stored.info


def test_exif_orientation_is_applied(world):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    issue = world.submit(photos=[image_file(size=(200, 100), exif=exif)])
    photo = issue.photos.get()
    assert (photo.width, photo.height) == (100, 200)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"%PDF-1.4",
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        b"GIF89a\x01\x00\x01\x00",
    ],
)
def test_non_photos_are_refused(content):
    with pytest.raises(photos.PhotoError):
        photos.prepare_photo(SimpleUploadedFile("a.jpg", content))


def test_gif_is_refused_even_when_valid():
    out = io.BytesIO()
    Image.new("RGB", (2, 2)).save(out, "GIF")
    with pytest.raises(photos.PhotoError):
        photos.prepare_photo(SimpleUploadedFile("a.jpg", out.getvalue()))


def test_truncated_jpeg_is_refused():
    data = image_file(size=(300, 300)).read()
    with pytest.raises(photos.PhotoError):
        photos.prepare_photo(SimpleUploadedFile("cut.jpg", data[: len(data) // 2]))


def test_more_than_nine_photos_are_refused():
    with pytest.raises(photos.PhotoError, match="9"):
        photos.prepare_photos([image_file() for _ in range(10)])


def test_no_files_written_when_the_transaction_rolls_back(
    world, django_capture_on_commit_callbacks
):
    from django.db import transaction

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        world.submit(photos=[image_file()])
        raise Boom
    assert not Photo.objects.exists()
    assert not default_storage.exists("photos")


def test_pillow_guards_at_our_pixel_limit():
    assert Image.MAX_IMAGE_PIXELS == photos.MAX_PIXELS


def test_memory_is_handed_back_after_a_request_s_photos_even_when_refused(monkeypatch):
    trims = []
    monkeypatch.setattr(photos, "_TRIM", trims.append)
    photos.prepare_photos([image_file()])
    with pytest.raises(photos.PhotoError):
        photos.prepare_photos([SimpleUploadedFile("a.jpg", b"%PDF-1.4")])
    assert trims == [0, 0]


def test_a_file_without_seek_is_read_once_and_counted():
    class Stream:
        name = "stream.jpg"

        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, *args) -> bytes:
            data, self.data = self.data, b""
            return data

    [prepared] = photos.prepare_photos([Stream(image_file(size=(40, 30)).read())])
    assert (prepared.width, prepared.height) == (40, 30)
