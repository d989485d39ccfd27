from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from sessions.models import Case
from sessions.services import retention


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    """Metadata only: no description, no room content (administrators do not
    read mediations; see the break-glass page). The procedure changes through
    its services, not here."""

    list_display = ["reference", "category", "status", "court", "created_at", "closed_at", "content_destroyed_at"]
    list_filter = ["status", "category"]
    search_fields = ["reference", "court_case_number"]
    fields = ["reference", "public_id", "category", "status", "court", "court_case_number",
              "created_at", "submitted_at", "activated_at", "closed_at", "term_started_on", "term_ends_on",
              "content", "confidentiality"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Content"))
    def content(self, case):
        if case.content_destroyed_at:
            return _("Destroyed on %(when)s") % {"when": case.content_destroyed_at}
        if retention.legal_hold_in_force(case):
            return _("Kept under legal hold")
        due = retention.destruction_date(case)
        return _("To be destroyed on %(when)s") % {"when": due} if due else _("Kept while the case is open")

    @admin.display(description=_("Confidentiality"))
    def confidentiality(self, case):
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("mediation:legal_hold", args=[case.public_id]), _("Legal hold"),
            reverse("mediation:break_glass", args=[case.public_id]), _("Break-glass access (audited)"),
        )
