from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from agreements.models import Agreement, CourtApiToken
from agreements.services.court_tokens import court_token_create, court_token_revoke


@admin.register(Agreement)
class AgreementAdmin(admin.ModelAdmin):
    """Metadata only (states, fingerprints, sealing attempts), never the
    agreement's words; agreements change through their services."""

    list_display = ["case", "status", "frozen_at", "sealed_at", "seal_attempts", "verification_code"]
    list_filter = ["status"]
    search_fields = ["case__reference", "verification_code", "sealed_sha256"]
    fields = ["public_id", "case", "status", "layout", "verification_code", "frozen_at", "frozen_sha256",
              "ended_at", "seal_attempts", "seal_error", "sealed_at", "sealed_sha256"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CourtApiToken)
class CourtApiTokenAdmin(admin.ModelAdmin):
    """Administrators create a court's token (shown once) and revoke it."""

    list_display = ["court", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["court", "revoked_at"]
    fields = ["court", "name"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ["court", "name"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        record, token = court_token_create(court=obj.court, name=obj.name, user=request.user)
        obj.pk, obj.public_id = record.pk, record.public_id
        self.message_user(
            request,
            _("The token of %(court)s, shown only now — give it to the court's system: %(token)s")
            % {"court": record.court, "token": token},
            level=messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        for token in queryset:
            court_token_revoke(token=token, user=request.user)
        self.message_user(request, _("Revoked."))
