from django.urls import path

from agreements import views

app_name = "agreements"

urlpatterns = [
    path("cases/<uuid:case_id>/agreement/draft/", views.draft, name="draft"),
]
