"""Exports at any size: small ones answer at once, large ones are written by the background worker,
followed on their own page, announced in the requester's notifications and downloaded by the
requester only (404 for anybody else).

alice and bob are supervisors, ``handler`` is the 安阳 office's staff, ``other_staff`` the 玉海
office's, ``bureau`` the city bureau. The threshold is lowered in the tests that need a "large"
export (EXPORT_INLINE_MAX_ROWS = 2)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from openpyxl import load_workbook

from supervision import exports
from supervision.models import ExportJob, Issue, Notification

from .worker import run_worker

DASHBOARD_EXPORT = "/dashboard/export.xlsx"
PANEL_ISSUES = "/panel/supervision/issue/"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def issues(world):
    """Three issues for the 安阳 office (alice's project), one for 玉海 (bob's)."""
    anyang = [world.submit(title=f"安阳问题{n}") for n in range(3)]
    yuhai = [world.submit(reporter=world.bob, project=world.other_project, title="玉海问题")]
    return anyang, yuhai


@pytest.fixture
def small_threshold(settings):
    settings.EXPORT_INLINE_MAX_ROWS = 2


def workbook(content: bytes):
    return load_workbook(io.BytesIO(content))


def values(book) -> dict[str, list[tuple]]:
    return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}


def references(book, sheet: str = "问题清单") -> list[str]:
    return [row[0] for row in list(book[sheet].iter_rows(values_only=True))[1:]]


def start_dashboard_export(client, django_capture_on_commit_callbacks, query=None):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{DASHBOARD_EXPORT}{query or ''}")
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert response["Location"] == f"/exports/{job.pk}/"
    return job


def select_all(shown: Issue) -> dict:
    """「全选」 of every filtered issue, as the panel's action bar posts it (with the boxes of the
    page shown)."""
    return {
        "action": "export_xlsx",
        "select_across": "1",
        "index": "0",
        "_selected_action": [shown.pk],
    }


def downloaded(response) -> bytes:
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    return b"".join(response.streaming_content)


# --- small exports stay instant ----------------------------------------------------------------


def test_a_small_dashboard_export_is_the_file_itself_and_starts_no_job(world, client, issues):
    client.force_login(world.bureau)

    response = client.get(DASHBOARD_EXPORT)

    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    assert response["Content-Disposition"].startswith('attachment; filename="dashboard-')
    book = workbook(response.content)
    assert book.sheetnames == ["统计", "问题清单", "监督员活跃度"]
    assert sorted(references(book)) == sorted(i.reference for i in issues[0] + issues[1])
    assert not ExportJob.objects.exists()


def test_a_small_panel_export_is_the_file_itself_and_starts_no_job(world, client, issues):
    client.force_login(world.handler)
    anyang, _yuhai = issues

    response = client.post(
        PANEL_ISSUES,
        {"action": "export_xlsx", "_selected_action": [i.pk for i in anyang], "index": "0"},
    )

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="issues-')
    book = workbook(response.content)
    assert book.sheetnames == ["问题清单"]
    assert sorted(references(book)) == sorted(i.reference for i in anyang)
    assert not ExportJob.objects.exists()


# --- large exports run in the background -------------------------------------------------------


def test_a_large_dashboard_export_asks_first_and_a_get_starts_nothing(
    world, client, issues, small_threshold
):
    client.force_login(world.bureau)

    response = client.get(DASHBOARD_EXPORT, {"preset": "30"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "共有 4 个问题" in page and "开始导出" in page
    assert 'method="post"' in page and 'action="/dashboard/export.xlsx?preset=30"' in page
    assert not ExportJob.objects.exists()


def test_a_large_dashboard_export_is_written_by_the_worker_and_announced(
    world, client, issues, small_threshold, django_capture_on_commit_callbacks
):
    client.force_login(world.bureau)

    job = start_dashboard_export(client, django_capture_on_commit_callbacks)

    assert (job.status, job.total_rows, job.requester) == ("queued", 4, world.bureau)
    page = client.get(job.get_absolute_url())
    assert page.status_code == 200
    assert "正在排队，共 4 行" in page.content.decode()
    assert 'hx-trigger="every 2s"' in page.content.decode()
    assert not Notification.objects.filter(export=job).exists()

    run_worker()

    job.refresh_from_db()
    assert (job.status, job.done_rows, job.total_rows) == ("ready", 4, 4)
    assert job.file.name.startswith("private/exports/") and default_storage.exists(job.file.name)
    assert job.expires_at == job.finished_at + timedelta(days=7)
    notice = Notification.objects.get(export=job)
    assert (notice.recipient, notice.read_at) == (world.bureau, None)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "导出完成，共 4 行" in page
    assert f'href="/exports/{job.pk}/download/"' in page
    assert "hx-trigger" not in page  # no more polling
    again = client.get(DASHBOARD_EXPORT).content.decode()  # the way back: 「导出 Excel」 again
    assert "我最近的导出" in again and f'href="{job.get_absolute_url()}"' in again
    notice.refresh_from_db()
    assert notice.read_at is not None  # seen on the page

    response = client.get(f"/exports/{job.pk}/download/")
    book = workbook(downloaded(response))
    assert response["Content-Disposition"] == f'attachment; filename="{job.filename}"'
    assert book.sheetnames == ["统计", "问题清单", "监督员活跃度"]
    assert sorted(references(book)) == sorted(i.reference for i in issues[0] + issues[1])


def test_the_background_file_equals_the_instant_one(
    world, client, issues, settings, django_capture_on_commit_callbacks
):
    client.force_login(world.handler)
    instant = values(workbook(client.get(DASHBOARD_EXPORT).content))

    settings.EXPORT_INLINE_MAX_ROWS = 2
    job = start_dashboard_export(client, django_capture_on_commit_callbacks)
    run_worker()

    background = values(workbook(downloaded(client.get(f"/exports/{job.pk}/download/"))))
    assert background == instant
    header, *rows = background["问题清单"]
    assert header[:3] == ("编号", "标题", "项目")
    assert [row[0] for row in rows] == [i.reference for i in issues[0]]  # oldest first


def test_a_large_panel_selection_is_written_by_the_worker_within_the_staffs_scope(
    world, client, issues, small_threshold, django_capture_on_commit_callbacks
):
    anyang, yuhai = issues
    client.force_login(world.handler)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PANEL_ISSUES, select_all(anyang[0]))

    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert (job.kind, job.total_rows) == ("issues", 3)
    run_worker()
    job.refresh_from_db()
    book = workbook(downloaded(client.get(f"/exports/{job.pk}/download/")))
    assert book.sheetnames == ["问题清单"]
    assert sorted(references(book)) == sorted(i.reference for i in anyang)
    assert yuhai[0].reference not in references(book)


def test_the_export_has_every_row_with_real_dates_and_formulas_as_text(
    world, client, small_threshold, django_capture_on_commit_callbacks
):
    for n in range(30):
        world.submit(title=f'=HYPERLINK("http://evil") {n}')
    client.force_login(world.bureau)

    job = start_dashboard_export(client, django_capture_on_commit_callbacks)
    run_worker()

    sheet = workbook(downloaded(client.get(f"/exports/{job.pk}/download/")))["问题清单"]
    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) == 30 == Issue.objects.count()
    assert all(row[1].value.startswith("'=") and row[1].data_type == "s" for row in rows)
    assert all(row[9].is_date and row[9].number_format == "yyyy-mm-dd hh:mm" for row in rows)


def test_the_progress_page_says_how_far_it_got(world, client, issues):
    job = ExportJob.objects.create(
        requester=world.bureau,
        kind=ExportJob.Kind.DASHBOARD,
        status=ExportJob.Status.RUNNING,
        params=exports.requester_scope(world.bureau),
        total_rows=200_000,
        done_rows=42_000,
        filename="dashboard.xlsx",
    )
    client.force_login(world.bureau)

    whole = client.get(job.get_absolute_url()).content.decode()
    part = client.get(job.get_absolute_url(), headers={"HX-Request": "true"}).content.decode()

    assert "正在导出，已完成 42000 / 200000 行" in whole
    assert 'aria-valuenow="21"' in whole
    assert part.lstrip().startswith('<section id="export-progress"')  # the part htmx swaps
    assert "<html" not in part


def test_a_second_large_export_while_one_runs_leads_to_the_first(
    world, client, issues, small_threshold, django_capture_on_commit_callbacks
):
    client.force_login(world.bureau)
    first = start_dashboard_export(client, django_capture_on_commit_callbacks)

    response = client.post(DASHBOARD_EXPORT, {}, follow=True)

    assert ExportJob.objects.get() == first
    assert response.redirect_chain[-1][0] == first.get_absolute_url()
    assert "你的上一份导出还没有完成" in response.content.decode()


def test_the_requester_hears_by_email_when_they_have_an_address(
    world, client, issues, small_threshold, django_capture_on_commit_callbacks, mailoutbox
):
    world.bureau.email = "zhujianju@example.cn"
    world.bureau.save(update_fields=["email"])
    client.force_login(world.bureau)

    job = start_dashboard_export(client, django_capture_on_commit_callbacks)
    run_worker()  # writes the export, then sends the email it queued

    (mail,) = mailoutbox
    assert mail.to == ["zhujianju@example.cn"]
    assert "导出完成" in mail.subject
    assert f"/exports/{job.pk}/" in mail.body


# --- who may do what ---------------------------------------------------------------------------


@pytest.fixture
def ready_export(world, client, issues, small_threshold, django_capture_on_commit_callbacks):
    """The 安阳 office's export, written."""
    client.force_login(world.handler)
    job = start_dashboard_export(client, django_capture_on_commit_callbacks)
    run_worker()
    job.refresh_from_db()
    assert job.status == "ready"
    client.logout()
    return job


