from django.http import HttpRequest


def unread_notifications(request: HttpRequest) -> dict:
    """The bell's count on every page: one indexed COUNT, only for someone logged in."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": user.notifications.filter(read_at__isnull=True).count()}
