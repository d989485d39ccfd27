"""odr.ratelimit: rates as written in settings, client addresses as
counted, and a cache that cannot be reached limits nothing."""

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from odr.ratelimit import Rate, client_address, rate_limit_hit
from tests.asgi_server import free_port


@pytest.mark.parametrize(("text", "count", "seconds"), [
    ("10/m", 10, 60), ("30/m", 30, 60), ("5/10s", 5, 10), ("100/h", 100, 3600), ("1000/d", 1000, 86400),
    (" 7 / 2m ", 7, 120),
])
def test_when_a_rate_is_written_count_per_period_then_it_is_read_as_such(text, count, seconds):
    assert Rate.parse(text) == Rate(count=count, seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "10/", "ten/m", "10/minute", "10/w", "-1/m"])
def test_when_a_rate_is_malformed_then_the_configuration_is_refused(text):
    with pytest.raises(ImproperlyConfigured):
        Rate.parse(text)


@pytest.mark.parametrize(("remote", "counted_as"), [
    ("203.0.113.9", "203.0.113.9"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::", "2001:db8:1:2::/64"),
    ("", "unknown"),
])
def test_when_a_client_address_is_counted_then_an_ipv6_host_counts_as_its_64(remote, counted_as):
    assert client_address(RequestFactory().get("/", REMOTE_ADDR=remote)) == counted_as


def test_when_the_count_passes_the_rate_then_the_request_is_not_allowed():
    verdicts = [rate_limit_hit(scope="test", key="192.0.2.1", rate="3/m") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert 1 <= verdicts[-1].retry_after <= 60
    assert rate_limit_hit(scope="other", key="192.0.2.1", rate="3/m").allowed
    assert rate_limit_hit(scope="test", key="192.0.2.2", rate="3/m").allowed


def test_when_the_cache_cannot_be_reached_then_nothing_is_limited_and_a_warning_says_so(settings, caplog):
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }}
    with caplog.at_level(logging.WARNING, logger="odr.ratelimit"):
        verdicts = [rate_limit_hit(scope="test", key="192.0.2.1", rate="1/m") for _ in range(3)]
    assert all(v.allowed for v in verdicts)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["rate limit test not applied"] * 3
