"""How a filing reaches its court: one adapter per channel, chosen by
configuration (ODR_FILING_CHANNELS). An adapter's `deliver(filing)` returns a
Receipt, raises DeliveryRefused when the other side will never accept the
filing as it is, and raises anything else for a failure worth retrying."""

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Receipt:
    external_id: str = ""


class DeliveryRefused(Exception):
    """A permanent refusal (a 4xx answer): retrying will not help."""


class PortalChannel:
    """The built-in court portal: the court's users see the filing on their
    pages and answer there (or through the court API), so delivering is
    making it visible: nothing leaves the platform."""

    def deliver(self, filing) -> Receipt:
        return Receipt(external_id=f"portal:{filing.public_id}")


@lru_cache(maxsize=8)
def _channel(name: str, path: str):
    return import_string(path)()


def channel_for(name: str):
    try:
        path = settings.ODR_FILING_CHANNELS[name]
    except KeyError:
        raise ImproperlyConfigured(f"No filing channel {name!r} in ODR_FILING_CHANNELS.") from None
    return _channel(name, path)
