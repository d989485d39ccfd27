"""Status callbacks from the external judicial system (docs/torelik.md):
signed like our requests to it, fresh, once per event id, and only forwards."""

import json
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from agreements import torelik
from agreements.models import COURT_ANSWERS, CallbackReceipt, Filing, FilingEvent
from agreements.services.filing import filing_status_set
from sessions.services.errors import ProcedureError

MAX_BODY = 64 * 1024


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


@csrf_exempt  # authenticated by the HMAC signature, not a cookie
@require_POST
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
        data = json.loads(body)
        event_id = str(data["event_id"]).strip()
        filing_id = uuid.UUID(str(data["filing_id"]))
        status = str(data["status"])
        reason = str(data.get("reason") or "")
    except (ValueError, KeyError, TypeError):
        return _error(400, "malformed", "Expected JSON with event_id, filing_id, status and, when returned, reason.")
    if not event_id or len(event_id) > 128 or status not in COURT_ANSWERS:
        return _error(400, "malformed", "event_id must be 1–128 characters; status one of received, approved, returned.")
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
    return JsonResponse({"filing_id": str(updated.public_id), "status": updated.status})
