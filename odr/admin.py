from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from django_tasks_db.admin import DBTaskResultAdmin
from django_tasks_db.models import DBTaskResult

from odr.models import AuditEvent, Court, CourtUser, MediatorProfile, User


class MediatorProfileInline(admin.StackedInline):
    model = MediatorProfile
    can_delete = False
    extra = 0


class CourtUserInline(admin.StackedInline):
    model = CourtUser
    can_delete = True
    extra = 0


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "preferred_language", "is_staff", "is_active"]
    search_fields = ["email", "display_name"]
    list_filter = ["is_staff", "is_active", "preferred_language"]
    readonly_fields = ["public_id", "date_joined", "last_login", "is_demo"]
    fieldsets = (
        (None, {"fields": ("email", "password", "public_id", "is_demo")}),
        (_("Profile"), {"fields": ("display_name", "phone", "preferred_language")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "display_name", "password1", "password2")}),
    )
    inlines = [MediatorProfileInline, CourtUserInline]


@admin.register(Court)
class CourtAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "region", "is_active"]
    list_filter = ["region", "is_active"]
    search_fields = ["name", "code"]


@admin.register(MediatorProfile)
class MediatorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "registry_number", "region", "is_active"]
    list_filter = ["kind", "region", "is_active"]
    search_fields = ["user__email", "user__display_name", "registry_number"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only."""

    list_display = ["id", "at", "action", "actor_label", "object_type", "object_id", "ip"]
    list_filter = ["action"]
    search_fields = ["actor_label", "object_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The job queue's admin lists jobs by their metadata only. A job's arguments,
# return value and traceback are not shown: they are no place for secrets
# (emails go through the sealed outbox, odr.mail), and an administrator has
# no need of them to see that the queue flows.
admin.site.unregister(DBTaskResult)


@admin.register(DBTaskResult)
class JobAdmin(DBTaskResultAdmin):
    METADATA = (
        "id", "task_path", "status", "enqueued_at", "started_at", "finished_at", "display_run_after",
        "priority", "queue_name", "backend_name", "worker_ids", "exception_class_path",
    )

    def get_readonly_fields(self, request, obj=None):
        return list(self.METADATA)

    def get_fields(self, request, obj=None):
        return list(self.METADATA)
