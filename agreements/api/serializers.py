from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agreements.models import COURT_ANSWERS, Filing, FilingEvent, Signer


class SignerSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="user.display_name")

    class Meta:
        model = Signer
        fields = ["name", "role", "signed_at", "method", "certificate_subject"]


class EventSerializer(serializers.ModelSerializer):
    cursor = serializers.IntegerField(source="id", help_text="Pass as `since` to get what changed after this.")

    class Meta:
        model = FilingEvent
        fields = ["cursor", "status", "source", "reason", "at"]


class FilingSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    case_reference = serializers.CharField(source="case.reference")
    court = serializers.CharField(source="court.code")
    verification_code = serializers.CharField(source="agreement.verification_code")
    sealed_sha256 = serializers.CharField(source="agreement.sealed_sha256")
    signed_document_sha256 = serializers.CharField(source="agreement.frozen_sha256")
    sealed_at = serializers.DateTimeField(source="agreement.sealed_at")
    signers = serializers.SerializerMethodField()
    events = EventSerializer(many=True)

    class Meta:
        model = Filing
        fields = [
            "id", "case_reference", "court", "court_case_number", "status", "filed_at", "status_changed_at",
            "return_reason", "verification_code", "sealed_sha256", "signed_document_sha256", "sealed_at", "signers",
            "events",
        ]

    @extend_schema_field(SignerSerializer(many=True))
    def get_signers(self, filing):
        return SignerSerializer(filing.agreement.signers.select_related("user"), many=True).data


class FilingPageSerializer(serializers.Serializer):
    results = FilingSerializer(many=True)
    next_cursor = serializers.IntegerField(help_text="The `since` of the next call.")


class VerificationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    sha256 = serializers.CharField()
    signatures = serializers.ListField(child=serializers.DictField())
    checked = serializers.BooleanField(
        help_text="False when the file could not be checked within the checker's limits (then not valid either)."
    )


# A court's answers, as one enum of the schemas (ENUM_NAME_OVERRIDES names it CourtAnswerEnum).
COURT_ANSWER_CHOICES = [(s.value, s.label) for s in COURT_ANSWERS]


class StatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=COURT_ANSWER_CHOICES)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    fields = serializers.DictField(required=False, help_text="For invalid fields: the messages per field.")
