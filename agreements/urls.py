from django.urls import path

from agreements import court_views, views

app_name = "agreements"

urlpatterns = [
    path("cases/<uuid:case_id>/agreement/", views.agreement, name="agreement"),
    path("cases/<uuid:case_id>/agreement/draft/", views.draft, name="draft"),
    path("cases/<uuid:case_id>/agreement/compare/", views.compare, name="compare"),
    path("cases/<uuid:case_id>/agreement/comment/", views.comment, name="comment"),
    path("cases/<uuid:case_id>/agreement/freeze/", views.freeze, name="freeze"),
    path("cases/<uuid:case_id>/agreement/<uuid:agreement_id>/sign/", views.sign, name="sign"),
    path("cases/<uuid:case_id>/agreement/<uuid:agreement_id>/decline/", views.decline, name="decline"),
    path("cases/<uuid:case_id>/agreement/<uuid:agreement_id>/to-sign.pdf", views.frozen_pdf, name="frozen_pdf"),
    path("cases/<uuid:case_id>/agreement/<uuid:agreement_id>/agreement.pdf", views.sealed_pdf, name="sealed_pdf"),
    path("cases/<uuid:case_id>/agreement/<uuid:agreement_id>/file/", views.file_agreement, name="file"),
    path("verify/", views.verify, name="verify"),
    path("court/filings/", court_views.filings, name="court_filings"),
    path("court/filings/<uuid:filing_id>/", court_views.filing, name="court_filing"),
    path("court/filings/<uuid:filing_id>/agreement.pdf", court_views.filing_pdf, name="court_filing_pdf"),
    path("court/filings/<uuid:filing_id>/answer/", court_views.filing_answer, name="court_filing_answer"),
]
