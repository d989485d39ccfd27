from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from odr import health, views

# The admin signs in through allauth (throttling, 2FA), not its own form.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = "ODR Mediation"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("session/keepalive", views.keepalive, name="keepalive"),
    path("accounts/", include("allauth.urls")),
    path("profile/", views.profile, name="profile"),
    path("profile/language/", views.language_switch, name="language_switch"),
    path("admin/", admin.site.urls),
    path("dashboard", RedirectView.as_view(pattern_name="mediation:dashboard", permanent=False), name="dashboard"),
    path("", include("sessions.urls")),
    path("", include("agreements.urls")),
    path("", include("agreements.api.urls")),
]
