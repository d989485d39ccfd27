"""Daphne serves HTTP with Twisted's `Request`, whose `requestReceived`
parses every multipart/form-data body into `request.args` with the `email`
parser — on the reactor thread, before Daphne hands the request to Django.
A 20 MB upload costs 0.5 s of CPU there, during which the process serves
nothing else: no page, no WebSocket frame (measured, docs/performance.md).
Daphne never reads `request.args`, and Django parses the body itself, in a
worker thread; so Twisted's parse is skipped."""

from twisted.web import http


def _no_args(content: bytes, ctype: bytes) -> dict:
    return {}


def skip_twisted_multipart_parsing() -> bool:
    """Skip it; False when this Twisted no longer parses that way (then there
    is nothing to skip, and tests/odr/test_twisted_uploads.py says so)."""
    if "_getMultiPartArgs" not in http.Request.requestReceived.__code__.co_names:
        return False
    http._getMultiPartArgs = _no_args
    return True
