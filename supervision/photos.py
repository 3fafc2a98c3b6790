"""Photo intake, in one place for every upload.

A photo is judged by its content, never by its name or the browser's content type. What we
keep is a re-encoded web copy (longest side 1600 px) and a thumbnail (400 px), with EXIF
orientation applied and no metadata at all; the original is not kept. Files are written only
once the transaction that created their rows commits.

Decoding is the costly part, so every form that takes photos goes through ``check_photos``
before any is decoded: at most ``MAX_PHOTOS`` of them, and at most
``PHOTO_MAX_PIXELS_PER_REQUEST`` pixels all together, counted from the files' headers. A photo
is then decoded with bounded memory: a JPEG at 1/2, 1/4 or 1/8 scale (``Image.draft``), any
other format at full size once and shrunk to RGB a band of rows at a time (never a second
full-size copy beside the decoded pixels), and the memory is handed back to the system after
the request's photos are done.

A HEIC photo (an iPhone's) takes about half a second of one core to decode, so an issue's HEIC
photos are not decoded in the request: after the same checks (its content sniffed, its size and
its pixels from the header) the file is kept as sent, its ``Photo`` row is marked
``pending``, and the worker converts it (``convert_pending``). Until then its addresses show a
「照片处理中」 tile; a photo the worker cannot decode is marked ``failed`` and its sender is told.
Other intakes (letters, patrols, acceptance) convert at once through ``store``.
"""

from __future__ import annotations

import ctypes
import io
import math
import secrets
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pillow_heif
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django_tasks import task
from PIL import Image, UnidentifiedImageError

from .models import Issue, Photo
from .notifications import notify_about_project

MAX_PHOTOS = 9
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
# All the photos of one request together, from their headers: nine 12 MP phone photos (108 MP)
# pass, three 49 MP ones (147 MP) do not. It bounds the decoding one request can ask for, whatever
# form it comes through: about 1 s of one core for PNG, 4.5 s for HEIC (the slowest to decode).
PHOTO_MAX_PIXELS_PER_REQUEST = 120_000_000
# libwebp decodes into two canvases of its own, Pillow copies the pixels out twice more: 16 bytes
# a pixel (a 49 MP WebP took 780 MB). No phone camera writes WebP; 16 MP covers what the web and
# chat apps do, and a larger one can be sent as JPEG.
MAX_PIXELS_BY_FORMAT = {"WEBP": 16_000_000}
WEB_SIZE = 1600
THUMB_SIZE = 400
# Rows of the shrunk image made per band when a decoded photo is shrunk to RGB.
BAND_ROWS = 64
# Pillow only tries these decoders, so an EPS, PSD, TIFF, GIF, PDF or SVG never reaches one.
ACCEPTED_FORMATS = ["JPEG", "PNG", "WEBP", "HEIF"]
GPS_IFD = 0x8825
ORIENTATION = 0x0112
# What ImageOps.exif_transpose does for each EXIF orientation, applied here to the shrunk copy.
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SIDEWAYS = {TRANSPOSE[5], TRANSPOSE[6], TRANSPOSE[7], TRANSPOSE[8]}

pillow_heif.register_heif_opener()
# Pillow's own bomb guard, at our limit: it refuses above twice this as the header is read. We
# refuse above it ourselves, by name and in Chinese, so its warning between the two says nothing.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``: the freed image memory goes back to the system instead of
    staying in the worker (Pillow's 16 MB blocks land in the heap once glibc has raised its
    mmap threshold: after two PNGs of 49 MP a worker kept 343 MB without it, 124 MB with it)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc (musl, macOS)
        return None


_TRIM = _malloc_trim()


class PhotoError(ValueError):
    """Photos we cannot take, with a message per refused file for the person who sent them."""

    def __init__(self, messages: str | list[str]) -> None:
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("；".join(str(m) for m in self.messages))


@dataclass(frozen=True)
class PreparedPhoto:
    web: bytes
    thumbnail: bytes
    width: int
    height: int
    # Where the photo was taken, read from EXIF before it is stripped; used only with consent.
    position: tuple[Decimal, Decimal] | None = None
    # A HEIC photo as sent, not yet decoded (``web`` and ``thumbnail`` are empty): converted by
    # the worker once its row is stored (``attach_photos``), or at once by ``store``.
    original: bytes = b""
    name: str = ""

    @property
    def pending(self) -> bool:
        return bool(self.original)


