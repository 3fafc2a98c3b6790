"""Exports at any size: the dashboard's workbook and the panel's issue list.

Up to ``EXPORT_INLINE_MAX_ROWS`` issues are written inside the request, as always. A larger export
becomes an ``ExportJob``: the ``write_export`` task (run by ``db_worker``) streams the rows into a
write-only workbook in a temporary file, reports its progress on the job every chunk, stores the
file privately (``private/exports/<random>.xlsx`` in the default storage, reached only through
``export_views``) and tells the requester it is ready. Files expire after ``EXPORT_KEEP_DAYS``
days; the sweep deletes them.

The rows are what the requester may export at the moment the task runs: the dashboard's scope
and period, or the panel's selection, narrowed again by ``issue_visibility``; a requester who has
changed role or department meanwhile gets nothing.
"""

from __future__ import annotations

import logging
import pickle
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from . import stats, xlsx
from .deliveries import enqueue_delivery
from .models import (
    PROJECT_COUNTY,
    Delivery,
    ExportJob,
    Issue,
    Notification,
    issue_visibility,
    programme,
)

logger = logging.getLogger(__name__)
Kind = ExportJob.Kind
Status = ExportJob.Status


class ExportRefused(Exception):
    """The requester may no longer export what they asked for."""


def is_large(total: int) -> bool:
    return total > settings.EXPORT_INLINE_MAX_ROWS


# --- what is exported --------------------------------------------------------------------------


def dashboard_issues(scope: str, period: stats.Period) -> QuerySet[Issue]:
    """The dashboard's issue list: the scope's issues filed in the period, oldest first."""
    return period.apply(stats.scope_issues(scope)).order_by("created_at", "pk")


def may_export(user) -> bool:
    """Who exports: department staff, the bureau (its county's rows) and the oversight (the rows
    of the counties below it)."""
    return user.is_active and (user.is_bureau or user.is_department_staff or user.is_oversight)


def write_dashboard(
    target: IO[bytes],
    *,
    summary: dict,
    scope: str,
    period: stats.Period,
    progress=None,
    requester=None,
) -> int:
    """The dashboard's workbook: 统计 (``summary``: the figures as the person saw them), 问题清单,
    监督员活跃度. Returns how many issues it listed. With ``requester``, the rows are narrowed
    again to what they may read (a county's bureau: its county's, whatever ``scope`` says)."""
    book = xlsx.new_book()
    xlsx.rows_sheet(book, _("统计"), summary["rows"], bold_rows=summary["bold"], widths={"A": 28})
    listed = dashboard_issues(scope, period)
    scoped = period.apply(stats.scope_issues(scope))
    patrols = period.apply(stats.scope_patrols(scope))
    if requester is not None:
        condition = issue_visibility(requester)
        if condition is not None:
            listed, scoped = listed.filter(condition), scoped.filter(condition)
        county = programme(requester, f"project__{PROJECT_COUNTY}")
        if county is not None and (requester.is_bureau or requester.is_oversight):
            patrols = patrols.filter(county)
    written = xlsx.issues_sheet(book, listed, progress=progress)
    activity = stats.supervisor_activity(scoped, patrols)
    xlsx.rows_sheet(
        book,
        _("监督员活跃度"),
        [
            [_("月份"), _("监督员"), _("反映问题"), _("巡查")],
            *(
                [row["month"].strftime("%Y-%m"), row["name"], row["issues"], row["patrols"]]
                for row in activity
            ),
        ],
    )
    book.save(target)
    return written


def write_issues(target: IO[bytes], issues: QuerySet[Issue], *, progress=None) -> int:
    """The panel's issue list alone."""
    book = xlsx.new_book()
    written = xlsx.issues_sheet(book, issues, progress=progress)
    book.save(target)
    return written


# --- starting one ------------------------------------------------------------------------------


def requester_scope(user) -> dict[str, Any]:
    """What an export's rows depend on besides its conditions: who asked, in which role, of
    which department and region."""
    return {"role": user.role, "department": user.department_id, "region": user.region_id}


def may_have(job: ExportJob, user) -> bool:
    """Whether ``user`` may follow and download ``job``: the one who asked, still in the role,
    department and region they asked in (a transferred clerk takes nothing of the old department
    along, a coordinator moved to another county nothing of the old county)."""
    return (
        user.is_authenticated
        and user.pk == job.requester_id
        and may_export(user)
        and all(
            job.params.get(key, value) == value
            # A job of before regions has no region: only 瑞安's rows existed then.
            if key == "region"
            else job.params.get(key) == value
            for key, value in requester_scope(user).items()
        )
    )


def unfinished_export(user) -> ExportJob | None:
    """The requester's export still being written, if any: one at a time per person."""
    jobs = ExportJob.objects.filter(requester=user, status__in=ExportJob.UNFINISHED)
    return next((job for job in jobs.order_by("-created_at")[:5] if not job.is_stuck), None)


def start_export(
    *,
    requester,
    kind: str,
    issues: QuerySet[Issue],
    total: int,
    filename: str,
    params: dict | None = None,
) -> tuple[ExportJob, bool]:
    """Queue an export for the background worker; (the job, True).

    With an export of theirs still being written, that one and False: a person waits for one
    province-wide workbook at a time. ``issues`` is kept (as its pickled query) only for the
    panel's selection; the dashboard's rows follow from its scope and period in ``params``.
    """
    if not may_export(requester):
        raise ExportRefused(_("只有部门工作人员、住建局和上级主管部门可以导出。"))
    delete_expired()
    running = unfinished_export(requester)
    if running is not None:
        return running, False
    job = ExportJob.objects.create(
        requester=requester,
        kind=kind,
        params={
            **(params or {}),
            **requester_scope(requester),
            "language": translation.get_language() or settings.LANGUAGE_CODE,
        },
        query=pickle.dumps(issues.query) if kind == Kind.ISSUES else None,
        total_rows=total,
        filename=filename,
    )
    transaction.on_commit(lambda: write_export.enqueue(job.pk))
    return job, True


