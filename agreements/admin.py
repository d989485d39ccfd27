from django.contrib import admin

from agreements.models import Agreement


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
