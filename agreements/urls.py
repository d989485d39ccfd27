from django.urls import path

from agreements import views

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
    path("verify/", views.verify, name="verify"),
]