@pytest.mark.parametrize("who", ["alice", "bob", "other_staff", "builder", "bureau"])
def test_nobody_else_sees_or_downloads_an_export(world, client, ready_export, who):
    client.force_login(getattr(world, who))

    assert client.get(ready_export.get_absolute_url()).status_code == 404
    assert client.get(f"/exports/{ready_export.pk}/download/").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, ready_export):
    for url in (ready_export.get_absolute_url(), f"/exports/{ready_export.pk}/download/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_a_clerk_moved_to_another_department_no_longer_has_the_export(world, client, ready_export):
    world.handler.department = world.other_office
    world.handler.save(update_fields=["department"])
    client.force_login(world.handler)

    assert client.get(ready_export.get_absolute_url()).status_code == 404
    assert client.get(f"/exports/{ready_export.pk}/download/").status_code == 404


def test_the_worker_writes_nothing_for_a_requester_who_changed_department(
    world, client, issues, small_threshold, django_capture_on_commit_callbacks
):
    client.force_login(world.handler)
    job = start_dashboard_export(client, django_capture_on_commit_callbacks)
    world.handler.department = world.other_office
    world.handler.save(update_fields=["department"])

    run_worker()

    job.refresh_from_db()
    assert (job.status, job.file.name) == ("failed", "")
    assert "角色或部门已变更" in job.error
    assert not Notification.objects.filter(export=job).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_supervisors_cannot_start_an_export(
    world, client, issues, small_threshold, method, django_capture_on_commit_callbacks
):
    client.force_login(world.alice)

    with django_capture_on_commit_callbacks(execute=True):
        dashboard = getattr(client, method)(DASHBOARD_EXPORT)
        panel = client.post(PANEL_ISSUES, select_all(issues[0][0]))

    assert dashboard.status_code == 403
    assert panel.status_code in (302, 404) and panel.get("Content-Type") != XLSX
    assert not ExportJob.objects.exists()


def test_anonymous_visitors_cannot_start_an_export(client, issues, small_threshold):
    response = client.post(DASHBOARD_EXPORT)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not ExportJob.objects.exists()


def test_starting_needs_the_csrf_token(world, issues, small_threshold):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.bureau)

    assert client.post(DASHBOARD_EXPORT).status_code == 403
    assert not ExportJob.objects.exists()


