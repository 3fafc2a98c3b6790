"""Residents' letters (居民来信): a resident writes from the project page without an account and
follows the letter by its 查询码; the project's supervisors triage it (answer, file as an issue,
add as support, decline); the sweep reminds, escalates to the subdistrict office and erases the
reply number. Refusals store nothing; the number is never shown whole.

Alice watches the 安阳 project (兴业大厦), Bob the 玉海 one; Carol is a second supervisor of the
安阳 project.
"""

from __future__ import annotations

import io
import re
import threading
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from PIL import Image

from api.tokens import create_token
from supervision import letters, services
from supervision.models import (
    Delivery,
    Issue,
    Letter,
    LetterEvent,
    LetterPhoto,
    Photo,
)
from supervision.residents import CODE_ALPHABET

from .factories import image_file, make_supervisor

S = Letter.Status
K = LetterEvent.Kind
MOBILE = "13912345678"
ADDRESS = "10.1.1.1"


# --- helpers -----------------------------------------------------------------------------------


def page_of(response) -> str:
    return response.content.decode()


def refusal(page: str) -> str:
    match = re.search(r"<div [^>]*data-refusal>(.*?)</div>", page, re.S)
    return match.group(1).strip() if match else ""


def form_url(project) -> str:
    return reverse("letter-new", args=[project.pk])


def letter_data(**fields) -> dict:
    data = {
        "summary": "3 幢门口的施工围挡倒了",
        "details": "昨晚刮风后倒在人行道上，老人和小孩只能绕到车道上走。",
        "building": "3 幢",
        "unit": "2 单元",
        "mobile": MOBILE,
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def post_letter(client, project, address: str = ADDRESS, **fields):
    return client.post(form_url(project), letter_data(**fields), REMOTE_ADDR=address)


def send(world, address: str = ADDRESS, project=None, **fields) -> Letter:
    """A letter through the service, as the page sends it."""
    data = letter_data(**fields)
    data.setdefault("photos", [])
    return letters.send_letter(project=project or world.project, sender_address=address, **data)


def gps_photo() -> SimpleUploadedFile:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (27.0, 46.0, 0.0), 3: "E", 4: (120.0, 38.0, 0.0)}
    return image_file("site.jpg", size=(640, 480), exif=exif)


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries.captured_queries)


def nothing_stored() -> None:
    assert not Letter.objects.exists()
    assert not LetterPhoto.objects.exists()
    assert not LetterEvent.objects.exists()
    assert not default_storage.exists("photos")


@pytest.fixture
def carol(world):
    """A second supervisor of the 安阳 project."""
    return make_supervisor("carol", world.project.neighbourhood, [world.project])


# --- a resident writes -------------------------------------------------------------------------


def test_project_page_and_notice_link_prominently_to_the_letter_form(world, client):
    url = form_url(world.project)
    for page in (
        client.get(world.project.get_absolute_url()),
        client.get(reverse("project-notice", args=[world.project.pk])),
    ):
        link = re.search(
            rf'<a [^>]*href="{url}"[^>]*data-letter-link[^>]*>([^<]+)</a>', page_of(page)
        )
        assert link and link.group(1) == "我要反映问题（居民来信）"


def test_the_form_needs_no_account_and_offers_camera_album_and_a_consent_line(world, client):
    response = client.get(form_url(world.project))
    assert response.status_code == 200
    page = page_of(response)
    assert len(re.findall(r'<input type="file" name="photos"[^>]*>', page)) == 2
    assert ">拍照</label>" in page and ">从相册选</label>" in page
    assert "data-upload-form" in page
    assert "data-consent" in page and "手机号不会公开" in page
    # The honeypot is there for scripts, hidden from people and screen readers.
    assert re.search(
        r'<div class="visually-hidden" aria-hidden="true">.*?name="website"', page, re.S
    )
    # Nothing but the summary is required: no consent box to tick either.
    assert 'type="checkbox"' not in page


