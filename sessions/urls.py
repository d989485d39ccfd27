from django.urls import path

from sessions import confidentiality_views, room_views, views

app_name = "mediation"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("cases/new/", views.case_new, name="case_new"),
    path("cases/<uuid:case_id>/", views.case_detail, name="case_detail"),
    path("cases/<uuid:case_id>/edit/", views.case_edit, name="case_edit"),
    path("cases/<uuid:case_id>/submit/", views.case_submit, name="case_submit"),
    path("cases/<uuid:case_id>/mediator/answer/", views.mediator_answer, name="mediator_answer"),
    path("cases/<uuid:case_id>/mediator/choose/", views.choose_mediator, name="choose_mediator"),
    path("cases/<uuid:case_id>/agreement-to-mediate/", views.agreement_to_mediate_page, name="agreement_to_mediate"),
    path("cases/<uuid:case_id>/withdraw/", views.withdraw, name="withdraw"),
    path("cases/<uuid:case_id>/close/", views.close, name="close"),
    path("cases/<uuid:case_id>/term/extend/", views.extension_propose, name="extension_propose"),
    path("cases/<uuid:case_id>/term/answer/", views.extension_answer, name="extension_answer"),
    path("cases/<uuid:case_id>/invite/<str:role>/", views.invite, name="invite"),
    path("cases/<uuid:case_id>/undertaking/", confidentiality_views.undertaking, name="undertaking"),
    path("cases/<uuid:case_id>/contacts/", confidentiality_views.contacts_sharing, name="contacts_sharing"),
    path("cases/<uuid:case_id>/legal-hold/", confidentiality_views.legal_hold, name="legal_hold"),
    path("cases/<uuid:case_id>/break-glass/", confidentiality_views.break_glass, name="break_glass"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("rooms/<uuid:room_id>/", room_views.room, name="room"),
    path("rooms/<uuid:room_id>/documents/", room_views.document_upload, name="room_documents"),
    path("rooms/<uuid:room_id>/transcript/consent/", confidentiality_views.transcript_consent, name="transcript_consent"),
    path("rooms/<uuid:room_id>/transcript/", confidentiality_views.transcript_export, name="transcript_export"),
    path(
        "rooms/<uuid:room_id>/documents/<uuid:document_id>/",
        room_views.document_download,
        name="room_document",
    ),
]
