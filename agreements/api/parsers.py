"""Request bodies of the court API, read through odr.safejson: a hostile
body (deep nesting, lone surrogates, huge numbers) is a 400 with a JSON
error, never a 500."""

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from odr import safejson


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.ODR_API_MAX_BODY_BYTES
        data = stream.read(limit + 1) if stream is not None else b""
        try:
            return safejson.loads(data, max_bytes=limit)
        except safejson.JSONRefused as refused:
            if refused.code == "too_large":
                raise BodyTooLarge(refused.detail) from None
            raise exceptions.ParseError(refused.detail, code=refused.code) from None
