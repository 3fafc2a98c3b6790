"""Voice notes (语音): checked like photos, then re-encoded to one format every browser plays.

A phone records in whatever its browser offers (WebM/Opus on Android, MP4/AAC on iPhones, WAV
elsewhere). What arrives is not trusted: its size is capped before it is read, its container and
codec are sniffed by FFmpeg (PyAV, which brings its own), its length is counted from the decoded
samples, and what is stored is a fresh AAC track in MP4 (.m4a), mono, with no metadata of the
recording: a renamed program, a bomb of a file or a three-hour recording is refused in Chinese and
nothing is stored.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from decimal import Decimal

import av
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import VoiceNote

MAX_BYTES = 3 * 1024 * 1024  # a minute of phone audio is 0.2–1 MB in any of their formats
MAX_SECONDS = 60
# A recorder stops a little after the minute; what is longer was not made by our button.
TOLERANCE_SECONDS = 2
# Containers a phone's recorder produces (FFmpeg's names for them).
CONTAINERS = {"matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "ogg", "wav", "mp3", "aac", "amr"}
RATE = 44100
BITRATE = 64_000


class VoiceError(Exception):
    """A recording we will not keep, with the reason in words."""


@dataclass(frozen=True)
class PreparedVoice:
    content: bytes  # AAC in MP4, ready to store
    seconds: float


def prepare_voice(upload) -> PreparedVoice | None:
    """Check and re-encode one uploaded recording; None when there is none."""
    if upload is None:
        return None
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        raise VoiceError(_("语音文件太大（最多 3 MB，约一分钟）。"))
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise VoiceError(_("语音文件太大（最多 3 MB，约一分钟）。"))
    if not data:
        raise VoiceError(_("语音是空的，请重新录一次。"))
    try:
        return _reencode(data)
    except VoiceError:
        raise
    except (av.FFmpegError, ValueError, IndexError, OSError):
        raise VoiceError(_("不是能识别的录音，请用「按住说话」重新录一次。")) from None


def _reencode(data: bytes) -> PreparedVoice:
    with av.open(io.BytesIO(data), mode="r") as source:
        if source.format.name not in CONTAINERS:
            raise VoiceError(_("不是能识别的录音，请用「按住说话」重新录一次。"))
        if not source.streams.audio or source.streams.video:
            raise VoiceError(_("不是能识别的录音，请用「按住说话」重新录一次。"))
        stream = source.streams.audio[0]
        out_buffer = io.BytesIO()
        # bitexact: not even the encoder's version goes into the file.
        with av.open(out_buffer, mode="w", format="mp4", options={"fflags": "+bitexact"}) as target:
            target.metadata.clear()
            encoder = target.add_stream("aac", rate=RATE, layout="mono")
            encoder.bit_rate = BITRATE
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=RATE)
            samples = 0
            limit = (MAX_SECONDS + TOLERANCE_SECONDS) * RATE
            for frame in source.decode(stream):
                frame.pts = None
                for piece in resampler.resample(frame):
                    samples += piece.samples
                    if samples > limit:
                        raise VoiceError(_("语音最长 60 秒，请分成几段说。"))
                    target.mux(encoder.encode(piece))
            for piece in resampler.resample(None):
                samples += piece.samples
                target.mux(encoder.encode(piece))
            target.mux(encoder.encode(None))
    if samples < RATE // 2:
        raise VoiceError(_("语音太短，请按住按钮说完再松开。"))
    return PreparedVoice(out_buffer.getvalue(), round(samples / RATE, 1))


def attach_voice(issue, prepared: PreparedVoice | None, *, event=None) -> VoiceNote | None:
    """Create the ``VoiceNote`` row for ``issue`` (and ``event``); the file follows on commit.
    Must run inside the caller's ``transaction.atomic`` block, as for photos."""
    if prepared is None:
        return None
    name = f"voice/{timezone.localdate():%Y/%m}/{secrets.token_hex(16)}.m4a"
    transaction.on_commit(lambda: default_storage.save(name, ContentFile(prepared.content)))
    return VoiceNote.objects.create(
        issue=issue, event=event, audio=name, seconds=Decimal(str(prepared.seconds))
    )
