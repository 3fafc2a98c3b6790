from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .models import Notification
from .services import is_serving_supervisor


def unread_notifications(request: HttpRequest) -> dict:
    """The bell's count and whether to offer 「我要反映」: computed only when a page shows them."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "unread_notifications": SimpleLazyObject(
            lambda: Notification.objects.shown_to(user).filter(read_at__isnull=True).count()
        ),
        "can_file_issue": SimpleLazyObject(lambda: is_serving_supervisor(user)),
    }


def site(request: HttpRequest) -> dict:
    context = {
        "hotline": settings.SUPERVISION["HOTLINE"],
        "elder_mode": request.COOKIES.get("elder") == "1",
    }
    placeholder = getattr(request, "public_cache_csrf", None)
    if placeholder:
        # A public page built for the cache: each visitor's token replaces this one.
        context["csrf_token"] = placeholder
    return context