def test_a_resident_sends_a_letter_with_a_photo_and_gets_its_code(
    world, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_letter(client, world.project, photos=[gps_photo()])
    assert response.status_code == 302
    assert response["Location"] == reverse("letter-sent", args=[world.project.pk])
    letter = Letter.objects.get()
    sent = page_of(client.get(response["Location"]))
    assert f"data-letter-code>{letter.code[:4]} {letter.code[4:]}</p>" in sent
    assert reverse("letter-track", args=[letter.code]) in sent
    # Saved as written, with the number for a reply; the address only as a keyed digest.
    assert (letter.summary, letter.building, letter.unit, letter.mobile) == (
        "3 幢门口的施工围挡倒了",
        "3 幢",
        "2 单元",
        MOBILE,
    )
    assert letter.status == S.NEW and letter.project == world.project
    assert ADDRESS not in letter.sender_digest and len(letter.sender_digest) == 64
    assert letter.sender_digest == letters.sender_digest(ADDRESS)
    assert letter.triage_due_at > letter.created_at
    assert list(letter.events.values_list("kind", "actor")) == [(K.SENT, None)]
    # The photo went through the intake: re-encoded, no EXIF, no GPS.
    photo = letter.photos.get()
    with default_storage.open(photo.image.name) as f:
        stored = Image.open(f)
        assert not stored.getexif() and "exif" not in stored.info
    assert photo.thumbnail and default_storage.exists(photo.thumbnail.name)


def test_the_upload_script_is_told_where_to_go(world, client):
    response = client.post(
        form_url(world.project),
        letter_data(),
        REMOTE_ADDR=ADDRESS,
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    assert response.status_code == 200
    assert response["X-Location"] == reverse("letter-sent", args=[world.project.pk])
    assert Letter.objects.count() == 1


def test_a_code_has_eight_characters_without_look_alikes(world):
    for _ in range(300):
        code = letters.new_code()
        assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
        assert not set(code) & set("0O1IL")
    first, second = send(world), send(world, address="10.1.1.2")
    assert first.code != second.code and len(first.code) == 8


def test_a_letter_without_the_sentence_is_refused_and_nothing_is_stored(world, client):
    response = post_letter(client, world.project, summary="   ")
    assert response.status_code == 400
    assert "请填写这一项" in page_of(response) or "请用一句话" in page_of(response)
    nothing_stored()


@pytest.mark.parametrize("mobile", ["1391234567", "23912345678", "139-1234-567x", "phone"])
def test_a_mobile_number_that_is_not_eleven_digits_from_1_is_refused(world, client, mobile):
    response = post_letter(client, world.project, mobile=mobile)
    assert response.status_code == 400
    assert "11 位数字" in page_of(response)
    nothing_stored()


def test_a_mobile_number_may_be_left_out_or_typed_full_width(world, client):
    assert post_letter(client, world.project, mobile="").status_code == 302
    assert (
        post_letter(
            client, world.project, summary="又一件事", mobile="１３９ １２３４ ５６７８"
        ).status_code
        == 302
    )
    assert sorted(Letter.objects.values_list("mobile", flat=True)) == ["", MOBILE]


def test_more_than_three_photos_are_refused_and_nothing_is_stored(world, client):
    response = post_letter(client, world.project, photos=[image_file() for _ in range(4)])
    assert response.status_code == 400
    assert "最多附 3 张照片" in page_of(response)
    nothing_stored()
    with pytest.raises(services.WorkflowError, match="最多附 3 张照片"):
        send(world, photos=[image_file() for _ in range(4)])
    nothing_stored()


def _png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"%PDF-1.4",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'></svg>",
        b"GIF89a\x01\x00\x01\x00",
        image_file(size=(300, 300)).read()[:200],
        _png_claiming(100_000, 100_000),
    ],
    ids=["empty", "pdf", "svg", "gif", "truncated", "bomb"],
)
def test_hostile_photos_are_refused_as_in_filing_and_nothing_is_stored(world, client, content):
    upload = SimpleUploadedFile("../../photo.jpg", content, content_type="image/jpeg")
    response = post_letter(client, world.project, photos=[upload])
    assert response.status_code == 400
    assert "photo.jpg" in page_of(response)
    nothing_stored()


def test_a_filled_honeypot_is_answered_as_if_sent_and_stores_nothing(world, client):
    response = post_letter(client, world.project, website="http://spam.example/")
    assert response.status_code == 302
    sent = client.get(response["Location"])
    assert sent.status_code == 200
    code = re.search(r"data-letter-code>([A-Z0-9 ]+)</p>", page_of(sent)).group(1)
    assert len(code.replace(" ", "")) == 8
    nothing_stored()


def test_the_same_words_from_the_same_address_within_the_hour_are_refused_kindly(world, client):
    first = post_letter(client, world.project)
    assert first.status_code == 302
    letter = Letter.objects.get()
    again = post_letter(
        client, world.project, details="昨晚刮风后倒在人行道上，老人和小孩只能绕到车道上走。 "
    )
    assert again.status_code == 409
    page = page_of(again)
    assert "已经发过内容相同的来信" in page and letter.code in page
    assert Letter.objects.count() == 1
    # Someone else may say the same; so may the same person an hour later.
    assert post_letter(client, world.project, address="10.9.9.9").status_code == 302
    Letter.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    assert post_letter(client, world.project).status_code == 302
    assert Letter.objects.count() == 3


def test_one_address_may_send_a_few_letters_an_hour(world, client, settings):
    settings.LETTERS_PER_ADDRESS_PER_HOUR = 2
    for n in range(2):
        assert post_letter(client, world.project, summary=f"第 {n} 件事").status_code == 302
    response = post_letter(client, world.project, summary="第三件事", photos=[image_file()])
    assert response.status_code == 429
    page = page_of(response)
    assert "您这一小时内已经发了 2 封来信，请过一会儿再发" in refusal(page)
    assert 'value="第三件事"' in page  # what was typed stays
    assert Letter.objects.count() == 2 and LetterPhoto.objects.count() == 0
    # To another project, from the same address: still the same address.
    assert post_letter(client, world.other_project, summary="别处").status_code == 429
    assert (
        post_letter(client, world.project, address="10.2.2.2", summary="第三件事").status_code
        == 302
    )


