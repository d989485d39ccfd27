from django.contrib import admin

from sessions.models import Case


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    """Metadata only; the procedure changes through its services, not here."""

    list_display = ["reference", "category", "status", "court", "created_at", "closed_at"]
    list_filter = ["status", "category"]
    search_fields = ["reference", "court_case_number"]
    fields = ["reference", "public_id", "category", "status", "court", "court_case_number",
              "created_at", "submitted_at", "activated_at", "closed_at", "term_started_on", "term_ends_on"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
