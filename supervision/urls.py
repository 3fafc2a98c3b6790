import os

from django.contrib import admin
from django.urls import include, path

from accounts import sms_views, two_factor, wechat_views
from accounts import views as account_views

from . import (
    acceptance_views,
    dashboard,
    export_views,
    issue_views,
    letter_views,
    resident_views,
    survey_views,
    views,
    warranty_views,
)
from .forms import STEP_FORMS
from .panel import panel

urlpatterns = [
    path("", views.home, name="home"),
    path("regions/", views.regions, name="regions"),
    path("regions/<str:code>/", views.choose_region, name="region-choose"),
    path("projects/", views.project_list, name="project-list"),
    path("projects/<int:pk>/", views.project_detail, name="project-detail"),
    path("projects/<int:pk>/notice/", views.project_notice, name="project-notice"),
    path("projects/<int:pk>/letters/new/", letter_views.letter_new, name="letter-new"),
    path("projects/<int:pk>/letters/sent/", letter_views.letter_sent, name="letter-sent"),
    path(
        "projects/<int:pk>/acceptance/",
        acceptance_views.acceptance_record,
        name="acceptance-record",
    ),
    path(
        "projects/<int:pk>/acceptance/new/", acceptance_views.acceptance_new, name="acceptance-new"
    ),
    path("acceptances/<int:pk>/sign/", acceptance_views.acceptance_sign, name="acceptance-sign"),
    path(
        "acceptances/<int:pk>/opinion/",
        acceptance_views.acceptance_opinion,
        name="acceptance-opinion",
    ),
    path(
        "acceptances/<int:pk>/views/<int:view>/issue/",
        acceptance_views.acceptance_leftover,
        name="acceptance-leftover",
    ),
    path("acceptances/<int:pk>/close/", acceptance_views.acceptance_close, name="acceptance-close"),
    path(
        "acceptances/photos/<int:pk>/", acceptance_views.acceptance_photo, name="acceptance-photo"
    ),
    path(
        "acceptances/photos/<int:pk>/thumb/",
        acceptance_views.acceptance_photo,
        {"thumbnail": True},
        name="acceptance-photo-thumbnail",
    ),
    path("letters/<str:code>/", letter_views.letter_track, name="letter-track"),
    path("letters/<str:code>/photos/<int:pk>/", letter_views.letter_photo, name="letter-photo"),
    path(
        "letters/<str:code>/photos/<int:pk>/thumb/",
        letter_views.letter_photo,
        {"thumbnail": True},
        name="letter-photo-thumbnail",
    ),
    path("me/letters/", letter_views.letter_inbox, name="letter-inbox"),
    path("me/letters/<int:pk>/", letter_views.letter_triage, name="letter-triage"),
    *(
        path(
            f"me/letters/<int:pk>/{action}/",
            letter_views.letter_step,
            {"action": action},
            name=f"letter-{action}",
        )
        for action in letter_views.STEP_FORMS
    ),
    path("healthz", views.healthz, name="healthz"),
    path("offline/", views.offline, name="offline"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("elder-mode/", views.toggle_elder_mode, name="elder-mode"),
    path("me/", issue_views.me, name="me"),
    path(
        "return-visits/missed/",
        warranty_views.missed_return_visits,
        name="return-visits-missed",
    ),
    path("me/settings/", issue_views.account_settings, name="settings"),
    path("issues/", issue_views.issue_list, name="issue-list"),
    path("issues/new/", issue_views.issue_new, name="issue-new"),
    path("issues/similar/", issue_views.issue_similar, name="issue-similar"),
    path("issues/<int:pk>/", issue_views.issue_detail, name="issue-detail"),
    *(
        path(
            f"issues/<int:pk>/{step}/", issue_views.issue_step, {"step": step}, name=f"issue-{step}"
        )
        for step in STEP_FORMS
    ),
    path("feed/", issue_views.feed, name="feed"),
    path("digest/", issue_views.digest, name="digest"),
    path("consultations/<int:pk>/", resident_views.consultation, name="consultation"),
    path(
        "consultations/<int:pk>/paper/",
        resident_views.consultation_paper,
        name="consultation-paper",
    ),
    path(
        "consultations/<int:pk>/slips/",
        resident_views.consultation_slips,
        name="consultation-slips",
    ),
    path("projects/<int:pk>/survey/new/", survey_views.survey_open, name="survey-open"),
    path("surveys/<int:pk>/", survey_views.survey, name="survey"),
    path("surveys/<int:pk>/paper/", survey_views.survey_paper, name="survey-paper"),
    path("surveys/<int:pk>/close/", survey_views.survey_close, name="survey-close"),
    path("patrols/", resident_views.patrol_list, name="patrol-list"),
    path("patrols/new/", resident_views.patrol_new, name="patrol-new"),
    path("patrols/stale/", resident_views.patrol_stale, name="patrol-stale"),
    path("patrols/<int:pk>/", resident_views.patrol_detail, name="patrol-detail"),
    path(
        "patrols/<int:pk>/checks/<int:check>/issue/",
        resident_views.patrol_check_to_issue,
        name="patrol-check-issue",
    ),
    path("patrols/photos/<int:pk>/", resident_views.patrol_photo, name="patrol-photo"),
    path(
        "patrols/photos/<int:pk>/thumb/",
        resident_views.patrol_photo,
        {"thumbnail": True},
        name="patrol-photo-thumbnail",
    ),
    path("supervisors/", resident_views.supervisor_directory, name="supervisor-directory"),
    path(
        "supervisors/<int:pk>/certificate/",
        resident_views.supervisor_certificate,
        name="supervisor-certificate",
    ),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/export.xlsx", dashboard.dashboard_export, name="dashboard-export"),
    path("dashboard/report/", dashboard.monthly_report, name="monthly-report"),
    path(
        "exports/",
        include(
            (
                [
                    path("<int:pk>/", export_views.export_detail, name="detail"),
                    path("<int:pk>/download/", export_views.export_download, name="download"),
                ],
                "exports",
            )
        ),
    ),
    path("notifications/", issue_views.notification_list, name="notifications"),
    path("notifications/read/", issue_views.notifications_read, name="notifications-read"),
    path("notifications/<int:pk>/", issue_views.notification_open, name="notification-open"),
    path("photos/<int:pk>/", issue_views.photo, name="photo"),
    path("voice/<int:pk>/", issue_views.voice_note, name="voice-note"),
    path("photos/<int:pk>/thumb/", issue_views.photo, {"thumbnail": True}, name="photo-thumbnail"),
    path("accounts/login/", account_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", account_views.LogoutView.as_view(), name="logout"),
    path("accounts/login/otp/", two_factor.login_code, name="login-otp"),
    path("accounts/otp/setup/", two_factor.setup, name="otp-setup"),
    # SMS codes (accounts/sms.py): 404 unless SMS_BACKEND is set.
    path("accounts/login/sms/", sms_views.login_mobile, name="sms-login"),
    path("accounts/login/sms/code/", sms_views.login_code, name="sms-login-code"),
    path("accounts/password/reset/", sms_views.reset_mobile, name="sms-reset"),
    path("accounts/password/reset/code/", sms_views.reset_code, name="sms-reset-code"),
    # WeChat sign-in and 消息提醒 (accounts/wechat.py): 404 unless WeChat (or SMS) is configured.
    path("accounts/wechat/login/", wechat_views.wechat_login, name="wechat-login"),
    path("accounts/wechat/callback/", wechat_views.wechat_callback, name="wechat-callback"),
    path("me/wechat/bind/", wechat_views.wechat_bind, name="wechat-bind"),
    path("me/wechat/unbind/", wechat_views.wechat_unbind, name="wechat-unbind"),
    path("me/messages/", wechat_views.message_choices, name="message-choices"),
    path(
        "accounts/password/",
        account_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        account_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", include("api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("open311/v2/", include("api.georeport_urls")),
    path("panel/", panel.urls),
    path("admin/", admin.site.urls),
]


if os.environ.get("BENCHMARK_BARE_VIEW") == "1":
    # Only for `make bench`: the smallest Django view, to compare real pages against.
    urlpatterns.append(path("bench/bare/", views.bare, name="bench-bare"))
