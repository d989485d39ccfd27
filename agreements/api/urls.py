from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from agreements.api import torelik_views, views

court_api = [
    path("api/v1/filings/", views.filings, name="api_filings"),
    path("api/v1/filings/<str:filing_id>/", views.filing, name="api_filing"),
    path("api/v1/filings/<str:filing_id>/verification/", views.verification, name="api_filing_verification"),
    path("api/v1/filings/<str:filing_id>/agreement.pdf", views.filing_pdf, name="api_filing_pdf"),
    path("api/v1/filings/<str:filing_id>/status/", views.filing_status, name="api_filing_status"),
]
# Not part of the court API (no token; signed with HMAC): a schema of its own.
torelik_api = [
    path("api/torelik/callback/", torelik_views.callback, name="torelik_callback"),
]

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(api_version="v1", patterns=court_api), name="api_schema"),
    path(
        "api/torelik/schema/",
        SpectacularAPIView.as_view(
            patterns=torelik_api,
            custom_settings={
                "TITLE": "ODR Mediation: callbacks from a judicial system",
                "DESCRIPTION": "Signed status callbacks about filings (docs/torelik.md).",
                "VERSION": "1.0.0",
            },
        ),
        name="torelik_schema",
    ),
    *court_api,
    *torelik_api,
]
