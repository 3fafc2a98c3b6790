"""/return-visits/missed/: the 回头看 patrols nobody paid, for the bureau of their county (and the
oversight of the counties below it; supervision/warranty.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import warranty


@login_required
@never_cache
@require_safe
def missed_return_visits(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_active and (user.is_bureau or user.is_oversight)):
        raise Http404
    page = Paginator(warranty.missed_visits(user=user), 50).get_page(request.GET.get("page"))
    return render(request, "supervision/return_visits_missed.html", {"page": page})
