"""Small request helpers shared by the packages' views."""


from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request, candidate: str | None, fallback: str) -> str:
    """`candidate` if it points back into this site, else `fallback`:
    a `next` parameter never sends anyone to another host."""
    if candidate and url_has_allowed_host_and_scheme(candidate, {request.get_host()}, request.is_secure()):
        return candidate
    return fallback
