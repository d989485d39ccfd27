from django.conf import settings

from odr import policy


def site(request):
    user = getattr(request, "user", None)
    return {
        "SITE_URL": settings.SITE_URL,
        "DEMO_MODE": settings.ODR_DEMO_MODE,
        "global_roles": policy.global_roles(user) if user is not None else set(),
    }
