"""Rate limits per client address, counted in the shared cache (Redis in
production), so that every site process sees the same counts.

Fixed windows: a client may be let through up to twice the rate across a
window's edge, which is fine for what these limits are for (keeping one
address from monopolising expensive public pages); nginx's `limit_req` in
front smooths bursts (deploy/nginx/odr-site.conf).

django-ratelimit was considered and not taken: its system check (once the
app is installed) is an error for the local-memory cache of the embedded
default, it lets connection errors of Django's own Redis backend through as
server errors, and what we need of it is the dozen lines below."""

import ipaddress
import logging
import re
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """"10/m" (ten a minute), "100/h", "5/10s" (five per ten seconds)."""
        found = _RATE.match(text or "")
        if not found:
            raise ImproperlyConfigured(f"A rate is written count/period, as 10/m or 5/10s, not {text!r}.")
        count, multiple, unit = found.groups()
        return cls(count=int(count), seconds=int(multiple or 1) * _PERIODS[unit])


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window ends


def client_address(request) -> str:
    """The client's address as Daphne reports it (behind nginx, Daphne runs
    with --proxy-headers, so this is the real client). An IPv6 client is
    counted by its /64: one host usually holds a whole /64, and would
    otherwise have a fresh address for every request."""
    address = request.META.get("REMOTE_ADDR") or "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped:
        return str(parsed.ipv4_mapped)
    return f"{ipaddress.ip_network(f'{parsed}/64', strict=False).network_address}/64"


def rate_limit_hit(*, scope: str, key: str, rate: str) -> Verdict:
    """Count one request of `key` (a client address) against `rate` for
    `scope`. While the cache is unreachable nothing is limited — the page
    must not fail because a counter does — and the warning says so."""
    limit = Rate.parse(rate)
    now = time.time()
    window = int(now // limit.seconds)
    retry_after = max(1, int((window + 1) * limit.seconds - now))
    counter = f"rate:{scope}:{key}:{limit.seconds}:{window}"
    try:
        cache.add(counter, 0, timeout=limit.seconds * 2)
        try:
            count = cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.set(counter, 1, timeout=limit.seconds * 2)
            count = 1
    except RedisError as error:
        log.warning("rate limit %s not applied: the cache is unreachable (%s)", scope, error)
        return Verdict(allowed=True, retry_after=0)
    return Verdict(allowed=count <= limit.count, retry_after=retry_after)
