"""The logged-in side: my page, filing and following issues, the steps, the 监督群 feed.

Views are short: they fetch through ``Issue.objects.visible_to`` (404 outside the viewer's scope),
call one service, and turn its ``WorkflowError`` into a message on the page.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from api.tokens import address_rate_limited, rate_limited, token_for_key

from . import fragments, keyset, letters, notifications, search, services, warranty
from .access import issue_for, watched_projects, watches
from .addresses import BUILDING_WORDS
from .digest import daily_digest, sane_day
from .feed import feed_page
from .filters import IssueFilter, projects_of
from .forms import STEP_FORMS, IssueForm
from .models import (
    Consultation,
    Issue,
    IssueEvent,
    Notification,
    Photo,
    Project,
    ResponseTemplate,
    ScopeItem,
    Support,
    VoiceNote,
    issue_visible,
)
from .security import as_id, serve_private_file

FEED_PAGE = 30
ISSUES_PAGE = 20


def _done(request: HttpRequest, target, *, back: bool = True) -> HttpResponse:
    """After a successful POST: a redirect, or for the upload script the address to go to (the
    message then shows on that page rather than being used up by the script's request). A form
    in the panel asks to come back to the panel with ``next``."""
    url = target if isinstance(target, str) else target.get_absolute_url()
    asked = request.POST.get("next", "") if back else ""
    if asked.startswith("/panel/") and url_has_allowed_host_and_scheme(
        asked, allowed_hosts={request.get_host()}
    ):
        url = asked
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        response = HttpResponse(status=200)
        response["X-Location"] = url
        return response
    return redirect(url)


def _issue_rows(queryset: QuerySet[Issue]) -> QuerySet[Issue]:
    """What an issue card shows: its project and department, its first photos."""
    return queryset.select_related("project", "department").prefetch_related(
        Prefetch("photos", queryset=Photo.objects.filter(kind=Photo.Kind.BEFORE), to_attr="before")
    )


def _events(queryset: QuerySet[IssueEvent]) -> QuerySet[IssueEvent]:
    return queryset.select_related(
        "actor__department", "department", "issue__project"
    ).prefetch_related("photos", "voice_notes")


# --- my page -----------------------------------------------------------------------------------


@login_required
@never_cache
@require_safe
def me(request: HttpRequest) -> HttpResponse:
    """What a supervisor needs when opening the app: my projects, my issues, what waits for me."""
    user = request.user
    supervisor = getattr(user, "supervisor", None)
    if not user.is_supervisor or supervisor is None:
        return redirect("issue-list")
    # 回头看 due come with the projects, in their one query.
    projects, return_visits = warranty.with_due_visits(
        watched_projects(user)
        .select_related("neighbourhood__subdistrict")
        .prefetch_related(
            Prefetch("scope_items", queryset=ScopeItem.objects.order_by("area", "pk"))
        )
    )
    mine = _issue_rows(Issue.objects.filter(reporter=user))
    # What waits for her check and what is still being handled, in one query: a supervisor has a
    # handful of unfinished issues, never hundreds.
    checking = (Issue.Status.RECTIFIED, Issue.Status.ANSWERED)
    unfinished = list(
        mine.filter(status__in=[*checking, *Issue.OPEN_STATUSES]).order_by("created_at")[:200]
    )
    waiting = [issue for issue in reversed(unfinished) if issue.status in checking]
    open_issues = [issue for issue in unfinished if issue.is_open][:20]
    activity = list(
        _events(IssueEvent.objects.filter(issue__reporter=user).exclude(actor=user)).order_by(
            "-created_at", "-pk"
        )[:10]
    )
    paper_ballots = (
        Consultation.objects.filter(
            project__in=watched_projects(user),
            opens_on__lte=timezone.localdate(),
            closes_on__gte=timezone.localdate(),
        )
        .select_related("project")
        .order_by("closes_on")
    )
    is_serving = services.is_serving_supervisor(user)
    return render(
        request,
        "supervision/me.html",
        {
            "supervisor": supervisor,
            # 居民来信 waiting for the supervisors of my projects (one query).
            "letters": letters.waiting_counts(user) if is_serving else None,
            "paper_ballots": paper_ballots,
            "projects": projects,
            "waiting": waiting,
            "open_issues": open_issues,
            "activity": activity,
            "is_serving": is_serving,
            "return_visits": return_visits,
        },
    )


# --- filing ------------------------------------------------------------------------------------


def _watched(user) -> QuerySet[Project]:
    return watched_projects(user).select_related("neighbourhood").order_by("name")


@login_required
@never_cache
def issue_new(request: HttpRequest) -> HttpResponse:
    """File an issue. A token in the form makes a double tap or a retry land on one issue."""
    user = request.user
    if not services.is_serving_supervisor(user):
        raise PermissionDenied(_("只有在任的群众监督员可以反映问题。"))
    projects = _watched(user)
    status = 200
    if request.method == "POST":
        form = IssueForm(request.POST, request.FILES, projects=projects)
        if form.is_valid():
            try:
                issue = form.submit(user)
            except services.WorkflowError as error:
                if error.field not in form.fields:  # else the form shows it beside the field
                    form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(
                    request,
                    _("已提交，编号 %(ref)s。承办部门会在时限内签收，有进展会在这里显示。")
                    % {"ref": issue.reference},
                )
                return _done(request, issue)
        else:
            status = 400
    else:
        initial = {"token": secrets.token_urlsafe(24), "urgency": Issue.Urgency.NORMAL}
        project_id = as_id(request.GET.get("project"))
        if project_id and projects.filter(pk=project_id).exists():
            initial["project"] = project_id
        elif projects.count() == 1:
            initial["project"] = projects.first().pk
        form = IssueForm(initial=initial, projects=projects)
    context = {"form": form, "rules": services.FILING_MESSAGES}
    return render(request, "supervision/issue_new.html", context, status=status)


SIMILAR_DAYS = 30
SIMILAR_SHOWN = 5


def _same_building(building: str) -> list[str]:
    """The ways people write the building typed (「3」, 「3幢」, 「3 幢」, 「3栋」, 「3号楼」)."""
    plain = building.strip()
    for word in BUILDING_WORDS:
        if plain.endswith(word):
            plain = plain[: -len(word)].strip()
            break
    if not plain:
        return []
    return [plain, *(f"{plain}{space}{word}" for word in BUILDING_WORDS for space in ("", " "))]


@login_required
@never_cache
@require_safe
def issue_similar(request: HttpRequest) -> HttpResponse:
    """The filing form's duplicate hint (是不是这个问题？附议即可): open issues of the same project
    and category from the last 30 days, the same building first, each with a 附议 button.

    Only a serving supervisor's own projects are answered; anything else is an empty answer.
    The same few queries whatever the data: whether the project is theirs, then the issues (with
    each one's first photo and whether this person supported it, as subqueries).
    """
    user = request.user
    if not services.is_serving_supervisor(user):
        raise Http404
    project_id = as_id(request.GET.get("project"))
    category = request.GET.get("category", "")
    issues: list[Issue] = []
    if project_id and category in Issue.Category.values and watches(user, project_id):
        same = _same_building(request.GET.get("building", "")[:20])
        first_photo = Photo.objects.filter(issue=OuterRef("pk"), kind=Photo.Kind.BEFORE)
        issues = list(
            Issue.objects.filter(
                project_id=project_id,
                category=category,
                status__in=Issue.OPEN_STATUSES,
                created_at__gte=timezone.now() - timedelta(days=SIMILAR_DAYS),
            )
            .annotate(
                nearby=Case(When(building__in=same, then=Value(0)), default=Value(1)),
                photo_id=Subquery(first_photo.order_by("pk").values("pk")[:1]),
                supported=Exists(Support.objects.filter(issue=OuterRef("pk"), supporter=user.pk)),
            )
            .only("pk", "reference", "title", "building", "support_count", "reporter", "created_at")
            .order_by("nearby", "-created_at", "-pk")[:SIMILAR_SHOWN]
        )
    return render(request, "supervision/_similar.html", {"issues": issues})


# --- one issue ---------------------------------------------------------------------------------
# --- one issue ---------------------------------------------------------------------------------


def issue_page_context(request: HttpRequest, issue: Issue, forms: dict | None = None) -> dict:
    """The issue page (and the panel's issue page): the thread, the photos, and the step forms
    this person may use, the one the work calls for first and open (``services.next_step``),
    each with the response templates written for it."""
    user = request.user
    events = list(_events(issue.events.all()).order_by("created_at", "pk"))
    photos = list(issue.photos.all())
    steps = services.allowed_steps(user, issue)
    first = services.next_step(issue, steps)
    forms = forms or {}
    step_forms = [
        forms.get(step) or STEP_FORMS[step](issue=issue, user=user)
        for step in sorted(steps, key=lambda step: step != first)
        if step in STEP_FORMS
    ]
    # 改派: a dispatched issue is offered the other contractors, or no dispatch at all.
    step_forms = [form for form in step_forms if form.applies()]
    if user.is_department_staff or user.is_bureau:
        templates = list(
            ResponseTemplate.objects.filter(
                Q(department__isnull=True) | Q(department_id=user.department_id)
            )
        )
        for form in step_forms:
            form.response_templates = [t for t in templates if t.step in ("", form.step)]
    return {
        "issue": issue,
        "events": events,
        "before": [p for p in photos if p.kind == Photo.Kind.BEFORE],
        "after": [p for p in photos if p.kind == Photo.Kind.AFTER],
        "pending_photos": sum(p.state == Photo.State.PENDING for p in photos),
        "failed_photos": [p for p in photos if p.state == Photo.State.FAILED],
        "step_forms": step_forms,
        "next_step": first,
        # Open on the page: the step sent back with errors, else the one the work calls for.
        "open_step": next(iter(forms), first or ""),
    }


def _issue_queryset() -> QuerySet[Issue]:
    return Issue.objects.select_related(
        "project__neighbourhood__subdistrict",
        "project__contractor",
        "department",
        "contractor",
        "reporter",
    )


@login_required
@never_cache
@require_safe
def issue_detail(request: HttpRequest, pk: int) -> HttpResponse:
    issue = issue_for(request.user, pk, _issue_queryset())
    return render(request, "supervision/issue_detail.html", issue_page_context(request, issue))


@login_required
@never_cache
@require_POST
def issue_step(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    """POST one workflow step. Refusals change nothing and say why on the issue page."""
    issue = issue_for(request.user, pk, _issue_queryset())
    form_class = STEP_FORMS.get(step)
    if form_class is None:
        raise Http404
    refused = services.refusal(request.user, issue, step)
    if refused is not None:
        # Refuse first: no point asking to fix the fields, or reading photos, of such a step.
        context = issue_page_context(request, issue)
        context["refusal"] = refused.message
        return render(request, "supervision/issue_detail.html", context, status=refused.status_code)
    form = form_class(request.POST, request.FILES, issue=issue, user=request.user)
    if not form.is_valid():
        context = issue_page_context(request, issue, {step: form})
        context["refusal"] = _("请按提示修改后再提交。")
        return render(request, "supervision/issue_detail.html", context, status=400)
    try:
        form.run()
    except services.WorkflowError as error:
        issue.refresh_from_db()
        if error.field in form.fields:  # what they sent: shown beside the field, kept
            form.add_error(error.field, error.message)
            context = issue_page_context(request, issue, {step: form})
            context["refusal"] = _("请按提示修改后再提交。")
        else:
            context = issue_page_context(request, issue)
            context["refusal"] = error.message
        return render(request, "supervision/issue_detail.html", context, status=error.status_code)
    if not issue_visible(request.user, issue):
        # Transferred away: the issue is no longer theirs to see; back to their queue.
        messages.success(
            request,
            _("已转派给%(department)s，这个问题不再在您的待办中。")
            % {"department": issue.department.name},
        )
        return _done(request, _queue_url(request), back=False)
    messages.success(request, _("已%(step)s。") % {"step": form.label})
    return _done(request, issue)


def _queue_url(request: HttpRequest) -> str:
    """Where a member of staff's work is listed: the panel's queue when they came from the panel."""
    if request.POST.get("next", "").startswith("/panel/"):
        return reverse("panel:supervision_issue_changelist")
    return reverse("issue-list")


# --- the list ----------------------------------------------------------------------------------


@login_required
@never_cache
@require_safe
def issue_list(request: HttpRequest) -> HttpResponse:
    # The page's rows carry only what finds each card in the cache (fragments.issue_cards).
    issues = Issue.objects.visible_to(request.user).only("pk", "created_at", "updated_at")
    query = request.GET.copy()
    for name in ("before", "after", "page"):
        query.pop(name, None)
    filterset = None
    rows = issues
    words = ""
    if any(query.values()):
        filterset = IssueFilter(query, queryset=issues, request=request, ranked=True)
        if filterset.is_valid():
            rows = filterset.qs
            words = filterset.form.cleaned_data.get("q") or ""
    before, after = request.GET.get("before"), request.GET.get("after")
    if words.strip():  # the other filters' issues that hold the words, the best first
        page = search.page(rows, words, before=before, after=after, size=ISSUES_PAGE)
    else:
        page = keyset.paginate(rows, before=before, after=after, size=ISSUES_PAGE)
    cards = fragments.issue_cards(
        page.object_list, lambda pks: _issue_rows(Issue.objects.all()).in_bulk(pks)
    )

    def filter_form(data: dict) -> str:
        form = IssueFilter(data or None, queryset=issues, request=request).form
        return render_to_string("includes/issue_filters.html", {"form": form})

    if filterset is not None and filterset.errors:
        filters = render_to_string("includes/issue_filters.html", {"form": filterset.form})
    else:
        # Kept without the typed words (never kept), which then go into their box.
        others = query.copy()
        others.pop("q", None)
        filters = fragments.cached_html(
            ("issue-filters", projects_of(request.user)[1], others.urlencode()),
            partial(filter_form, others),
        )
        if words.strip():
            blank = IssueFilter(None, queryset=issues, request=request).form["q"]
            filters = mark_safe(filters.replace(str(blank), str(filterset.form["q"]), 1))
    others = [(name, value) for name, value in query.lists() if name != "q" for value in value]
    return render(
        request,
        "supervision/issue_list.html",
        {
            "filters": filters,
            "page": page,
            "cards": cards,
            "query": query.urlencode(),
            "words": query.get("q", ""),
            # The other filters: kept by the search box, and the 筛选 panel open when any is set.
            "other_filters": [(name, value) for name, value in others if value],
        },
    )


# --- the 监督群 feed -----------------------------------------------------------------------------


@login_required
@never_cache
@require_safe
def feed(request: HttpRequest) -> HttpResponse:
    """Every event the viewer may see, newest first; keyset pages, never OFFSET. What the
    system does by itself (督办 by the sweep, 提醒评价) is one line per day and kind.

    ``?after=<cursor>`` answers the poll for newer events; ``?before=<cursor>`` loads older ones.
    """
    events = _events(IssueEvent.objects.visible_to(request.user))
    after, before = request.GET.get("after"), request.GET.get("before")
    page = feed_page(events, after=after, before=before, size=FEED_PAGE)
    context = {
        "items": page.items,
        "events": page.events,
        "groups": page.groups,
        "older": page.older or "",
        "newest": page.newest,
    }
    if keyset.parse_cursor(after):
        return render(request, "supervision/_feed_new.html", context)
    if keyset.parse_cursor(before):
        return render(request, "supervision/_feed_page.html", context)
    return render(request, "supervision/feed.html", context)


# --- photos ------------------------------------------------------------------------------------


@require_safe
def photo(request: HttpRequest, pk: int, thumbnail: bool = False) -> HttpResponse:
    """A photo, only for whom may see its issue (the public: public issues only).

    An API client (the mini-program) has no session: it sends its key as
    ``Authorization: Bearer <key>``, as for the API's own addresses, which hand out these URLs.
    Such a request counts against the key's quota like any API call (``API_RATE_LIMIT`` a
    minute, shared with ``/api/v1/`` and Open311), and a key that is not valid against the
    address's (guessing keys); over it, the API's own 429. A browser's session is not counted.
    """
    viewer = request.user
    if not viewer.is_authenticated:
        scheme, _sep, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = token_for_key(key.strip())
            if token is None:
                if address_rate_limited(request):
                    return _api_rate_limited()
            elif rate_limited(token):
                return _api_rate_limited()
            else:
                viewer = token.user
    item = get_object_or_404(Photo.objects.visible_to(viewer).select_related("issue"), pk=pk)
    if not item.is_ready:
        return _photo_tile(item)
    return serve_private_file(
        item.thumbnail if thumbnail else item.image, public=item.issue.is_public
    )


TILE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 400 400">'
    '<rect width="400" height="400" fill="{background}"/>'
    '<text x="200" y="222" font-size="64" text-anchor="middle" fill="{colour}" '
    'font-family="sans-serif">{text}</text></svg>'
)


def _photo_tile(item: Photo) -> HttpResponse:
    """What a photo's addresses show until the worker has converted it (a HEIC photo), or once
    it could not: a tile that says so, never the file as sent. Not kept by the browser, so the
    photo itself shows as soon as it is ready."""
    if item.state == Photo.State.PENDING:
        svg = TILE.format(background="#e9ecef", colour="#495057", text=_("照片处理中"))
    else:
        svg = TILE.format(background="#f8d7da", colour="#842029", text=_("照片无法处理"))
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _api_rate_limited() -> HttpResponse:
    """The JSON API's answer to a key over its quota (``api.v1``): 429, ``{detail, errors}``
    and ``Retry-After`` until the minute's window ends."""
    body = {"detail": _("请求太频繁了，请稍后再试。"), "errors": []}
    response = JsonResponse(body, status=429, json_dumps_params={"ensure_ascii": False})
    response["Retry-After"] = str(60 - timezone.now().second)
    return response


@require_safe
def voice_note(request: HttpRequest, pk: int) -> FileResponse:
    """A voice note, only for whom may see its issue (the public: public issues only)."""
    item = get_object_or_404(VoiceNote.objects.visible_to(request.user), pk=pk)
    return serve_private_file(item.audio, content_type="audio/mp4")


# --- notifications -----------------------------------------------------------------------------


@login_required
@never_cache
@require_safe
def notification_list(request: HttpRequest) -> HttpResponse:
    items = list(
        Notification.objects.shown_to(request.user)
        .select_related("event__issue__project", "event__actor__department", "export", "project")
        .order_by("-created_at", "-pk")[:50]
    )
    return render(request, "supervision/notifications.html", {"items": items})


@login_required
@require_POST
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    mine = Notification.objects.shown_to(request.user)
    item = get_object_or_404(mine.select_related("event", "export", "project"), pk=pk)
    notifications.mark_read(request.user, item.pk)
    if item.export_id:
        return redirect(item.export)
    if item.project_id:
        # Our own path, stored by the service that wrote the notice; never an outside address.
        url = item.url if item.url.startswith("/") and not item.url.startswith("//") else ""
        return redirect(url or item.project.get_absolute_url())
    return redirect(f"{reverse('issue-detail', args=[item.event.issue_id])}#event-{item.event_id}")


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    count = notifications.mark_read(request.user)
    messages.success(request, _("已将 %(n)d 条通知标为已读。") % {"n": count})
    return redirect("notifications")


# --- the daily digest --------------------------------------------------------------------------


@login_required
@never_cache
@require_safe
def digest(request: HttpRequest) -> HttpResponse:
    """Yesterday's digest, paste-ready for the WeChat group; staff see their own scope."""
    user = request.user
    if not (user.is_department_staff or user.is_bureau or user.is_oversight):
        raise PermissionDenied(_("日报供部门、住建局和上级主管部门使用。"))
    yesterday = timezone.localdate() - timedelta(days=1)
    day = yesterday
    raw = request.GET.get("date", "")
    if raw:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            day = None
        if day is None or not sane_day(day):
            day = yesterday
            messages.error(request, _("日期格式应为 YYYY-MM-DD（2000 年以后），已显示昨天的日报。"))
    text = daily_digest(day, Issue.objects.visible_to(user))
    return render(request, "supervision/digest.html", {"day": day, "text": text})


@login_required
@never_cache
@require_safe
def account_settings(request: HttpRequest) -> HttpResponse:
    """设置: password, elder mode, language, WeChat and 消息提醒, the keys of apps acting for the
    person, logging out."""
    from accounts.wechat_views import settings_context  # noqa: PLC0415

    return render(request, "supervision/settings.html", settings_context(request))