def period_params(scope: str, period: stats.Period) -> dict[str, str]:
    return {
        "scope": scope,
        "start": period.start.isoformat() if period.start else "",
        "end": period.end.isoformat() if period.end else "",
        "label": str(period.label),
    }


def _period(params: dict) -> stats.Period:
    def day(value: str) -> date | None:
        return date.fromisoformat(value) if value else None

    return stats.Period(day(params["start"]), day(params["end"]), params["label"])


# --- writing one (the worker) ------------------------------------------------------------------


def job_issues(job: ExportJob) -> QuerySet[Issue]:
    """The rows of ``job``, within what its requester may read now."""
    if job.kind == Kind.DASHBOARD:
        issues = dashboard_issues(job.params["scope"], _period(job.params))
    else:
        issues = Issue.objects.all()
        issues.query = pickle.loads(job.query)  # written by start_export, from our own database
    condition = issue_visibility(job.requester)
    return issues if condition is None else issues.filter(condition)


@task()
def write_export(job_id: int) -> str:
    """Write a queued export; "ready", "failed", or "gone" when it was taken or deleted."""
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, updated_at=now
    )
    if not claimed:
        return "gone"
    job = ExportJob.objects.select_related("requester").get(pk=job_id)
    try:
        with translation.override(job.params.get("language") or settings.LANGUAGE_CODE):
            write(job)
    except Exception as error:
        logger.exception("export %s failed", job.pk)
        message = str(error) if isinstance(error, ExportRefused) else _("导出时出错，请重新导出。")
        now = timezone.now()
        ExportJob.objects.filter(pk=job.pk).update(
            status=Status.FAILED,
            error=message[:300],
            updated_at=now,
            finished_at=now,
            expires_at=now + timedelta(days=settings.EXPORT_KEEP_DAYS),
        )
        return "failed"
    notify_ready(job)
    return "ready"


def write(job: ExportJob) -> None:
    """Stream the rows into a temporary file, then store it privately and mark the job ready."""
    if not may_have(job, job.requester):
        raise ExportRefused(_("你的角色或部门已变更，不能再导出这些问题。"))
    issues = job_issues(job)
    job.total_rows = issues.count()
    job.save(update_fields=["total_rows"])

    def progress(done: int) -> None:
        ExportJob.objects.filter(pk=job.pk).update(done_rows=done, updated_at=timezone.now())

    with tempfile.TemporaryFile(suffix=".xlsx") as out, reading_without_mmap():
        if job.kind == Kind.DASHBOARD:
            written = write_dashboard(
                out,
                summary=job.params["summary"],
                scope=job.params["scope"],
                period=_period(job.params),
                progress=progress,
                requester=job.requester,
            )
        else:
            written = write_issues(out, issues, progress=progress)
        out.seek(0)
        name = default_storage.save(
            f"private/exports/{secrets.token_hex(16)}.xlsx", File(out, name=job.filename)
        )
    now = timezone.now()
    job.file = name
    job.status = Status.READY
    job.done_rows = job.total_rows = written
    job.updated_at = job.finished_at = now
    job.expires_at = now + timedelta(days=settings.EXPORT_KEEP_DAYS)
    job.save(
        update_fields=[
            "file",
            "status",
            "done_rows",
            "total_rows",
            "updated_at",
            "finished_at",
            "expires_at",
        ]
    )


@contextmanager
def reading_without_mmap() -> Iterator[None]:
    """On SQLite, read through the page cache rather than the memory map for a while.

    The settings map up to 256 MB of the database file into each process, which pages read
    stay in; a scan of every issue would hold most of the file in the worker's resident memory
    long after the export. PostgreSQL needs nothing of the kind.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA mmap_size")
        mapped = cursor.fetchone()  # no row for an in-memory database
        cursor.execute("PRAGMA mmap_size=0")
    try:
        yield
    finally:
        if mapped:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA mmap_size={int(mapped[0])}")


def notify_ready(job: ExportJob) -> None:
    """The requester's bell, and an email when they have an address, with the download link."""
    Notification.objects.create(recipient=job.requester, export=job)
    email = job.requester.email
    if not email:
        return
    link = f"{settings.SITE_URL}{job.get_absolute_url()}"
    delivery = Delivery.objects.create(
        channel=Delivery.Channel.EMAIL,
        target=email,
        subject=_("【群众监督】导出完成：%(name)s") % {"name": job.filename},
        body="\n".join(
            [
                _("你导出的 %(n)d 个问题已经生成，可在 %(days)d 天内下载：")
                % {"n": job.total_rows, "days": settings.EXPORT_KEEP_DAYS},
                link,
            ]
        ),
    )
    enqueue_delivery(delivery.pk)


# --- expiry ------------------------------------------------------------------------------------


def delete_expired(now: datetime | None = None) -> int:
    """Delete the exports past their expiry (and those that never finished, after as long), with
    their files and notifications; how many. Run by the sweep and before each new export."""
    now = now or timezone.now()
    keep = timedelta(days=settings.EXPORT_KEEP_DAYS)
    expired = ExportJob.objects.filter(
        Q(expires_at__lt=now) | Q(expires_at__isnull=True, created_at__lt=now - keep)
    )
    gone = 0
    for job in expired.only("pk", "file")[:500]:
        if job.file:
            default_storage.delete(job.file.name)
        job.delete()
        gone += 1
    return gone
