from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from agreements.api import torelik_views, views

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(api_version="v1"), name="api_schema"),
    path("api/v1/filings/", views.filings, name="api_filings"),
    path("api/v1/filings/<str:filing_id>/", views.filing, name="api_filing"),
    path("api/v1/filings/<str:filing_id>/verification/", views.verification, name="api_filing_verification"),
    path("api/v1/filings/<str:filing_id>/agreement.pdf", views.filing_pdf, name="api_filing_pdf"),
    path("api/v1/filings/<str:filing_id>/status/", views.filing_status, name="api_filing_status"),
    # Not part of the court API (no token; signed with HMAC) and not in its schema.
    path("api/torelik/callback/", torelik_views.callback, name="torelik_callback"),
]
