"""Daphne's process does not parse multipart bodies on its event loop
(odr/twisted_uploads.py): once the ASGI application is loaded, Twisted's
request no longer turns an upload into `request.args`. If Twisted changes
how it parses, this fails, and the patch must be looked at again."""

from twisted.web import http

import odr.asgi  # noqa: F401 — what Daphne imports: it applies the patch

BODY = (
    b"--frontier\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n"
    b"Content-Type: application/pdf\r\n\r\n%PDF-1.7 and twenty megabytes\r\n--frontier--\r\n"
)


def test_when_daphne_loads_the_application_then_twisted_no_longer_parses_multipart_bodies():
    assert "_getMultiPartArgs" in http.Request.requestReceived.__code__.co_names
    assert http._getMultiPartArgs(BODY, b"multipart/form-data; boundary=frontier") == {}
