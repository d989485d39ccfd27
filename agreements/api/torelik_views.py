"""Status callbacks from the external judicial system (docs/torelik.md):
signed like our requests to it, fresh, once per event id, and only forwards.

A DRF view so that it has an OpenAPI schema of its own (/api/torelik/schema/,
for the judicial system's integrators and for schemathesis), but it reads
the raw body: the signature covers its bytes, so no parser touches it first."""

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, parser_classes, permission_classes
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from agreements import torelik
from agreements.api.errors import flatten
from agreements.api.serializers import COURT_ANSWER_CHOICES, ErrorSerializer
from agreements.models import CallbackReceipt, Filing, FilingEvent
from agreements.services.filing import filing_status_set
from odr import safejson
from sessions.services.errors import ProcedureError

MAX_BODY = 64 * 1024


class CallbackEventSerializer(serializers.Serializer):
    """What the judicial system sends (the schema; the view reads the body itself)."""

    event_id = serializers.CharField(max_length=128, help_text="Unique per event: a replay is refused (409).")
    # (DRF's text fields refuse NUL and lone surrogates, which PostgreSQL cannot store.)
    filing_id = serializers.UUIDField(help_text="The `filing_id` of our envelope.")
    status = serializers.ChoiceField(choices=COURT_ANSWER_CHOICES)
    reason = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                   help_text="Required when the status is `returned`.")


class CallbackAnswerSerializer(serializers.Serializer):
    filing_id = serializers.UUIDField()
    status = serializers.CharField()


def _error(status: int, code: str, detail: str) -> Response:
    return Response({"detail": detail, "code": code}, status=status)


@extend_schema(
    operation_id="torelik_callback",
    summary="A court's answer about a filing (received, approved, returned), signed with the shared secret",
    request=CallbackEventSerializer,
    parameters=[
        OpenApiParameter(torelik.SIGNATURE_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                         description="`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` with the shared secret."),
        OpenApiParameter(torelik.TIMESTAMP_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                         description="Unix time of the request, in seconds."),
    ],
    responses={200: CallbackAnswerSerializer, **{status: ErrorSerializer for status in (400, 401, 404, 409, 413)}},
    auth=[],
)
@api_view(["POST"])
@authentication_classes([])  # authenticated by the HMAC signature, not a cookie or a token
@permission_classes([AllowAny])
@parser_classes([JSONParser])  # names the media type in the schema; never run: the body is read raw
def callback(request):
    body = request.body
    if len(body) > MAX_BODY:
        return _error(413, "too_large", "The body is too large.")
    timestamp = request.headers.get(torelik.TIMESTAMP_HEADER, "")
    if not torelik.signature_valid(settings.ODR_TORELIK_SECRET, timestamp, body,
                                   request.headers.get(torelik.SIGNATURE_HEADER, "")):
        return _error(401, "bad_signature", "The signature is missing or wrong.")
    if not torelik.timestamp_fresh(timestamp):
        return _error(401, "stale", "The timestamp is too far from our clock: send a fresh request.")
    try:
        data = safejson.loads(body, max_bytes=MAX_BODY)
    except safejson.JSONRefused as refused:
        return _error(400, "malformed", refused.detail)
    event = CallbackEventSerializer(data=data) if isinstance(data, dict) else None
    if event is None or not event.is_valid():
        detail = "; ".join(flatten(event.errors)) if event is not None else "Expected a JSON object."
        return _error(400, "malformed", f"Expected event_id (1–128 characters), filing_id, status (received, "
                                        f"approved or returned) and, when returned, reason. {detail}")
    event_id, filing_id = event.validated_data["event_id"], event.validated_data["filing_id"]
    status, reason = event.validated_data["status"], event.validated_data.get("reason") or ""
    filing = Filing.objects.filter(public_id=filing_id, channel="torelik").first()
    if filing is None:
        return _error(404, "unknown_filing", "No filing with this id was sent to you.")
    try:
        with transaction.atomic():
            CallbackReceipt.objects.create(event_id=event_id, filing=filing, status=status)
            updated = filing_status_set(filing=filing, status=status, reason=reason,
                                        source=FilingEvent.Source.CALLBACK)
    except IntegrityError:
        return _error(409, "replayed", "This event was already received; nothing changed.")
    except ProcedureError as error:
        if error.code == "bad_transition":
            return _error(409, "out_of_order", " ".join(error.messages))
        return _error(400, error.code or "invalid", " ".join(error.messages))
    return Response({"filing_id": str(updated.public_id), "status": updated.status})
