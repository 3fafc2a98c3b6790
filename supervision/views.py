import os
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path

import segno
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.paginator import Paginator
from django.db import DatabaseError, connection
from django.db.models import Count, DecimalField, F, Prefetch, Q, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from . import stats
from .forms import ProjectFilterForm
from .models import (
    PROJECT_COUNTY,
    Department,
    Issue,
    IssueEvent,
    Photo,
    Project,
    Region,
    ScopeItem,
    Subdistrict,
)
from .public_cache import cached_public_page
from .security import safe_next

FINISHED = [Project.Status.COMPLETED, Project.Status.ACCEPTED]


def _projects():
    return Project.objects.select_related(
        "neighbourhood__subdistrict", "contractor"
    ).prefetch_related("scope_items")


HOME_PROJECTS = 12


def batch_progress(year: int, county: Region | None = None) -> int:
    """The batch's overall progress in percent: the mean of its projects' ``progress()``.

    Computed in SQL from the scope items (one grouped query), so that a province batch of
    thousands of projects costs no more to show than a city one.
    """
    projects = Project.objects.filter(year=year)
    if county is not None:
        projects = projects.filter(**{PROJECT_COUNTY: county})
    rows = (
        ScopeItem.objects.filter(project__in=projects)
        .values("project")
        .annotate(
            items=Count("pk"),
            budgeted=Count("pk", filter=Q(budget__gt=0)),
            total=Sum("budget"),
            done=Sum(F("budget") * F("progress"), output_field=DecimalField()),
            plain=Sum("progress"),
        )
        .values_list("items", "budgeted", "total", "done", "plain")
    )
    projects = projects.count()
    if not projects:
        return 0
    percent = sum(
        round(Decimal(done) / Decimal(total))
        if budgeted == items and total
        else round(plain / items)
        for items, budgeted, total, done, plain in rows
    )
    # Projects without any scope item count as 0 %, as Project.progress() says.
    return round(percent / projects)


# The county-level city a visitor chose (its GB/T 2260 code), remembered for a year.
REGION_COOKIE = "region"


def programme_counties() -> list[Region]:
    """The county-level regions that run a programme (have a project), with their city."""
    return list(
        Region.objects.filter(
            level=Region.Level.COUNTY, subdistricts__neighbourhoods__projects__isnull=False
        )
        .select_related("parent")
        .distinct()
        .order_by("code")
    )


def county_hotline(county_id: int | None) -> str:
    """The supervision hotline of a county: its bureau's public phone, else the site's."""
    phone = (
        Department.objects.filter(region=county_id, kind=Department.Kind.BUREAU, is_active=True)
        .exclude(phone="")
        .order_by("pk")
        .values_list("phone", flat=True)
        .first()
    )
    return phone or settings.SUPERVISION["HOTLINE"]


@require_safe
@cached_public_page
def home(request: HttpRequest) -> HttpResponse:
    """The programme at a glance. Where more than one county-level city runs a programme, the
    one the visitor chose (``REGION_COOKIE``), else the province's list of them (``regions``)."""
    counties = programme_counties()
    if len(counties) < 2:
        return _programme(request, None, counties)
    chosen = request.COOKIES.get(REGION_COOKIE, "")
    county = next((c for c in counties if c.code == chosen), None)
    if county is None:
        return _province(request, counties)
    return _programme(request, county, counties)


@require_safe
@cached_public_page
def regions(request: HttpRequest) -> HttpResponse:
    """The province's home: every county-level city's programme with its headline figures."""
    return _province(request, programme_counties())


@require_safe
def choose_region(request: HttpRequest, code: str) -> HttpResponse:
    """Remember the county-level city chosen and open its home page."""
    region = get_object_or_404(Region, code=code, level=Region.Level.COUNTY)
    response = HttpResponseRedirect("/")
    response.set_cookie(
        REGION_COOKIE, region.code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True
    )
    return response


