"""Redis through Sentinel, for the settings (docs/operations.md, "Redis Sentinel").

channels_redis finds a Sentinel-managed master by itself; Django's RedisCache
does not: it builds its pool with `pool_class.from_url(LOCATION, **OPTIONS)`.
`SentinelMasterPool` answers that call with a pool whose connections ask
Sentinel where the master is each time they connect, so the cache follows a
failover as the channel layer does.
"""

from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import Sentinel, SentinelConnectionPool


def sentinel_addresses(entries: list[str]) -> list[tuple[str, int]]:
    """REDIS_SENTINELS's `host:port` entries as the (host, port) pairs redis-py takes."""
    addresses = []
    for entry in entries:
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {entry!r} is not host:port.")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


class SentinelMasterPool(SentinelConnectionPool):
    """The cache's pool: LOCATION is the master's name as Sentinel knows it;
    OPTIONS carry `sentinels`, `sentinel_kwargs` (how to reach the sentinels)
    and the master connection's own arguments (db, password, timeouts)."""

    @classmethod
    def from_url(cls, master_name, *, sentinels, sentinel_kwargs=None, **connection_kwargs):
        return cls(master_name, Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs), **connection_kwargs)
