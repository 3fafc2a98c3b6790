"""/exports/<id>/: following a large export and downloading it — only for the one who asked (404
for anybody else). Also the panel's 「导出所选问题（Excel）」, instant or in the background."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import exports, xlsx
from .models import ExportJob, Issue, Notification
from .security import serve_private_file


def export_for(user, pk: int) -> ExportJob:
    """The export if ``user`` asked for it (and still may have it), else 404."""
    job = get_object_or_404(ExportJob.objects.filter(requester_id=user.pk), pk=pk)
    if not exports.may_have(job, user):
        raise Http404
    return job


def recent_exports(user) -> list[ExportJob]:
    """The requester's exports still kept, newest first: the way back to one left running."""
    return [
        job
        for job in ExportJob.objects.filter(requester_id=user.pk).order_by("-created_at")[:5]
        if exports.may_have(job, user) and not job.is_expired
    ]


def started(request: HttpRequest, job: ExportJob, created: bool) -> HttpResponse:
    """After starting (or finding) a background export: to its page, with a word on what next."""
    if created:
        messages.info(
            request,
            _("共 %(n)d 行，正在后台导出，完成后即可在本页下载。") % {"n": job.total_rows},
        )
    else:
        messages.warning(request, _("你的上一份导出还没有完成，请等它完成后再导出。"))
    return redirect(job)


def start_issues_export(
    request: HttpRequest, rows: QuerySet[Issue], *, total: int, filename: str
) -> HttpResponse:
    """The panel's export of more selected issues than a request should write (「全选」 over a
    province): started in the background, followed on its page."""
    job, created = exports.start_export(
        requester=request.user,
        kind=ExportJob.Kind.ISSUES,
        issues=rows,
        total=total,
        filename=filename,
    )
    return started(request, job, created)


def _mark_read(user, job: ExportJob) -> None:
    Notification.objects.exports_for(user).filter(export=job, read_at__isnull=True).update(
        read_at=timezone.now()
    )


@login_required
@never_cache
@require_safe
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = export_for(request.user, pk)
    if job.status == ExportJob.Status.READY:
        _mark_read(request.user, job)
    template = (
        "supervision/exports/_progress.html" if request.htmx else "supervision/exports/detail.html"
    )
    return render(request, template, {"job": job})


@login_required
@never_cache
@require_safe
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    job = export_for(request.user, pk)
    if job.status != ExportJob.Status.READY or job.is_expired:
        raise Http404
    response = serve_private_file(job.file, content_type=xlsx.CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{job.filename}"'
    _mark_read(request.user, job)
    return response
