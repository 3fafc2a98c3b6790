"""Photo intake, in one place for every upload.

A photo is judged by its content, never by its name or the browser's content type. What we
keep is a re-encoded web copy (longest side 1600 px) and a thumbnail (400 px), with EXIF
orientation applied and no metadata at all; the original is not kept. Files are written only
once the transaction that created their rows commits.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PHOTOS = 9
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
WEB_SIZE = 1600
THUMB_SIZE = 400
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}


class PhotoError(ValueError):
    """A photo we cannot take, with a message for the person who sent it."""


@dataclass(frozen=True)
class PreparedPhoto:
    web: bytes
    thumbnail: bytes
    width: int
    height: int


def prepare_photos(files: Sequence) -> list[PreparedPhoto]:
    """Check and convert uploaded files; raises ``PhotoError`` for the first one we refuse."""
    files = [f for f in files if f is not None]
    if len(files) > MAX_PHOTOS:
        raise PhotoError(_("最多上传 %(n)d 张照片。") % {"n": MAX_PHOTOS})
    return [prepare_photo(f) for f in files]


def prepare_photo(upload) -> PreparedPhoto:
    name = getattr(upload, "name", "") or _("照片")
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        raise PhotoError(_("“%(name)s”超过 20 MB，请压缩后再传。") % {"name": name})
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(MAX_BYTES + 1)
    if not data:
        raise PhotoError(_("“%(name)s”是空文件。") % {"name": name})
    if len(data) > MAX_BYTES:
        raise PhotoError(_("“%(name)s”超过 20 MB，请压缩后再传。") % {"name": name})
    try:
        return _convert(data)
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PhotoError(
            _("“%(name)s”不是可用的照片（支持 JPEG、PNG、WebP），或文件已损坏。") % {"name": name}
        ) from None


def _convert(data: bytes) -> PreparedPhoto:
    with Image.open(io.BytesIO(data)) as image:
        if image.format not in ACCEPTED_FORMATS:
            raise PhotoError(_("只支持 JPEG、PNG、WebP 格式的照片。"))
        if image.width * image.height > MAX_PIXELS:
            raise PhotoError(_("照片像素过大（超过 5000 万像素）。"))
        if image.format == "JPEG":
            image.draft("RGB", (WEB_SIZE, WEB_SIZE))
        image.load()
        upright = ImageOps.exif_transpose(image)
        rgb = upright.convert("RGB")
    rgb.thumbnail((WEB_SIZE, WEB_SIZE), Image.Resampling.LANCZOS)
    web = _encode(rgb)
    width, height = rgb.size
    rgb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    return PreparedPhoto(web=web, thumbnail=_encode(rgb), width=width, height=height)


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # A fresh RGB image carries no EXIF, ICC or XMP: nothing is written but pixels.
    image.save(out, "JPEG", quality=82, optimize=True, progressive=True)
    return out.getvalue()


def new_name(suffix: str = "") -> str:
    now = timezone.localtime()
    return f"photos/{now:%Y/%m}/{secrets.token_hex(16)}{suffix}.jpg"


def attach_photos(issue, prepared: Iterable[PreparedPhoto], *, kind: str, event=None) -> list:
    """Create ``Photo`` rows for ``issue`` (and ``event``); the files follow on commit.

    Must run inside the caller's ``transaction.atomic`` block.
    """
    from .models import Photo

    photos = []
    for item in prepared:
        web_name, thumb_name = new_name(), new_name("_t")
        photo = Photo.objects.create(
            issue=issue,
            event=event,
            kind=kind,
            image=web_name,
            thumbnail=thumb_name,
            width=item.width,
            height=item.height,
        )
        transaction.on_commit(lambda n=web_name, d=item.web: _write(n, d))
        transaction.on_commit(lambda n=thumb_name, d=item.thumbnail: _write(n, d))
        photos.append(photo)
    return photos


def _write(name: str, data: bytes) -> None:
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # pragma: no cover - 128 random bits do not collide
        raise RuntimeError(f"photo name taken: {name}")