COUNT_MESSAGE = gettext_noop("一次最多上传 %(max)d 张照片，您选了 %(n)d 张。")


def check_photos(files: Sequence, *, limit: int = MAX_PHOTOS, message: str = "") -> None:
    """The one check of a request's photos, before any is decoded: how many (``limit``; a
    resident's letter takes three), and how many pixels all together, read from the headers.

    ``message`` (translated) words the count refusal, with ``%(max)d`` and ``%(n)d``. A file
    that will be refused on its own (too big, not a photo, too many pixels) is left for
    ``prepare_photo`` to name; an already prepared photo counts, without pixels (it is not
    decoded again).
    """
    files = [f for f in files if f is not None]
    if len(files) > limit:
        text = str(message or _(COUNT_MESSAGE))
        raise PhotoError(text % {"max": limit, "n": len(files)})
    total = sum(_header_pixels(f) for f in files)
    if total > PHOTO_MAX_PIXELS_PER_REQUEST:
        raise PhotoError(
            _(
                "照片的像素合计过大：一次最多 %(max)d 万像素，您选的 %(n)d 张共 %(total)d 万像素。"
                "请少选几张，或压缩后再传。"
            )
            % {
                "max": PHOTO_MAX_PIXELS_PER_REQUEST // 10_000,
                "n": len(files),
                "total": -(-total // 10_000),
            }
        )


def _header_pixels(upload) -> int:
    """Width × height from the file's header; nothing is decoded. 0 for what ``prepare_photo``
    refuses on its own, and for an already prepared photo."""
    if isinstance(upload, PreparedPhoto) or not hasattr(upload, "seek"):
        return 0
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        return 0
    try:
        upload.seek(0)
        with Image.open(upload, formats=ACCEPTED_FORMATS) as image:
            pixels, fmt = image.width * image.height, image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return 0
    except Image.DecompressionBombError:  # over twice MAX_PIXELS: refused by name later
        return 0
    finally:
        upload.seek(0)
    return 0 if pixels > _pixel_limit(fmt) else pixels


def _pixel_limit(fmt: str | None) -> int:
    return MAX_PIXELS_BY_FORMAT.get(fmt or "", MAX_PIXELS)


def prepare_photos(
    files: Sequence, *, limit: int = MAX_PHOTOS, message: str = "", defer: bool = False
) -> list[PreparedPhoto]:
    """Check and convert uploaded files; with ``defer``, HEIC photos are checked but left
    pending, for ``attach_photos`` and the worker (an issue's photos).

    Raises ``PhotoError`` naming every file we refuse and why, so that the person can fix all of
    them at once; too many photos, or too many pixels together, are refused before any is
    decoded (``check_photos``, with ``limit`` and ``message``). Already prepared photos pass
    through unchanged.
    """
    files = [_seekable(f) for f in files if f is not None]
    check_photos(files, limit=limit, message=message)
    prepared, refusals = [], []
    try:
        for upload in files:
            try:
                prepared.append(prepare_photo(upload, defer=defer))
            except PhotoError as error:
                refusals.extend(error.messages)
    finally:
        release_memory()
    if refusals:
        raise PhotoError(refusals)
    return prepared


def _seekable(upload):
    """An upload whose header can be read before it is decoded (every Django file can)."""
    if isinstance(upload, PreparedPhoto) or hasattr(upload, "seek"):
        return upload
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        return upload  # refused for its size, unread
    return ContentFile(upload.read(MAX_BYTES + 1), name=getattr(upload, "name", "") or "")


def release_memory() -> None:
    """Hand the freed decoding buffers back to the system (glibc keeps them otherwise)."""
    if _TRIM is not None:
        _TRIM(0)


def _refusal(name: str, reason: str) -> PhotoError:
    return PhotoError(_("%(name)s：%(reason)s") % {"name": name, "reason": reason})


def _too_many_pixels(name: str, fmt: str | None) -> PhotoError:
    limit = _pixel_limit(fmt)
    if limit < MAX_PIXELS:
        return _refusal(
            name,
            _("图片像素过大（%(format)s 最多 %(max)d 万像素，请转成 JPEG 再传）")
            % {"format": fmt, "max": limit // 10_000},
        )
    return _refusal(name, _("图片像素过大"))


def prepare_photo(upload, *, defer: bool = False) -> PreparedPhoto:
    if isinstance(upload, PreparedPhoto):
        return upload
    name = getattr(upload, "name", "") or _("照片")
    size = getattr(upload, "size", None)
    too_big = _("文件超过 20 MB，请压缩后再传")
    if size is not None and size > MAX_BYTES:
        raise _refusal(name, too_big)
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(MAX_BYTES + 1)
    if not data:
        raise _refusal(name, _("是空文件"))
    if len(data) > MAX_BYTES:
        raise _refusal(name, too_big)
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(name, None) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _refusal(name, _("不是支持的照片格式（请用 JPEG、PNG、WebP 或 HEIC）")) from None
    try:
        with image:
            return _convert(image, data, name, defer=defer)
    except PhotoError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise _refusal(name, _("文件已损坏")) from None


def _convert(image: Image.Image, data: bytes, name: str, *, defer: bool) -> PreparedPhoto:
    # Only the header has been read so far: refuse a decompression bomb before decoding it.
    if image.width * image.height > _pixel_limit(image.format):
        raise _too_many_pixels(name, image.format)
    position = _position(image)
    if image.format == "HEIF" and defer:
        # Decoded later, by the worker; the web copy's size from the header's, for the page.
        width, height = _fit(image.width, image.height, WEB_SIZE)
        return PreparedPhoto(
            web=b"", thumbnail=b"", width=width, height=height, position=position,
            original=data, name=name,
        )  # fmt: skip
    return _decoded(image, data, position)


def converted(item: PreparedPhoto) -> PreparedPhoto:
    """A pending (HEIC) photo decoded into its web copy and thumbnail; raises ``PhotoError``
    when the file cannot be decoded after all."""
    if not item.pending:
        return item
    name = item.name or _("照片")
    try:
        with Image.open(io.BytesIO(item.original), formats=ACCEPTED_FORMATS) as image:
            return _decoded(image, item.original, item.position)
    except Image.DecompressionBombError:
        raise _too_many_pixels(name, None) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise _refusal(name, _("文件已损坏")) from None
    finally:
        release_memory()


def _decoded(
    image: Image.Image, data: bytes, position: tuple[Decimal, Decimal] | None
) -> PreparedPhoto:
    if image.format == "HEIF":
        # libheif decodes upright (its rotation and mirroring applied): no EXIF turn after it.
        shrunk, turn = _decode_heif(data), None
    else:
        turn = TRANSPOSE.get(image.getexif().get(ORIENTATION))
        shrunk = _decode(image)
    # The web copy's size is the one ``thumbnail`` gives the upright photo as decoded; it is
    # made from the shrunk copy (the box: the photo's area in it), then turned upright.
    sideways = turn in SIDEWAYS
    width, height = (shrunk.height, shrunk.width) if sideways else (shrunk.width, shrunk.height)
    web_width, web_height = _fit(width, height, WEB_SIZE)
    size = (web_height, web_width) if sideways else (web_width, web_height)
    rgb = shrunk.image
    if rgb.size != size or shrunk.factor > 1:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, box=shrunk.box)
    if turn is not None:
        rgb = rgb.transpose(turn)
    web = _encode(rgb)
    rgb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    return PreparedPhoto(
        web=web, thumbnail=_encode(rgb), width=web_width, height=web_height, position=position
    )


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    """The size ``Image.thumbnail((side, side))`` gives a ``width`` × ``height`` image."""
    if width <= side and height <= side:
        return width, height
    aspect = width / height

    def nearest(number: float, key: Callable[[int], float]) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    if aspect <= 1:
        return nearest(side * aspect, lambda n: abs(aspect - n / side)), side
    return side, nearest(side / aspect, lambda n: 0 if n == 0 else abs(aspect - side / n))


@dataclass(frozen=True)
class _Shrunk:
    """A decoded photo (``width`` × ``height``) as RGB, ``factor`` times smaller (rounded up)."""

    image: Image.Image
    width: int
    height: int
    factor: int

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (0, 0, self.width / self.factor, self.height / self.factor)


def _factor(width: int, height: int) -> int:
    """The whole shrink that still leaves the longest side at least ``WEB_SIZE``."""
    return max(1, max(width, height) // WEB_SIZE)


def _decode(image: Image.Image) -> _Shrunk:
    """A JPEG, PNG or WebP photo decoded and shrunk by a whole factor towards the web size."""
    if image.format in ("JPEG", "MPO"):
        # Decode at 1/2, 1/4 or 1/8 scale when the result still covers the web size: a 12 MP
        # photo is decoded as 2000 × 1500 instead of 4000 × 3000.
        scale = WEB_SIZE / max(image.size)
        if scale < 1:
            image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
    image.load()
    width, height = image.size
    factor = _factor(width, height)
    if factor == 1 and image.mode == "RGB":
        return _Shrunk(image, width, height, 1)
    return _shrunk(width, height, factor, lambda top, bottom: image.crop((0, top, width, bottom)))


def _decode_heif(data: bytes) -> _Shrunk:
    """A HEIC photo shrunk straight from libheif's decoded buffer, a band at a time: Pillow's
    plugin would first copy the whole of it into an image of its own (a 49 MP photo: 147 MB
    decoded, then 196 MB more)."""
    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    frame = heif[heif.primary_index]
    (width, height), mode, stride = frame.size, frame.mode, frame.stride
    pixels = frame.data

    def band(top: int, bottom: int) -> Image.Image:
        rows = pixels[top * stride : bottom * stride]
        return Image.frombuffer(mode, (width, bottom - top), rows, "raw", mode, stride, 1)

    return _shrunk(width, height, _factor(width, height), band)  # the decoded buffer goes with it


def _shrunk(
    width: int, height: int, factor: int, band: Callable[[int, int], Image.Image]
) -> _Shrunk:
    """An RGB copy ``factor`` times smaller, made from bands of rows of the decoded photo: the
    conversion (palette, alpha, grey, CMYK) and the box-filter shrink touch one band at a time,
    never a second copy of the whole photo."""
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    step = factor * BAND_ROWS
    for top in range(0, height, step):
        part = band(top, min(top + step, height))
        if part.mode != "RGB":
            part = part.convert("RGB")
        if factor > 1:
            part = part.reduce(factor)
        out.paste(part, (0, top // factor))
    return _Shrunk(out, width, height, factor)


def _position(image: Image.Image) -> tuple[Decimal, Decimal] | None:
    """Latitude and longitude from the EXIF GPS block, or None when absent or implausible."""
    try:
        gps = image.getexif().get_ifd(GPS_IFD)
        latitude = _degrees(gps.get(2), gps.get(1), "S")
        longitude = _degrees(gps.get(4), gps.get(3), "W")
    except (TypeError, ValueError, ZeroDivisionError, AttributeError, KeyError):
        return None
    if latitude is None or longitude is None:
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180) or latitude == longitude == 0:
        return None
    quantum = Decimal("0.000001")
    return Decimal(latitude).quantize(quantum), Decimal(longitude).quantize(quantum)


def _degrees(value, ref, negative: str) -> float | None:
    if not value or len(value) != 3:
        return None
    degrees, minutes, seconds = (float(part) for part in value)
    result = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    return -result if (ref or "").strip().upper() == negative else result


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # Nothing but pixels: no EXIF, ICC, XMP or comment is carried over from the upload.
    image.info.clear()
    # Baseline with optimised Huffman tables: progressive encoding took 48 ms instead of 21 ms for
    # the 1600 px copy (a sixth of the whole intake) to save 3 % of its size.
    image.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def new_name(suffix: str = "") -> str:
    now = timezone.localtime()
    return f"photos/{now:%Y/%m}/{secrets.token_hex(16)}{suffix}.jpg"


def store(
    item: PreparedPhoto, write: Callable[[str, bytes], None] | None = None
) -> tuple[str, str]:
    """Names for a prepared photo's web copy and thumbnail; the files follow on commit, or are
    written at once by ``write`` (a step that writes them before its commit: services). A
    pending (HEIC) photo is converted here first.
    Must run inside the caller's ``transaction.atomic`` block."""
    item = converted(item)
    web_name, thumb_name = new_name(), new_name("_t")
    _save(web_name, item.web, write)
    _save(thumb_name, item.thumbnail, write)
    return web_name, thumb_name


def _save(name: str, data: bytes, write: Callable[[str, bytes], None] | None) -> None:
    if write is not None:
        write(name, data)
    else:
        transaction.on_commit(lambda: write_file(name, data))


def named(data: bytes, name: str) -> ContentFile:
    """Bytes as an upload-like file, for photos that come from storage rather than a form."""
    return ContentFile(data, name=name)


def attach_photos(
    issue,
    prepared: Iterable[PreparedPhoto],
    *,
    kind: str,
    event=None,
    write: Callable[[str, bytes], None] | None = None,
) -> list:
    """Create ``Photo`` rows for ``issue`` (and ``event``); the files follow on commit, or are
    written at once by ``write`` (see ``store``). A pending (HEIC) photo is kept as sent, in
    ``image``, and converted by the worker after the commit (``convert_pending``).

    Must run inside the caller's ``transaction.atomic`` block.
    """
    photos = []
    for item in prepared:
        if item.pending:
            original = new_name(".heic").removesuffix(".jpg")
            _save(original, item.original, write)
            photo = Photo.objects.create(
                issue=issue,
                event=event,
                kind=kind,
                image=original,
                thumbnail="",
                width=item.width,
                height=item.height,
                state=Photo.State.PENDING,
                name=item.name[:100],
            )
            transaction.on_commit(lambda pk=photo.pk: convert_pending.enqueue(pk))
        else:
            web_name, thumb_name = store(item, write)
            photo = Photo.objects.create(
                issue=issue,
                event=event,
                kind=kind,
                image=web_name,
                thumbnail=thumb_name,
                width=item.width,
                height=item.height,
            )
        photos.append(photo)
    return photos


@task()
def convert_pending(photo_id: int) -> str:
    """The worker's half of a HEIC photo's intake: decode the original, write the web copy and
    the thumbnail, point the row at them and delete the original. A photo that cannot be decoded
    is marked failed, with the reason, and whoever sent it is told. Safe to run twice."""
    photo = Photo.objects.filter(pk=photo_id, state=Photo.State.PENDING).first()
    if photo is None:
        return "gone"
    original = photo.image.name
    try:
        with default_storage.open(original, "rb") as source:
            data = source.read(MAX_BYTES + 1)
        item = converted(PreparedPhoto(b"", b"", 0, 0, original=data, name=photo.name))
    except FileNotFoundError:
        return _fail(photo, _refusal(photo.name or _("照片"), _("文件已丢失")))
    except PhotoError as error:
        return _fail(photo, error)
    web_name, thumb_name = new_name(), new_name("_t")
    write_file(web_name, item.web)
    write_file(thumb_name, item.thumbnail)
    with transaction.atomic():
        done = Photo.objects.filter(pk=photo.pk, state=Photo.State.PENDING).update(
            image=web_name,
            thumbnail=thumb_name,
            width=item.width,
            height=item.height,
            state=Photo.State.READY,
        )
    if not done:  # converted meanwhile by another run, or its issue deleted
        for name in (web_name, thumb_name):
            default_storage.delete(name)
        return "gone"
    default_storage.delete(original)
    _photos_changed(photo)
    return Photo.State.READY


def _fail(photo: Photo, error: PhotoError) -> str:
    reason = "；".join(str(m) for m in error.messages)[:200]
    Photo.objects.filter(pk=photo.pk).update(state=Photo.State.FAILED, failure=reason)
    issue = photo.issue
    sender = photo.event.actor if photo.event_id else issue.reporter
    notify_about_project(
        [sender],
        project=issue.project,
        text=_("%(reference)s 的一张照片无法处理：%(reason)s。请重新补充照片。")
        % {"reference": issue.reference, "reason": reason},
        url=issue.get_absolute_url(),
        topic=f"photo-failed-{photo.pk}",
    )
    _photos_changed(photo)
    return Photo.State.FAILED


def _photos_changed(photo: Photo) -> None:
    """Pages that cached the issue's thread show the converted (or failed) photo now."""
    Issue.objects.filter(pk=photo.issue_id).update(updated_at=timezone.now())


# A conversion the worker has not finished in this long is queued again (a worker killed mid-way).
PENDING_RETRY_AFTER = 10 * 60


def recover_pending() -> int:
    """Queue again the conversions of photos pending for longer than ``PENDING_RETRY_AFTER``
    seconds (the sweep runs this); returns how many."""
    since = timezone.now() - timedelta(seconds=PENDING_RETRY_AFTER)
    stale = list(
        Photo.objects.filter(state=Photo.State.PENDING, created_at__lt=since).values_list(
            "pk", flat=True
        )
    )
    for pk in stale:
        convert_pending.enqueue(pk)
    return len(stale)


def write_file(name: str, data: bytes) -> None:
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # pragma: no cover - 128 random bits do not collide
        raise RuntimeError(f"photo name taken: {name}")
