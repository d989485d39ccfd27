import os

from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import connection


def test_when_ci_runs_then_suite_is_on_postgresql_and_redis():
    """Under CI=true the suite must run on the production configuration;
    elsewhere it runs on whatever `make test` detected, and this says which."""
    on_postgresql = connection.vendor == "postgresql"
    on_redis = isinstance(get_channel_layer(), RedisChannelLayer)
    if os.environ.get("CI") == "true":
        assert on_postgresql, f"CI must run on PostgreSQL, not {connection.vendor}"
        assert on_redis, f"CI must run on channels_redis, not {type(get_channel_layer()).__name__}"
    else:
        assert on_postgresql == bool(os.environ.get("DATABASE_URL", "").startswith("postgres"))
        assert on_redis == bool(os.environ.get("REDIS_URL"))
