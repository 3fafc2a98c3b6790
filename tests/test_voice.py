"""Voice notes (语音): what a phone records is checked like a photo and stored as AAC in MP4;
anything else is refused in Chinese and nothing is stored."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import av
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from supervision import services
from supervision.models import Issue, IssueEvent, VoiceNote
from supervision.voice import VoiceError, prepare_voice

from .factories import image_file

S = Issue.Status
RATE = 48_000


def tone(seconds: float, rate: int = RATE) -> bytes:
    """PCM samples of a 440 Hz tone, 16-bit mono."""
    count = int(seconds * rate)
    return b"".join(
        struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(count)
    )


def wav(seconds: float, rate: int = RATE) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone(seconds, rate))
    return SimpleUploadedFile("voice.wav", buffer.getvalue(), content_type="audio/wav")


def webm(seconds: float) -> SimpleUploadedFile:
    """What Chromium's MediaRecorder makes: Opus in WebM."""
    buffer = io.BytesIO()
    samples = tone(seconds)
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        step = 960
        for start in range(0, len(samples) // 2, step):
            chunk = samples[start * 2 : (start + step) * 2]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
            frame.planes[0].update(chunk)
            frame.rate = RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return SimpleUploadedFile("voice.webm", buffer.getvalue(), content_type="audio/webm")


def stored_voice_files() -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "voice"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize("recording", [webm, wav], ids=["webm-opus", "wav"])
def test_a_phone_recording_becomes_aac_in_mp4_without_metadata(recording):
    prepared = prepare_voice(recording(3))

    assert 2.8 <= prepared.seconds <= 3.2
    with av.open(io.BytesIO(prepared.content)) as stored:
        assert "mp4" in stored.format.name
        (stream,) = stored.streams.audio
        assert stream.codec_context.name == "aac" and stream.codec_context.channels == 1
        assert not stored.streams.video
        assert "encoder" not in stored.metadata  # nothing of the recording's origin


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("voice.m4a", b"MZ\x90\x00" + bytes(4000)), "不是能识别的录音"),
        (SimpleUploadedFile("voice.webm", bytes(30 * 1024 * 1024)), "语音文件太大"),
        (SimpleUploadedFile("voice.webm", b""), "语音是空的"),
        (SimpleUploadedFile("voice.jpg", image_file().read()), "不是能识别的录音"),
    ],
    ids=["renamed-exe", "30-MB", "empty", "a-photo"],
)
def test_what_is_not_a_recording_is_refused_in_chinese(upload, message):
    with pytest.raises(VoiceError) as refused:
        prepare_voice(upload)
    assert message in str(refused.value)


def test_longer_than_a_minute_is_refused():
    with pytest.raises(VoiceError) as refused:
        prepare_voice(wav(63, rate=8000))  # small enough to pass the size check
    assert "最长 60 秒" in str(refused.value)


def test_a_voice_note_stands_in_for_the_written_details(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit(description="", voice=webm(2), photos=[image_file()])

    note = VoiceNote.objects.get(issue=issue)
    assert note.event.kind == IssueEvent.Kind.SUBMITTED and 1.8 <= note.seconds <= 2.2
    assert len(stored_voice_files()) == 1


def test_a_comment_may_be_spoken(world, client, django_capture_on_commit_callbacks):
    issue = world.issue_in(S.SUBMITTED)
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/issues/{issue.pk}/comment/", {"text": "", "voice": webm(2)})

    assert response.status_code == 302
    note = VoiceNote.objects.get(issue=issue)
    assert note.event.kind == IssueEvent.Kind.COMMENTED
    # The department plays it on the issue page; the file answers as audio/mp4.
    client.force_login(world.handler)
    page = client.get(f"/issues/{issue.pk}/").content.decode()
    assert f'src="/voice/{note.pk}/"' in page
    answer = client.get(f"/voice/{note.pk}/")
    assert answer.status_code == 200 and answer["Content-Type"] == "audio/mp4"


@pytest.mark.parametrize(
    "upload",
    [
        SimpleUploadedFile("voice.m4a", b"MZ\x90\x00" + bytes(4000)),
        SimpleUploadedFile("voice.webm", bytes(30 * 1024 * 1024)),
    ],
    ids=["renamed-exe", "30-MB"],
)
def test_a_refused_voice_note_stores_nothing(world, client, upload):
    issue = world.issue_in(S.SUBMITTED)
    events = issue.events.count()
    client.force_login(world.alice)

    response = client.post(f"/issues/{issue.pk}/comment/", {"text": "听我说", "voice": upload})

    assert response.status_code == 400
    assert "录音" in response.content.decode() or "语音" in response.content.decode()
    assert not VoiceNote.objects.exists() and not stored_voice_files()
    assert issue.events.count() == events


def test_the_public_hears_no_voice_of_an_issue_that_is_not_public(world, client):
    issue = world.issue_in(S.SUBMITTED)
    services.comment_on_issue(issue, actor=world.alice, text="", voice=wav(1))
    note = VoiceNote.objects.get()
    assert client.get(f"/voice/{note.pk}/").status_code == 404
