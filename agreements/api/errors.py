"""Every refusal is a 4xx with a JSON body `{"detail": ..., "code": ...}`
(plus `fields` for invalid fields); a request the procedure refuses (a
ProcedureError, a Django ValidationError) is a 400, never a 500."""

from django.core.exceptions import ValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def flatten(data) -> list[str]:
    if isinstance(data, dict):
        return [f"{key}: {message}" for key, value in data.items() for message in flatten(value)]
    if isinstance(data, list):
        return [message for item in data for message in flatten(item)]
    return [str(data)]


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        return Response({"detail": " ".join(exc.messages), "code": getattr(exc, "code", None) or "invalid"},
                        status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": "; ".join(flatten(exc.detail)), "code": "invalid", "fields": exc.detail}
    elif isinstance(response.data, dict) and "code" not in response.data:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else None
        response.data["code"] = codes if isinstance(codes, str) else "error"
    return response