def test_a_project_may_receive_so_many_letters_an_hour(world, client, settings):
    settings.LETTERS_PER_PROJECT_PER_HOUR = 3
    for n in range(3):
        assert (
            post_letter(client, world.project, address=f"10.3.0.{n}", summary=f"事 {n}").status_code
            == 302
        )
    response = post_letter(client, world.project, address="10.3.0.9", summary="又一件")
    assert response.status_code == 429
    assert "这个项目这一小时收到的来信太多了" in refusal(page_of(response))
    assert Letter.objects.count() == 3
    assert post_letter(client, world.other_project, address="10.3.0.9").status_code == 302
    Letter.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert (
        post_letter(client, world.project, address="10.3.0.9", summary="又一件").status_code == 302
    )


def test_the_service_refuses_one_too_many_with_nothing_stored(world, settings):
    settings.LETTERS_PER_ADDRESS_PER_HOUR = 1
    send(world)
    with pytest.raises(services.WorkflowError) as refused:
        send(world, summary="另一件事", photos=[image_file()])
    assert refused.value.status_code == 429
    assert Letter.objects.count() == 1 and not LetterPhoto.objects.exists()


def test_sent_page_without_a_letter_goes_back_to_the_project(world, client):
    response = client.get(reverse("letter-sent", args=[world.project.pk]))
    assert response.status_code == 302 and response["Location"] == world.project.get_absolute_url()


# --- the resident follows it -------------------------------------------------------------------


def test_tracking_page_shows_the_letter_and_when_it_will_be_handled(world, client):
    letter = send(world, photos=[image_file()])
    response = client.get(f"/letters/{letter.code}/")
    assert response.status_code == 200
    page = page_of(response)
    assert letter.summary in page and 'data-letter-status="new"' in page
    assert "一般会在" in page
    assert response["X-Robots-Tag"].startswith("noindex")
    photo = letter.photos.get()
    thumb = reverse("letter-photo-thumbnail", args=[letter.code, photo.pk])
    assert thumb in page
    assert MOBILE not in page and "5678" not in page


def test_a_code_may_be_typed_in_lower_case_with_spaces(world, client):
    letter = send(world)
    typed = f"{letter.code[:4].lower()}-{letter.code[4:].lower()}"
    assert client.get(f"/letters/{typed}/").status_code == 200


def test_wrong_codes_are_limited_per_address_with_a_chinese_message(world, client):
    letter = send(world)
    for _ in range(10):
        response = client.get("/letters/ABCDEFGH/", REMOTE_ADDR="10.4.4.4")
        assert response.status_code == 404
        assert "没有找到这个查询码" in page_of(response)
    blocked = client.get(f"/letters/{letter.code}/", REMOTE_ADDR="10.4.4.4")
    assert blocked.status_code == 429
    assert "查询码输错次数太多，请 15 分钟后再试" in page_of(blocked)
    assert client.get(f"/letters/{letter.code}/", REMOTE_ADDR="10.5.5.5").status_code == 200
    photo_url = reverse("letter-photo", args=[letter.code, 1])
    assert client.get(photo_url, REMOTE_ADDR="10.4.4.4").status_code == 429