def _province(request: HttpRequest, counties: list[Region]) -> HttpResponse:
    year = Project.objects.order_by("-year").values_list("year", flat=True).first()
    projects = {
        county: (count, finished)
        for county, count, finished in Project.objects.filter(year=year)
        .values_list(f"{PROJECT_COUNTY}")
        .annotate(n=Count("pk"), done=Count("pk", filter=Q(status__in=FINISHED)))
        .order_by()
    }
    issues = {row["county_id"]: row for row in stats.county_headlines()}
    rows = []
    for county in counties:
        count, finished = projects.get(county.pk, (0, 0))
        rows.append(
            {
                "county": county,
                "projects": count,
                "finished": finished,
                "issues": issues.get(county.pk, {}),
            }
        )
    cities: dict = {}
    for row in rows:
        cities.setdefault(row["county"].parent, []).append(row)
    return render(
        request, "supervision/regions.html", {"year": year, "cities": list(cities.items())}
    )


def _programme(request: HttpRequest, county: Region | None, counties: list[Region]) -> HttpResponse:
    """A county's programme at a glance (every project when ``county`` is None): the current
    batch by status and subdistrict, and the figures.

    Everything on it is an aggregate, and the list shows the most recently updated projects only:
    a province's batch of thousands of projects is one click away on ``/projects/``.
    """
    here = Q() if county is None else Q(**{PROJECT_COUNTY: county})
    year = Project.objects.filter(here).order_by("-year").values_list("year", flat=True).first()
    batch = Project.objects.filter(here, year=year)
    by_status = dict(batch.values_list("status").annotate(n=Count("pk")).order_by())
    totals = batch.aggregate(
        count=Count("pk"),
        to_complete=Count("pk", filter=Q(to_complete_this_year=True)),
        finished=Count("pk", filter=Q(status__in=FINISHED)),
    )
    subdistricts = (
        Subdistrict.objects.filter(Q() if county is None else Q(region=county))
        .annotate(
            project_count=Count(
                "neighbourhoods__projects", filter=Q(neighbourhoods__projects__year=year)
            ),
            finished_count=Count(
                "neighbourhoods__projects",
                filter=Q(
                    neighbourhoods__projects__year=year,
                    neighbourhoods__projects__status__in=FINISHED,
                ),
            ),
        )
        .filter(project_count__gt=0)
    )
    figures = stats.programme_headline(None if county is None else [county.pk])
    context = {
        "county": county,
        "several_counties": len(counties) > 1,
        "year": year,
        "batch_count": totals["count"],
        "recent": list(
            _projects().filter(here, year=year).order_by("-updated_at", "-pk")[:HOME_PROJECTS]
        ),
        "to_complete": totals["to_complete"],
        "finished": totals["finished"],
        "status_counts": [
            (value, label, by_status.get(value, 0)) for value, label in Project.Status.choices
        ],
        "subdistricts": subdistricts,
        "figures": figures,
        "progress": batch_progress(year, county) if year else 0,
    }
    if county is not None:
        context["hotline"] = county_hotline(county.pk)
    return render(request, "supervision/home.html", context)


@require_safe
@cached_public_page(issues=False)
def project_list(request: HttpRequest) -> HttpResponse:
    form = ProjectFilterForm(request.GET or None)
    projects = _projects()
    if form.is_valid():
        projects = form.filter(projects)
    page = Paginator(projects, 30).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "supervision/project_list.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@require_safe
