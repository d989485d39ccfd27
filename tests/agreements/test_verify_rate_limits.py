"""/verify/ counts uploads and code look-ups per client address, in the
shared cache: past the rate, a translated 429 with Retry-After and no check,
no look-up; another address is not affected."""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.agreements import hostile_pdfs

TOO_MANY = "Too many checks from your address. Try again in a minute."
NO_SUCH_CODE = "No sealed agreement has this verification code."


@pytest.fixture
def rates(settings, dev_pki):
    settings.ODR_VERIFY_UPLOAD_RATE = "3/m"
    settings.ODR_VERIFY_CODE_RATE = "5/m"
    return settings


def client_at(address: str, language: str = "") -> Client:
    client = Client(REMOTE_ADDR=address)
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def upload(client: Client):
    pdf = SimpleUploadedFile("agreement.pdf", hostile_pdfs.minimal(), "application/pdf")
    return client.post(reverse("agreements:verify"), {"file": pdf})


def look_up(client: Client):
    return client.get(reverse("agreements:verify"), {"code": "AAAA-BBBB-CCCC-DDDD"})


def test_when_an_address_uploads_past_the_rate_then_it_gets_429_and_another_address_does_not(
    rates, db, django_assert_num_queries
):
    attacker, neighbour = client_at("203.0.113.50"), client_at("203.0.113.51")
    for _ in range(3):
        response = upload(attacker)
        assert response.status_code == 200 and response.context["result"] is not None

    with django_assert_num_queries(0):  # refused before the check and the register
        refused = upload(attacker)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) in range(1, 61)
    assert TOO_MANY in refused.content.decode() and refused.context["result"] is None

    served = upload(neighbour)
    assert served.status_code == 200 and served.context["result"] is not None


def test_when_an_address_looks_up_codes_past_the_rate_then_it_gets_429_and_another_address_does_not(
    rates, db, django_assert_num_queries
):
    attacker, neighbour = client_at("198.51.100.7"), client_at("198.51.100.8")
    for _ in range(5):
        with django_assert_num_queries(1):
            response = look_up(attacker)
        assert response.status_code == 200 and NO_SUCH_CODE in response.content.decode()

    with django_assert_num_queries(0):
        refused = look_up(attacker)
    assert refused.status_code == 429 and TOO_MANY in refused.content.decode()
    # The form still shows what was typed.
    assert 'value="AAAA-BBBB-CCCC-DDDD"' in refused.content.decode()

    assert look_up(neighbour).status_code == 200
    # Uploads are counted apart from look-ups.
    assert upload(attacker).status_code == 200


def test_when_uploads_and_look_ups_are_counted_then_the_page_itself_is_not(rates, db):
    visitor = client_at("192.0.2.20")
    for _ in range(10):
        assert visitor.get(reverse("agreements:verify")).status_code == 200
    assert look_up(visitor).status_code == 200


def test_when_one_ipv6_host_changes_its_address_then_it_is_still_counted_as_one(rates, db):
    for suffix in ("1", "2", "3"):
        assert upload(client_at(f"2001:db8:1:2::{suffix}")).status_code == 200
    assert upload(client_at("2001:db8:1:2:ffff::9")).status_code == 429
    assert upload(client_at("2001:db8:1:3::1")).status_code == 200  # another /64


@pytest.mark.parametrize(("language", "message"), [
    ("ru", "Слишком много проверок с вашего адреса. Повторите попытку через минуту."),
    ("kk", "Сіздің мекенжайыңыздан тексеру тым көп. Бір минуттан кейін қайталап көріңіз."),
])
def test_when_the_rate_is_passed_then_the_429_is_in_the_visitors_language(rates, db, language, message):
    visitor = client_at("192.0.2.77", language)
    for _ in range(5):
        look_up(visitor)
    refused = look_up(visitor)
    assert refused.status_code == 429
    assert message in refused.content.decode() and TOO_MANY not in refused.content.decode()
