"""The person's own API keys: list, create (the key shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from .forms import ApiKeyForm
from .models import ApiToken
from .tokens import create_token, revoke_token


@login_required
@never_cache
def api_keys(request: HttpRequest) -> HttpResponse:
    """My keys; a POST makes a new one and shows it on this response only, never again."""
    new_key = ""
    status = 200
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            _token, new_key = create_token(request.user, form.cleaned_data["name"])
            form = ApiKeyForm()
        else:
            status = 400
    else:
        form = ApiKeyForm()
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at", "-pk")
    return render(
        request,
        "api/api_keys.html",
        {"form": form, "tokens": tokens, "new_key": new_key},
        status=status,
    )


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of my keys; somebody else's key does not exist for me (404)."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if token.is_active:
        revoke_token(token)
        messages.success(
            request, _("已吊销密钥“%(name)s”，用它的应用将无法再访问。") % {"name": token.name}
        )
    return redirect("api-keys")