@cached_public_page
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(
        Project.objects.select_related(
            "neighbourhood__subdistrict__region", "contractor"
        ).prefetch_related("departments", "scope_items"),
        pk=pk,
    )
    areas = project.progress_by_area()
    visible = Issue.objects.visible_to(request.user).filter(project=project)
    public_issues = visible.prefetch_related(
        # 问题照片 before 整改照片, as the works went ("after" sorts first by name).
        Prefetch("photos", queryset=Photo.objects.order_by("-kind", "pk"))
    ).order_by("-created_at")[:50]
    # Before/after pairs: public closed issues with a photo of each kind.
    pairs = []
    for issue in public_issues:
        if issue.status != Issue.Status.CLOSED or not issue.is_public:
            continue
        photos = list(issue.photos.all())
        before = next((p for p in photos if p.kind == Photo.Kind.BEFORE), None)
        after = next((p for p in photos if p.kind == Photo.Kind.AFTER), None)
        if before and after:
            pairs.append({"issue": issue, "before": before, "after": after})
    opinion_issues = project.issues.filter(category=Issue.Category.OPINION)
    opinion_areas = list(
        opinion_issues.exclude(area="")
        .values("area")
        .annotate(count=Count("pk"), households=Sum("households"))
        .order_by("-count")
    )
    area_labels = dict(ScopeItem.Area.choices)
    for row in opinion_areas:
        row["label"] = area_labels.get(row["area"], row["area"])
    answers = list(
        IssueEvent.objects.filter(
            issue__in=opinion_issues.visible_to(request.user),
            kind__in=[IssueEvent.Kind.ANSWERED, IssueEvent.Kind.RECTIFIED],
        )
        .select_related("issue", "actor__department")
        .order_by("-created_at")[:10]
    )
    opinions = opinion_issues.aggregate(
        count=Count("pk"),
        households=Sum("households"),
        answered=Count("pk", filter=~Q(status__in=Issue.OPEN_STATUSES)),
    )
    url = request.build_absolute_uri(project.get_absolute_url())
    return render(
        request,
        "supervision/project_detail.html",
        {
            "project": project,
            "eligibility": project.neighbourhood.eligibility(),
            "areas": areas,
            "progress": project.progress(),
            "milestones": project.milestones(),
            "issues": public_issues,
            "pairs": pairs[:6],
            "opinions": opinions,
            "opinion_areas": opinion_areas,
            "opinion_answers": answers,
            # A ballot, not a bare list of households (kept for an acceptance or a survey).
            "consultations": project.consultations.filter(items__isnull=False).distinct(),
            "qr_svg": qr_svg(url, scale=3),
            "page_url": url,
        },
    )


@lru_cache(maxsize=2048)
def qr_svg(url: str, *, scale: int) -> str:
    """The QR code of ``url`` as inline SVG (segno), dark modules only, with a title. Kept per
    process: a project's address does not change, and making the code costs about 3 ms."""
    return mark_safe(  # segno writes the markup; the only text in it is our own URL, escaped
        segno.make(url, error="m").svg_inline(scale=scale, title=url, border=2, omitsize=True)
    )


@require_safe
@cached_public_page(issues=False)
def project_notice(request: HttpRequest, pk: int) -> HttpResponse:
    """The A4 site notice (公示牌) with a large QR code: 扫码查看进度、反映问题."""
    project = get_object_or_404(
        Project.objects.select_related("neighbourhood__subdistrict__region", "contractor"), pk=pk
    )
    url = request.build_absolute_uri(project.get_absolute_url())
    return render(
        request,
        "supervision/project_notice.html",
        {
            "project": project,
            "qr_svg": qr_svg(url, scale=8),
            "page_url": url,
            "hotline": county_hotline(project.neighbourhood.subdistrict.region_id),
            "milestones": project.milestones(),
        },
    )


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")


@require_safe
def offline(request: HttpRequest) -> HttpResponse:
    """What the service worker shows for a page that cannot load without a network."""
    return render(request, "supervision/offline.html")


@cache
def _service_worker_source() -> bytes:
    return Path(finders.find("js/sw.js")).read_bytes()


@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    """/sw.js: served from the root so that it may look after every page of the site."""
    response = HttpResponse(_service_worker_source(), content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    return response


ELDER_COOKIE = "elder"


@require_POST
def toggle_elder_mode(request: HttpRequest) -> HttpResponse:
    """适老化: larger text, larger targets, stronger contrast; remembered for a year."""
    response = HttpResponseRedirect(safe_next(request, request.POST.get("next")))
    if request.COOKIES.get(ELDER_COOKIE) == "1":
        response.delete_cookie(ELDER_COOKIE)
    else:
        response.set_cookie(
            ELDER_COOKIE,
            "1",
            max_age=365 * 24 * 3600,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,  # Secure in production, as the others
        )
    return response


def bare(request: HttpRequest) -> HttpResponse:
    """The baseline of the throughput benchmark (routed only with BENCHMARK_BARE_VIEW=1). It
    answers the run's BENCHMARK_TOKEN, so the bench knows it measures its own server."""
    return HttpResponse(f"ok {os.environ.get('BENCHMARK_TOKEN', '')}", content_type="text/plain")