# --- expiry ------------------------------------------------------------------------------------


def test_expired_exports_are_deleted_with_their_file_and_notification(world, ready_export):
    name = ready_export.file.name
    assert exports.delete_expired() == 0  # still within its 7 days

    later = ready_export.expires_at + timedelta(seconds=1)

    assert exports.delete_expired(now=later) == 1
    assert not ExportJob.objects.exists()
    assert not default_storage.exists(name)
    assert not Notification.objects.filter(recipient=world.handler).exists()


def test_an_expired_export_is_not_downloaded_any_more(world, client, ready_export):
    ExportJob.objects.filter(pk=ready_export.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    client.force_login(world.handler)

    assert client.get(f"/exports/{ready_export.pk}/download/").status_code == 404
    assert "这份导出已过期" in client.get(ready_export.get_absolute_url()).content.decode()


def test_the_sweep_deletes_expired_exports(world, ready_export):
    from supervision import tasks

    ExportJob.objects.filter(pk=ready_export.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    tasks.sweep_overdue.call()

    assert not ExportJob.objects.exists()


def test_the_bell_counts_a_ready_export_and_opening_it_leads_to_the_download(
    world, client, ready_export
):
    """The API's notifications stay issue events; the bell and the notifications page carry the
    word that an export is ready, and opening it goes to its page with the download link."""
    assert not Notification.objects.for_reader(world.handler).filter(export__isnull=False)
    client.force_login(world.handler)

    page = client.get("/notifications/").content.decode()
    assert "导出已完成" in page
    assert int(str(client.get("/issues/").context["unread_notifications"])) >= 1
    notice = Notification.objects.exports_for(world.handler).get()
    response = client.post(f"/notifications/{notice.pk}/")

    assert response["Location"] == ready_export.get_absolute_url()
    notice.refresh_from_db()
    assert notice.read_at is not None
    assert "下载" in client.get(response["Location"]).content.decode()


def test_nobody_else_opens_someones_export_notice(world, client, ready_export):
    notice = Notification.objects.exports_for(world.handler).get()
    client.force_login(world.other_staff)
    assert client.post(f"/notifications/{notice.pk}/").status_code == 404
    assert "导出已完成" not in client.get("/notifications/").content.decode()