def test_a_letters_photos_are_served_only_under_its_own_code(
    world, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        mine = send(world, photos=[image_file()])
        other = send(world, address="10.6.6.6", summary="别的事", photos=[image_file()])
    photo = mine.photos.get()
    assert client.get(reverse("letter-photo", args=[mine.code, photo.pk])).status_code == 200
    assert (
        client.get(reverse("letter-photo-thumbnail", args=[mine.code, photo.pk])).status_code == 200
    )
    assert client.get(reverse("letter-photo", args=[other.code, photo.pk])).status_code == 404


def test_tracking_page_shows_the_answer_without_a_name(world, client):
    world.alice.display_name = "张丽华"
    world.alice.save()
    letter = send(world)
    letters.answer_letter(letter, actor=world.alice, text="已请施工方今天扶正围挡并加固。")
    page = page_of(client.get(f"/letters/{letter.code}/"))
    assert "已请施工方今天扶正围挡并加固。" in page and 'data-letter-status="answered"' in page
    assert "张丽华" not in page and "alice" not in page


def test_tracking_page_shows_the_reason_of_a_decline(world, client):
    letter = send(world)
    letters.decline_letter(letter, actor=world.alice, reason="不属于本次改造范围，已转告社区。")
    page = page_of(client.get(f"/letters/{letter.code}/"))
    assert "不予采纳" in page and "不属于本次改造范围" in page


def test_tracking_page_follows_the_filed_issue_to_closed(
    world, client, django_capture_on_commit_callbacks
):
    world.alice.display_name = "张丽华"
    world.alice.save()
    with django_capture_on_commit_callbacks(execute=True):
        letter = send(world, photos=[image_file()])
    issue = letters.file_letter_as_issue(letter, actor=world.alice, category=Issue.Category.SAFETY)
    page = page_of(client.get(f"/letters/{letter.code}/"))
    assert issue.reference in page and 'data-status="submitted"' in page and "签收时限" in page
    assert issue.title not in page.split("我的来信", 1)[1].split("处理情况", 1)[1]  # not public yet
    issue = services.accept_issue(issue, actor=world.handler)
    assert 'data-status="accepted"' in page_of(client.get(f"/letters/{letter.code}/"))
    with django_capture_on_commit_callbacks(execute=True):
        issue = services.rectify_issue(
            issue, actor=world.handler, text="已扶正加固", photos=[image_file()]
        )
        issue = services.verify_issue(issue, actor=world.alice, rating=Issue.Rating.SATISFIED)
    page = page_of(client.get(f"/letters/{letter.code}/"))
    assert 'data-status="closed"' in page and "已办结" in page and "办结时间" in page
    after = issue.photos.get(kind=Photo.Kind.AFTER)
    assert after.thumbnail_url not in page  # after-photos only once the issue is public
    services.publish_issue(issue, actor=world.bureau)
    page = page_of(client.get(f"/letters/{letter.code}/"))
    assert after.thumbnail_url in page and client.get(after.thumbnail_url).status_code == 200
    for name in ("张丽华", world.handler.display_name, MOBILE):
        assert name not in page


# --- the supervisors --------------------------------------------------------------------------


def test_my_page_says_how_many_letters_wait(world, client):
    send(world)
    send(world, address="10.7.7.7", summary="楼道里堆满建筑垃圾")
    send(world, address="10.7.7.8", project=world.other_project, summary="别的项目")
    client.force_login(world.alice)
    page = page_of(client.get("/me/"))
    link = re.search(r'<a [^>]*href="/me/letters/"[^>]*data-letters-waiting>(.*?)</a>', page, re.S)
    assert link and "居民来信 2 件待处理" in link.group(1)
    client.force_login(world.bob)
    assert "居民来信 1 件待处理" in page_of(client.get("/me/"))


def test_my_page_query_count_does_not_grow_with_letters(world, client):
    send(world)
    client.force_login(world.alice)
    client.get("/me/")
    one = count_queries(client, "/me/")
    for n in range(30):
        send(world, address=f"10.8.0.{n}", summary=f"第 {n} 件")
    assert count_queries(client, "/me/") == one <= 12


def test_inbox_lists_my_projects_letters_waiting_first(world, client):
    waiting = send(world)
    handled = send(world, address="10.7.7.7", summary="已经答复过的事")
    letters.answer_letter(handled, actor=world.alice, text="已处理")
    theirs = send(world, address="10.7.7.8", project=world.other_project, summary="玉海的事")
    client.force_login(world.alice)
    page = page_of(client.get("/me/letters/"))
    assert page.index(waiting.summary) < page.index(handled.summary)
    assert theirs.summary not in page
    assert MOBILE not in page and "5678" not in page


def test_inbox_and_triage_query_counts_are_bounded(world, client):
    first = send(world, photos=[image_file()])
    client.force_login(world.alice)
    client.get("/me/letters/")  # warm: what a first request reads once for every page
    inbox = count_queries(client, "/me/letters/")
    triage = count_queries(client, f"/me/letters/{first.pk}/")
    track = count_queries(client, f"/letters/{first.code}/")
    for n in range(25):
        letter = send(world, address=f"10.9.0.{n}", summary=f"第 {n} 件", photos=[image_file()])
        if n % 3 == 0:
            letters.answer_letter(letter, actor=world.alice, text="已答复")
        world.submit(title=f"问题 {n}")  # the support form's choices
    assert count_queries(client, "/me/letters/") == inbox <= 12
    assert count_queries(client, f"/me/letters/{first.pk}/") == triage <= 12
    assert count_queries(client, f"/letters/{first.code}/") == track <= 12
    client.logout()
    assert count_queries(client, form_url(world.project)) <= 12
    assert post_letter(client, world.project, address="10.9.9.9").status_code == 302
    assert count_queries(client, reverse("letter-sent", args=[world.project.pk])) <= 12


def test_triage_page_shows_the_masked_number_to_the_projects_supervisor(world, client):
    letter = send(world, photos=[image_file()])
    client.force_login(world.alice)
    page = page_of(client.get(f"/me/letters/{letter.pk}/"))
    assert "139****5678" in page and MOBILE not in page
    for step in ("answer", "file", "support", "decline"):
        assert f'action="/me/letters/{letter.pk}/{step}/"' in page


@pytest.mark.parametrize("role", ["bob", "handler", "other_staff", "builder", "bureau"])
def test_others_do_not_find_the_triage_page(world, client, role):
    letter = send(world)
    client.force_login(getattr(world, role))
    assert client.get(f"/me/letters/{letter.pk}/").status_code == 404
    for step in ("answer", "file", "support", "decline"):
        response = client.post(f"/me/letters/{letter.pk}/{step}/", {"text": "x", "reason": "x"})
        assert response.status_code == 404
    letter.refresh_from_db()
    assert letter.status == S.NEW and letter.events.count() == 1


def test_the_inbox_is_for_serving_supervisors(world, client):
    client.force_login(world.handler)
    assert client.get("/me/letters/").status_code == 403
    client.logout()
    assert client.get("/me/letters/")["Location"].startswith("/accounts/login/")


def test_anonymous_is_sent_to_log_in(world, client):
    letter = send(world)
    assert client.get(f"/me/letters/{letter.pk}/")["Location"].startswith("/accounts/login/")
    response = client.post(f"/me/letters/{letter.pk}/answer/", {"text": "x"})
    assert response["Location"].startswith("/accounts/login/")
    assert Letter.objects.get().status == S.NEW


def test_a_dismissed_supervisor_can_no_longer_triage(world, client):
    letter = send(world)
    supervisor = world.alice.supervisor
    supervisor.is_active = False
    supervisor.dismissed_on = timezone.localdate()
    supervisor.save()
    client.force_login(world.alice)
    assert client.get(f"/me/letters/{letter.pk}/").status_code == 403
    assert client.post(f"/me/letters/{letter.pk}/answer/", {"text": "x"}).status_code == 403
    assert client.get("/me/letters/").status_code == 403
    with pytest.raises(services.WorkflowError) as refused:
        letters.answer_letter(letter, actor=world.alice, text="x")
    assert refused.value.status_code == 403
    assert Letter.objects.get().status == S.NEW


@pytest.mark.parametrize("role", ["bob", "handler", "bureau"])
def test_the_services_refuse_anyone_but_the_projects_supervisors(world, role):
    letter = send(world)
    actor = getattr(world, role)
    issue = world.submit()
    attempts = [
        lambda: letters.answer_letter(letter, actor=actor, text="x"),
        lambda: letters.decline_letter(letter, actor=actor, reason="x"),
        lambda: letters.file_letter_as_issue(letter, actor=actor, category="safety"),
        lambda: letters.add_letter_as_support(letter, actor=actor, issue=issue),
    ]
    for attempt in attempts:
        with pytest.raises(services.WorkflowError) as refused:
            attempt()
        assert refused.value.status_code == 403
    assert Letter.objects.get().status == S.NEW and LetterEvent.objects.count() == 1


def test_a_supervisor_answers_a_letter(world, client):
    letter = send(world)
    client.force_login(world.alice)
    response = client.post(f"/me/letters/{letter.pk}/answer/", {"text": "已请施工方扶正围挡。"})
    assert response.status_code == 302 and response["Location"] == f"/me/letters/{letter.pk}/"
    letter.refresh_from_db()
    assert (letter.status, letter.answer, letter.handled_by) == (
        S.ANSWERED,
        "已请施工方扶正围挡。",
        world.alice,
    )
    event = letter.events.get(kind=K.ANSWERED)
    assert (event.actor, event.text) == (world.alice, "已请施工方扶正围挡。")
    assert letter.events.count() == 2


def test_an_answer_needs_words(world, client):
    letter = send(world)
    client.force_login(world.alice)
    response = client.post(f"/me/letters/{letter.pk}/answer/", {"text": "  "})
    assert response.status_code == 400
    assert refusal(page_of(response)) == "请按提示修改后再提交。"
    assert Letter.objects.get().status == S.NEW


def test_a_supervisor_files_a_letter_as_an_issue_with_its_photos(
    world, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        letter = send(world, photos=[gps_photo(), image_file()])
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/me/letters/{letter.pk}/file/",
            {
                "category": Issue.Category.SAFETY,
                "urgency": Issue.Urgency.URGENT,
                "title": letter.summary,
                "description": letter.details,
                "building": letter.building,
            },
        )
    assert response.status_code == 302, refusal(page_of(response))
    letter.refresh_from_db()
    issue = letter.issue
    assert letter.status == S.FILED and issue is not None
    assert issue.from_residents and issue.reporter == world.alice
    assert (issue.title, issue.description, issue.building, issue.unit) == (
        letter.summary,
        letter.details,
        "3 幢",
        "2 单元",
    )
    assert issue.urgency == Issue.Urgency.URGENT and issue.project == world.project
    assert issue.photos.filter(kind=Photo.Kind.BEFORE).count() == 2
    with default_storage.open(issue.photos.first().image.name) as f:
        assert not Image.open(f).getexif()
    assert letter.events.get(kind=K.FILED).text == issue.reference
    assert issue.events.filter(kind="submitted").count() == 1
    assert MOBILE not in f"{issue.title}{issue.description}"
    page = page_of(client.get(f"/me/letters/{letter.pk}/"))
    assert issue.reference in page and 'data-letter-status="filed"' in page
    assert "data-from-residents>居民反映<" in page_of(client.get(issue.get_absolute_url()))


def test_a_supervisor_may_add_a_photo_when_filing_a_letter_without_one(world, client):
    letter = send(world)
    client.force_login(world.alice)
    refused = client.post(
        f"/me/letters/{letter.pk}/file/", {"category": Issue.Category.SAFETY, "title": "围挡倒了"}
    )
    assert refused.status_code == 400
    assert "请至少拍一张现场照片。" in page_of(refused)
    assert Letter.objects.get().status == S.NEW and not Issue.objects.exists()
    response = client.post(
        f"/me/letters/{letter.pk}/file/",
        {"category": Issue.Category.SAFETY, "title": "围挡倒了", "photos": [image_file()]},
    )
    assert response.status_code == 302
    assert Letter.objects.get().issue.photos.count() == 1


def test_a_residents_opinion_can_be_filed_without_a_photo(world):
    letter = send(world, summary="希望增加电动车充电桩")
    issue = letters.file_letter_as_issue(
        letter, actor=world.alice, category=Issue.Category.OPINION, households=12
    )
    assert issue.category == Issue.Category.OPINION and issue.households == 12
    assert issue.from_residents


needs_support = pytest.mark.skipif(
    not hasattr(services, "support_issue"), reason="services.support_issue (附议) not built yet"
)


@needs_support
def test_a_supervisor_adds_a_letter_as_support_to_an_issue(world, client):
    issue = world.submit(title="3 幢围挡倒了")
    letter = send(world)
    client.force_login(world.alice)
    page = page_of(client.get(f"/me/letters/{letter.pk}/"))
    assert f'<option value="{issue.pk}">{issue.reference}' in page
    response = client.post(f"/me/letters/{letter.pk}/support/", {"issue": issue.pk})
    assert response.status_code == 302, refusal(page_of(response))
    letter.refresh_from_db()
    issue.refresh_from_db()
    assert letter.status == S.SUPPORTED and letter.issue == issue
    assert issue.support_count == 1 and issue.supports.get().letter == letter
    assert letter.events.get(kind=K.SUPPORTED).text == issue.reference
    track = page_of(client.get(f"/letters/{letter.code}/"))
    assert issue.reference in track and "附议" in track


def test_a_letter_is_only_added_to_an_issue_of_its_own_project(world, client):
    theirs = world.submit(reporter=world.bob, project=world.other_project)
    letter = send(world)
    client.force_login(world.alice)
    response = client.post(f"/me/letters/{letter.pk}/support/", {"issue": theirs.pk})
    assert response.status_code == 400
    with pytest.raises(services.WorkflowError) as refused:
        letters.add_letter_as_support(letter, actor=world.alice, issue=theirs)
    assert refused.value.status_code == 400
    assert Letter.objects.get().status == S.NEW


def test_a_supervisor_declines_with_a_reason(world, client):
    letter = send(world)
    client.force_login(world.alice)
    assert client.post(f"/me/letters/{letter.pk}/decline/", {"reason": ""}).status_code == 400
    response = client.post(f"/me/letters/{letter.pk}/decline/", {"reason": "不属于改造范围"})
    assert response.status_code == 302
    letter.refresh_from_db()
    assert (letter.status, letter.decline_reason) == (S.DECLINED, "不属于改造范围")
    assert letter.events.get(kind=K.DECLINED).text == "不属于改造范围"


@pytest.mark.parametrize("step", ["answer", "file", "support", "decline"])
def test_a_handled_letter_is_refused_saying_who_handled_it_and_when(world, client, carol, step):
    carol.display_name = "陈卡罗"
    carol.save()
    issue = world.submit()
    letter = send(world)
    letters.answer_letter(letter, actor=carol, text="已处理")
    client.force_login(world.alice)
    data = {
        "text": "x",
        "reason": "x",
        "category": "safety",
        "title": "x",
        "issue": issue.pk,
        "photos": [image_file()],
    }
    response = client.post(f"/me/letters/{letter.pk}/{step}/", data)
    assert response.status_code == 409
    message = refusal(page_of(response))
    assert message.startswith("这封来信已由陈卡罗于 ") and "答复，不能再" in message
    assert Letter.objects.get().handled_by == carol
    assert LetterEvent.objects.filter(letter=letter).count() == 2
    assert Issue.objects.count() == 1


def test_the_loser_of_a_filing_race_is_told_the_issue_it_became(world, carol):
    letter = send(world, summary="希望增加充电桩")
    stale = Letter.objects.get(pk=letter.pk)
    issue = letters.file_letter_as_issue(
        letter, actor=carol, category=Issue.Category.OPINION, households=3
    )
    with pytest.raises(services.WorkflowError) as refused:
        letters.decline_letter(stale, actor=world.alice, reason="重复")
    assert refused.value.status_code == 409
    assert f"转为问题（{issue.reference}）" in refused.value.message


# --- the sweep ---------------------------------------------------------------------------------


def test_the_sweep_reminds_once_then_escalates_a_working_day_later(world):
    letter = send(world)
    handled = send(world, address="10.1.1.9", summary="已答复的")
    letters.answer_letter(handled, actor=world.alice, text="好")
    due = letter.triage_due_at
    assert letters.sweep_letters(now=due - timedelta(minutes=1)) == ([], [], [])
    reminded, escalated, erased = letters.sweep_letters(now=due + timedelta(minutes=1))
    assert [r.pk for r in reminded] == [letter.pk] and escalated == erased == []
    assert letters.sweep_letters(now=due + timedelta(minutes=2)) == ([], [], [])
    later = letters.escalation_due(letter)
    assert later > due + timedelta(hours=12)
    assert letters.sweep_letters(now=later - timedelta(minutes=1)) == ([], [], [])
    reminded, escalated, erased = letters.sweep_letters(now=later + timedelta(minutes=1))
    assert reminded == [] and [e.pk for e in escalated] == [letter.pk]
    assert letters.sweep_letters(now=later + timedelta(days=3)) == ([], [], [])
    letter.refresh_from_db()
    assert letter.reminded_at and letter.escalated_at and letter.status == S.NEW
    kinds = list(letter.events.values_list("kind", flat=True))
    assert kinds == [K.SENT, K.REMINDED, K.ESCALATED]


def test_the_reminder_is_emailed_to_the_projects_supervisors_without_the_number(
    world, django_capture_on_commit_callbacks
):
    world.alice.email = "alice@example.com"
    world.alice.save()
    world.bob.email = "bob@example.com"
    world.bob.save()
    letter = send(world)
    with django_capture_on_commit_callbacks(execute=True):
        letters.sweep_letters(now=letter.triage_due_at + timedelta(minutes=1))
    mail = Delivery.objects.get()
    assert mail.target == "alice@example.com" and letter.summary in mail.body
    assert f"/me/letters/{letter.pk}/" in mail.body and MOBILE not in mail.body


def test_an_untriaged_letter_is_reminded_and_escalated_in_one_late_sweep(world):
    letter = send(world)
    reminded, escalated, _ = letters.sweep_letters(now=letter.triage_due_at + timedelta(days=10))
    assert [r.pk for r in reminded] == [e.pk for e in escalated] == [letter.pk]


def test_the_sweep_erases_the_number_after_the_letter_was_handled_long_enough(world, settings):
    letter = send(world)
    letters.answer_letter(letter, actor=world.alice, text="好")
    fresh = send(world, address="10.1.1.8", summary="未处理的")
    letter.refresh_from_db()
    keep = timedelta(days=settings.LETTER_MOBILE_KEEP_DAYS)
    assert letters.sweep_letters(now=letter.handled_at + keep - timedelta(minutes=1))[2] == []
    erased = letters.sweep_letters(now=letter.handled_at + keep + timedelta(minutes=1))[2]
    assert [e.pk for e in erased] == [letter.pk]
    letter.refresh_from_db()
    fresh.refresh_from_db()
    assert letter.mobile == "" and fresh.mobile == MOBILE
    assert letter.events.filter(kind=K.ERASED).count() == 1
    assert letters.sweep_letters(now=letter.handled_at + keep * 2)[2] == []


def test_the_periodic_job_and_the_command_run_the_letters_sweep(world):
    letter = send(world)
    Letter.objects.filter(pk=letter.pk).update(
        triage_due_at=timezone.now() - timedelta(days=10),
        created_at=timezone.now() - timedelta(days=12),
    )
    out = io.StringIO()
    call_command("escalate_overdue", stdout=out)
    assert "居民来信：提醒处理 1 封，转街道督促 1 封，删除联系电话 0 封。" in out.getvalue()
    letter.refresh_from_db()
    assert letter.reminded_at and letter.escalated_at


def test_the_subdistrict_office_sees_escalated_letters_of_its_subdistrict(world, client):
    world.project.departments.add(world.office)
    escalated = send(world)
    quiet = send(world, address="10.1.1.7", summary="还没到时限的来信")
    letters.sweep_letters(now=letters.escalation_due(escalated) + timedelta(minutes=1))
    Letter.objects.filter(pk=quiet.pk).update(escalated_at=None, reminded_at=None)
    client.force_login(world.handler)
    page = page_of(client.get("/panel/supervision/letter/"))
    assert escalated.summary in page and quiet.summary not in page
    assert "139****5678" in page and MOBILE not in page
    assert 'name="action"' not in page  # no export, no bulk action
    change = client.get(f"/panel/supervision/letter/{escalated.pk}/change/")
    assert change.status_code == 200 and MOBILE not in page_of(change)
    client.force_login(world.other_staff)
    assert escalated.summary not in page_of(client.get("/panel/supervision/letter/"))
    assert client.get(f"/panel/supervision/letter/{escalated.pk}/change/").status_code == 404
    client.force_login(world.builder)
    assert client.get("/panel/supervision/letter/").status_code == 403
    client.force_login(world.bureau)
    assert escalated.summary in page_of(client.get("/panel/supervision/letter/"))


# --- personal data -----------------------------------------------------------------------------


def test_the_number_appears_on_no_public_page_in_no_export_and_in_no_api_answer(
    world, client, django_capture_on_commit_callbacks
):
    world.project.departments.add(world.office)
    with django_capture_on_commit_callbacks(execute=True):
        letter = send(world, photos=[image_file()])
        waiting = send(world, address="10.1.1.6", summary="还在等的来信")
    with django_capture_on_commit_callbacks(execute=True):
        issue = letters.file_letter_as_issue(letter, actor=world.alice, category="safety")
        services.publish_issue(issue, actor=world.bureau)
    letters.sweep_letters(now=letters.escalation_due(waiting) + timedelta(minutes=1))
    public = [
        "/",
        "/projects/",
        world.project.get_absolute_url(),
        reverse("project-notice", args=[world.project.pk]),
        form_url(world.project),
        f"/letters/{letter.code}/",
        f"/letters/{waiting.code}/",
        "/api/v1/projects",
        f"/api/v1/projects/{world.project.pk}",
        "/open311/v2/requests.json",
        "/open311/v2/requests.xml",
        f"/open311/v2/requests/{issue.pk}.json",
    ]
    seen = []
    for url in public:
        response = client.get(url)
        if response.status_code == 200:
            seen.append(url)
            assert MOBILE not in page_of(response), url
            assert "139****5678" not in page_of(response), url
    assert len(seen) >= 8, seen
    checks = {
        "alice": ["/me/", "/me/letters/", issue.get_absolute_url(), "/issues/", "/feed/"],
        "handler": [
            issue.get_absolute_url(),
            "/dashboard/export.xlsx?preset=all",
            "/panel/supervision/issue/",
            "/panel/supervision/letter/",
            f"/panel/supervision/letter/{waiting.pk}/change/",
        ],
        "bureau": ["/dashboard/export.xlsx?preset=all"],
    }
    for role, urls in checks.items():
        client.force_login(getattr(world, role))
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (role, url)
            assert MOBILE.encode() not in response.content, (role, url)
    for user in (world.alice, world.bureau):
        _token, key = create_token(user, "测试")
        for url in ("/api/v1/issues", f"/api/v1/issues/{issue.pk}", "/api/v1/feed"):
            response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
            assert response.status_code == 200, url
            assert MOBILE.encode() not in response.content, url
    client.force_login(world.handler)
    export = client.post(
        "/panel/supervision/issue/",
        {"action": "export_xlsx", "_selected_action": [issue.pk], "index": "0"},
    )
    assert export.status_code == 200 and MOBILE.encode() not in export.content


def test_letters_are_not_in_the_json_api_or_open311():
    def routes(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    interfaces = [
        r for r in routes(get_resolver().url_patterns) if r.startswith(("api/", "open311/"))
    ]
    assert interfaces and not [r for r in interfaces if "letter" in r.lower()]


# --- the demo ---------------------------------------------------------------------------------


def test_the_demo_has_letters_in_every_state_on_two_projects(db, settings):
    from supervision import demo

    settings.DEMO_DATA_ALLOWED = True
    demo.load()
    expected = {S.NEW, S.ANSWERED, S.FILED, S.DECLINED}
    if hasattr(services, "support_issue"):
        expected.add(S.SUPPORTED)
    assert set(Letter.objects.values_list("status", flat=True)) >= expected
    assert Letter.objects.values("project").distinct().count() == 2
    assert Letter.objects.filter(status=S.FILED).count() >= 2
    assert Letter.objects.filter(status=S.ANSWERED).count() == 1
    assert Letter.objects.filter(status=S.DECLINED).count() == 1
    assert Letter.objects.filter(escalated_at__isnull=False, status=S.NEW).exists()
    assert Issue.objects.filter(from_residents=True, status=Issue.Status.CLOSED).exists()
    before = (Letter.objects.count(), LetterEvent.objects.count(), Issue.objects.count())
    demo.load()
    assert (Letter.objects.count(), LetterEvent.objects.count(), Issue.objects.count()) == before


# --- races (PostgreSQL) ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_triaging_one_letter_at_once_one_wins(on_postgres):
    from .factories import make_world

    world = make_world()
    carol = make_supervisor("carol", world.project.neighbourhood, [world.project])
    letter = send(world, summary="希望增加充电桩")
    issue = world.submit()
    steps = [
        lambda: letters.answer_letter(
            Letter.objects.get(pk=letter.pk), actor=world.alice, text="答"
        ),
        lambda: letters.decline_letter(Letter.objects.get(pk=letter.pk), actor=carol, reason="否"),
        lambda: letters.file_letter_as_issue(
            Letter.objects.get(pk=letter.pk), actor=carol, category="opinion", households=2
        ),
    ]
    if hasattr(services, "support_issue"):
        steps.append(
            lambda: letters.add_letter_as_support(
                Letter.objects.get(pk=letter.pk), actor=world.alice, issue=issue
            )
        )
    threads_n = 12
    barrier = threading.Barrier(threads_n)
    outcomes, errors = [], []

    def run(i):
        try:
            barrier.wait()
            outcomes.append(steps[i % len(steps)]())
        except services.WorkflowError as refused:
            outcomes.append(refused)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    refusals = [o for o in outcomes if isinstance(o, services.WorkflowError)]
    assert len(outcomes) - len(refusals) == 1
    assert all(r.status_code == 409 and "这封来信已由" in r.message for r in refusals)
    letter.refresh_from_db()
    assert letter.status != S.NEW
    assert letter.events.exclude(kind=K.SENT).count() == 1
    assert Issue.objects.filter(from_residents=True).count() == (
        1 if letter.status == S.FILED else 0
    )
