"""The site's URLs plus two views that fail on purpose, with a secret in a
local variable: what an error page and an API error may show."""

from django.conf import settings
from django.urls import path

from odr.urls import urlpatterns as site_urlpatterns


def _fail(request):
    torelik_secret = settings.ODR_TORELIK_SECRET
    holder = {"innocent_name": settings.SECRET_KEY}
    message = f"failed with {len(torelik_secret)} and {len(holder)}"
    raise RuntimeError(message)


urlpatterns = [
    path("api/v1/failure/", _fail),
    path("failure/", _fail),
    *site_urlpatterns,
]
