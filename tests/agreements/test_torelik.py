"""The Torelik adapter (agreements/torelik.py) against a real HTTP server of
the test's own that plays the judicial system: it checks our HMAC
signature, files once per Idempotency-Key (a second request with the same
key answers 409 with the same id) and answers as each test scripts it:
fine, a server error, too slow, a refusal, or not at all until released.
Then the signed status callbacks it sends back, and a real `manage.py
db_worker` killed in the middle of a delivery."""

import base64
import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from agreements import torelik
from agreements.models import CallbackReceipt, Delivery, DeliveryState, Filing, FilingStatus
from agreements.services import filing as filing_services
from agreements.services import issuing
from sessions.models import Case

BASE_DIR = Path(__file__).resolve().parents[2]
SECRET = "test-secret"
TIMEOUT = 0.5  # the client's, in seconds
SLOW = 1.2  # how long a "slow" answer takes: past the client's timeout
DEAD_SUBJECT = "could not be delivered"


# --- The fake judicial system ---------------------------------------------------------------------------------


class FakeTorelik:
    """What the server saw and holds. `script` is the behaviour of the next
    requests, one each, in order; when it runs out, requests are answered fine.

    - "ok": file it (or find it by its key) and answer 201 {"id"} (409 {"id"} if already filed);
    - "error": answer 500, file nothing;
    - "slow": file it, then take SLOW seconds to answer;
    - "reject": answer 400, file nothing;
    - "hang": file it, say so (`received`), and answer only when `release` is set."""

    def __init__(self, secret: str):
        self.secret = secret
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.filings: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.received = threading.Event()
        self.release = threading.Event()
        self._ids = itertools.count(1)

    def _file(self, key: str, body: bytes) -> tuple[int, dict]:
        with self.lock:
            if key in self.filings:
                return 409, {"id": self.filings[key]["id"], "detail": "already filed"}
            self.filings[key] = {"id": f"TR-{next(self._ids)}", "envelope": json.loads(body)}
            return 201, {"id": self.filings[key]["id"]}

    def handle(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        key = headers.get(torelik.IDEMPOTENCY_HEADER, "")
        signed = torelik.signature_valid(self.secret, headers.get(torelik.TIMESTAMP_HEADER, ""), body,
                                         headers.get(torelik.SIGNATURE_HEADER, ""))
        with self.lock:
            behaviour = self.script.pop(0) if self.script and signed and path == "/filings" else "ok"
            self.requests.append({
                "path": path, "key": key, "signed": signed, "behaviour": behaviour, "body": body,
                "timestamp": headers.get(torelik.TIMESTAMP_HEADER, ""),
                "content_type": headers.get("Content-Type", ""),
            })
        if path != "/filings":
            return 404, {"detail": "not found"}
        if not signed:
            return 401, {"detail": "bad signature"}
        if not key:
            return 400, {"detail": "no Idempotency-Key"}
        if behaviour == "error":
            return 500, {"detail": "internal error"}
        if behaviour == "reject":
            return 400, {"detail": "court case number unknown"}
        answer = self._file(key, body)
        if behaviour == "slow":
            time.sleep(SLOW)
        elif behaviour == "hang":
            self.received.set()
            self.release.wait(timeout=60)
        return answer


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload = self.server.fake.handle(self.path, self.headers, body)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting (a timeout) or died
            pass

    def log_message(self, format, *args):  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):  # a client that went away mid-request
        pass


@pytest.fixture
def fake_torelik():
    fake = FakeTorelik(SECRET)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def torelik_settings(settings, fake_torelik):
    settings.ODR_FILING_CHANNEL = "torelik"
    settings.ODR_TORELIK_URL = fake_torelik.url
    settings.ODR_TORELIK_SECRET = SECRET
    settings.ODR_TORELIK_TIMEOUT = TIMEOUT
    settings.ODR_DELIVERY_BACKOFF_SECONDS = 0
    settings.ODR_DELIVERY_BACKOFF_MAX_SECONDS = 0
    settings.ODR_DELIVERY_MAX_ATTEMPTS = 3
    return settings


@pytest.fixture
def court_case(active_case, court):
    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number="2-777/2026")
    active_case.refresh_from_db()
    return active_case


@pytest.fixture
def file_it(court_case, sealed_agreement, party_a, origin, torelik_settings):
    """File the sealed agreement (through the torelik channel); returns the filing, still queued."""

    def file() -> Filing:
        filing = filing_services.filing_submit(agreement=sealed_agreement, user=party_a, origin=origin)
        assert filing.channel == "torelik" and filing.status == FilingStatus.QUEUED
        return filing

    return file


def _fresh(filing: Filing) -> tuple[Filing, Delivery]:
    filing = Filing.objects.get(pk=filing.pk)
    return filing, Delivery.objects.get(filing=filing)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Delivery --------------------------------------------------------------------------------------------------


def test_when_the_court_accepts_then_one_signed_envelope_carries_the_sealed_pdf_and_the_filing_is_delivered(
    file_it, fake_torelik, court_case, court, sealed_agreement, party_a, party_b, run_jobs
):
    filing = file_it()
    run_jobs()

    assert len(fake_torelik.requests) == 1
    request = fake_torelik.requests[0]
    assert request["signed"] and request["path"] == "/filings"
    assert request["content_type"] == "application/json"
    assert abs(int(request["timestamp"]) - time.time()) < 60
    assert request["key"] == str(filing.idempotency_key)
    sent = json.loads(request["body"])
    assert sent["filing_id"] == str(filing.public_id)
    assert sent["idempotency_key"] == str(filing.idempotency_key)
    assert sent["case_reference"] == court_case.reference
    assert sent["court"]["code"] == court.code
    assert sent["court_case_number"] == "2-777/2026"
    names = [party["name"] for party in sent["parties"]]
    assert party_a.display_name in names and party_b.display_name in names
    assert sent["agreement"]["verification_code"] == sealed_agreement.verification_code
    assert sent["agreement"]["sha256"] == sealed_agreement.sealed_sha256
    pdf = base64.b64decode(sent["document"]["base64"], validate=True)
    assert pdf == issuing.sealed_pdf(sealed_agreement)
    assert hashlib.sha256(pdf).hexdigest() == sealed_agreement.sealed_sha256
    assert sent["document"]["content_type"] == "application/pdf"

    filing, delivery = _fresh(filing)
    assert filing.status == FilingStatus.DELIVERED and filing.external_id == "TR-1"
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 1 and delivery.delivered_at
    assert [(e.status, e.source) for e in filing.events.all()] == [("queued", "participant"), ("delivered", "system")]
    assert len(fake_torelik.filings) == 1


def test_when_the_court_answers_500_twice_then_the_third_attempt_delivers_and_it_is_filed_once(
    file_it, fake_torelik, run_jobs
):
    fake_torelik.script = ["error", "error"]
    filing = file_it()
    run_jobs()

    assert [r["behaviour"] for r in fake_torelik.requests] == ["error", "error", "ok"]
    assert {r["key"] for r in fake_torelik.requests} == {str(filing.idempotency_key)}
    filing, delivery = _fresh(filing)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 3
    assert filing.status == FilingStatus.DELIVERED and filing.external_id == "TR-1"
    assert len(fake_torelik.filings) == 1


def test_when_the_court_is_slower_than_the_timeout_then_the_retry_files_nothing_twice(
    file_it, fake_torelik, run_jobs
):
    fake_torelik.script = ["slow"]
    filing = file_it()
    started = time.monotonic()
    run_jobs()

    # The client gave up at its timeout, not when the slow answer came.
    assert time.monotonic() - started < SLOW + 2
    assert [r["behaviour"] for r in fake_torelik.requests] == ["slow", "ok"]
    assert [r["key"] for r in fake_torelik.requests] == [str(filing.idempotency_key)] * 2
    assert len(fake_torelik.filings) == 1  # exactly-once: the retry was answered 409 with the same id
    filing, delivery = _fresh(filing)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 2
    assert filing.status == FilingStatus.DELIVERED and filing.external_id == "TR-1"
    assert filing.events.filter(status=FilingStatus.DELIVERED).count() == 1


def test_when_the_court_is_down_then_after_the_last_attempt_the_delivery_is_dead_and_every_admin_is_emailed(
    file_it, torelik_settings, admin_user, user_factory, party_a, run_jobs, outbox
):
    other_admin = user_factory("ops@example.kz", is_staff=True)
    retired_admin = user_factory("retired@example.kz", is_staff=True, is_active=False)
    torelik_settings.ODR_TORELIK_URL = f"http://127.0.0.1:{_free_port()}"
    filing = file_it()
    run_jobs()

    filing, delivery = _fresh(filing)
    assert delivery.state == DeliveryState.DEAD and delivery.attempts == 3
    assert "ConnectionError" in delivery.last_error
    assert filing.status == FilingStatus.FAILED
    assert filing.events.filter(status=FilingStatus.FAILED, source="system").count() == 1
    dead_letters = [m for m in outbox if DEAD_SUBJECT in m.subject]
    assert sorted(m.to[0] for m in dead_letters) == sorted([admin_user.email, other_admin.email])
    assert retired_admin.email not in {m.to[0] for m in outbox}
    assert all(filing.case.reference in m.subject and "3 attempts" in m.body for m in dead_letters)
    # The parties learn that it failed, too (not the dead letter).
    assert any(party_a.email in m.to and "Delivery failed" in m.subject for m in outbox)

    run_jobs()  # nothing more is tried
    assert Delivery.objects.get(pk=delivery.pk).attempts == 3


def test_when_the_court_refuses_with_400_then_it_is_given_up_at_the_first_attempt(
    file_it, fake_torelik, admin_user, run_jobs, outbox
):
    fake_torelik.script = ["reject"]
    filing = file_it()
    run_jobs()

    assert len(fake_torelik.requests) == 1  # the follow-up queued before the attempt found it dead
    filing, delivery = _fresh(filing)
    assert delivery.state == DeliveryState.DEAD and delivery.attempts == 1
    assert delivery.last_error.startswith("HTTP 400")
    assert filing.status == FilingStatus.FAILED and not fake_torelik.filings
    assert [m.to for m in outbox if DEAD_SUBJECT in m.subject] == [[admin_user.email]]


def test_when_our_secret_is_not_the_courts_then_it_answers_401_and_nothing_is_filed(
    file_it, fake_torelik, torelik_settings, run_jobs
):
    torelik_settings.ODR_TORELIK_SECRET = "not-the-shared-secret"
    filing = file_it()
    run_jobs()

    assert [r["signed"] for r in fake_torelik.requests] == [False]
    filing, delivery = _fresh(filing)
    assert delivery.state == DeliveryState.DEAD and delivery.last_error.startswith("HTTP 401")
    assert filing.status == FilingStatus.FAILED and not fake_torelik.filings


# --- Callbacks -------------------------------------------------------------------------------------------------


def _callback(client, payload, *, secret=SECRET, timestamp=None, signature=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
    headers = {
        torelik.TIMESTAMP_HEADER: timestamp,
        torelik.SIGNATURE_HEADER: signature if signature is not None else torelik.sign(secret, timestamp, body),
    }
    return client.post(reverse("torelik_callback"), data=body, content_type="application/json", headers=headers)


def _event(filing, event_id, status, reason=None):
    return {"event_id": event_id, "filing_id": str(filing.public_id), "status": status, "reason": reason}


@pytest.fixture
def delivered(file_it, run_jobs, outbox):
    filing = file_it()
    run_jobs()
    filing.refresh_from_db()
    assert filing.status == FilingStatus.DELIVERED
    outbox.clear()
    return filing


def _state(filing):
    filing = Filing.objects.get(pk=filing.pk)
    return filing.status, filing.return_reason, filing.events.count(), CallbackReceipt.objects.count()


def test_when_the_court_calls_back_received_then_approved_then_the_filing_is_approved_and_the_parties_are_told(
    delivered, client, party_a, party_b, mediator, run_jobs, outbox
):
    signatories = sorted([party_a.email, party_b.email, mediator.email])

    response = _callback(client, _event(delivered, "ev-1", "received"))
    assert response.status_code == 200 and response.json() == {"filing_id": str(delivered.public_id),
                                                               "status": "received"}
    run_jobs()
    assert sorted(m.to[0] for m in outbox) == signatories
    assert any("Received by the court" in m.subject for m in outbox if party_a.email in m.to)
    outbox.clear()

    response = _callback(client, _event(delivered, "ev-2", "approved"))
    assert response.status_code == 200 and response.json()["status"] == "approved"
    run_jobs()
    assert sorted(m.to[0] for m in outbox) == signatories
    assert any("Approved by the court" in m.subject for m in outbox if party_a.email in m.to)

    filing = Filing.objects.get(pk=delivered.pk)
    assert filing.status == FilingStatus.APPROVED
    assert [(e.status, e.source) for e in filing.events.all()] == [
        ("queued", "participant"), ("delivered", "system"), ("received", "callback"), ("approved", "callback"),
    ]
    assert sorted(CallbackReceipt.objects.values_list("event_id", flat=True)) == ["ev-1", "ev-2"]


def test_when_a_callback_is_forged_stale_replayed_or_out_of_order_then_it_is_refused_and_nothing_changes(
    delivered, client, run_jobs, outbox
):
    assert _callback(client, _event(delivered, "ev-1", "received")).status_code == 200
    run_jobs()
    outbox.clear()
    before = _state(delivered)

    forged = _callback(client, _event(delivered, "ev-2", "approved"), secret="not-the-secret")
    assert forged.status_code == 401 and forged.json()["code"] == "bad_signature"
    unsigned = _callback(client, _event(delivered, "ev-2", "approved"), signature="")
    assert unsigned.status_code == 401
    # Signed, then the body changed on the way.
    timestamp = str(int(time.time()))
    signature = torelik.sign(SECRET, timestamp, json.dumps(_event(delivered, "ev-2", "received")).encode())
    tampered = _callback(client, _event(delivered, "ev-2", "approved"), timestamp=timestamp, signature=signature)
    assert tampered.status_code == 401
    stale = _callback(client, _event(delivered, "ev-2", "approved"), timestamp=int(time.time()) - 600)
    assert stale.status_code == 401 and stale.json()["code"] == "stale"
    future = _callback(client, _event(delivered, "ev-2", "approved"), timestamp=int(time.time()) + 600)
    assert future.status_code == 401 and future.json()["code"] == "stale"
    assert _state(delivered) == before

    replayed = _callback(client, _event(delivered, "ev-1", "received"))
    assert replayed.status_code == 409 and replayed.json()["code"] == "replayed"
    assert _state(delivered) == before

    assert _callback(client, _event(delivered, "ev-2", "approved")).status_code == 200
    after_approval = _state(delivered)
    replayed = _callback(client, _event(delivered, "ev-2", "approved"))
    assert replayed.status_code == 409 and replayed.json()["code"] == "replayed"
    backwards = _callback(client, _event(delivered, "ev-3", "received"))
    assert backwards.status_code == 409 and backwards.json()["code"] == "out_of_order"
    assert _state(delivered) == after_approval
    assert after_approval[0] == FilingStatus.APPROVED
    run_jobs()
    assert len(outbox) == 3  # the approval only, to the three signatories


MALFORMED = [  # (body, status, code); FILING stands for the delivered filing's id
    (b"{not json", 400, "malformed"),
    (b"[]", 400, "malformed"),
    ({"event_id": "ev-9", "status": "approved"}, 400, "malformed"),  # no filing id
    ({"event_id": "ev-9", "filing_id": "not-a-uuid", "status": "approved"}, 400, "malformed"),
    ({"event_id": "", "filing_id": "FILING", "status": "approved"}, 400, "malformed"),
    ({"event_id": "x" * 129, "filing_id": "FILING", "status": "approved"}, 400, "malformed"),
    ({"event_id": "ev-9", "filing_id": "FILING", "status": "delivered"}, 400, "malformed"),  # not the court's to say
    ({"event_id": "ev-9", "filing_id": "00000000-0000-4000-8000-000000000000", "status": "approved"}, 404,
     "unknown_filing"),
    ({"event_id": "ev-9", "filing_id": "FILING", "status": "returned"}, 400, "no_reason"),
    ({"event_id": "ev-9", "filing_id": "FILING", "status": "returned", "reason": "   "}, 400, "no_reason"),
]


def test_when_a_callback_is_malformed_or_unknown_then_it_is_refused_with_a_clear_body_and_nothing_changes(
    delivered, client
):
    before = _state(delivered)
    for payload, status, code in MALFORMED:
        if isinstance(payload, dict) and payload.get("filing_id") == "FILING":
            payload = {**payload, "filing_id": str(delivered.public_id)}
        response = _callback(client, payload)
        assert (response.status_code, response.json()["code"]) == (status, code), payload
        assert response.json()["detail"]
        assert _state(delivered) == before, payload
    # The event ids of refused callbacks were not used up.
    assert _callback(client, _event(delivered, "ev-9", "received")).status_code == 200


def test_when_a_filing_went_through_the_portal_then_a_signed_callback_cannot_touch_it(
    court_case, sealed_agreement, party_a, origin, torelik_settings, run_jobs, client
):
    torelik_settings.ODR_FILING_CHANNEL = "portal"
    portal = filing_services.filing_submit(agreement=sealed_agreement, user=party_a, origin=origin)
    run_jobs()
    response = _callback(client, _event(portal, "ev-1", "approved"))
    assert response.status_code == 404 and response.json()["code"] == "unknown_filing"
    assert Filing.objects.get(pk=portal.pk).status == FilingStatus.DELIVERED


def test_when_the_court_returns_with_a_reason_then_the_reason_is_kept(delivered, client):
    response = _callback(client, _event(delivered, "ev-1", "returned", "The court case number is unknown."))
    assert response.status_code == 200
    filing = Filing.objects.get(pk=delivered.pk)
    assert filing.status == FilingStatus.RETURNED and filing.return_reason == "The court case number is unknown."


def test_when_the_court_calls_back_before_our_retry_learns_it_was_filed_then_the_delivery_still_completes(
    file_it, fake_torelik, torelik_settings, client, run_jobs
):
    """The court filed the first request but answered after our timeout, and
    sent "received" at once (a queued filing may become received: the
    transitions allow it). The retry is answered 409 with the id: the
    delivery is done, and the filing stays received."""
    torelik_settings.ODR_DELIVERY_BACKOFF_SECONDS = 1
    torelik_settings.ODR_DELIVERY_BACKOFF_MAX_SECONDS = 1
    fake_torelik.script = ["slow"]
    filing = file_it()
    run_jobs()  # the first attempt times out; the retry is not due yet
    assert Filing.objects.get(pk=filing.pk).status == FilingStatus.QUEUED

    assert _callback(client, _event(filing, "ev-1", "received")).status_code == 200
    time.sleep(1.1)
    run_jobs()  # the retry: 409, with the court's id

    assert [r["behaviour"] for r in fake_torelik.requests] == ["slow", "ok"]
    filing, delivery = _fresh(filing)
    failed = DBTaskResult.objects.filter(task_path="agreements.tasks.deliver_filing", status=TaskResultStatus.FAILED)
    assert delivery.state == DeliveryState.DELIVERED, [(job.exception_class_path, job.traceback[-300:]) for job in failed]
    assert filing.status == FilingStatus.RECEIVED and filing.external_id == "TR-1"


# --- A worker killed in the middle of a delivery ---------------------------------------------------------------


def _database_url() -> str:
    params = connection.settings_dict
    assert connection.vendor == "postgresql", connection.vendor
    credentials = quote(params.get("USER") or "", safe="")
    if params.get("PASSWORD"):
        credentials += ":" + quote(params["PASSWORD"], safe="")
    host = params.get("HOST") or "localhost"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{params['NAME']}"


def _worker_env(settings, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "ODR_MASTER_KEY": settings.ODR_MASTER_KEY,
        "ODR_PKI_DIR": str(settings.ODR_PKI_DIR),
        "ODR_SEAL_PKCS12": settings.ODR_SEAL_PKCS12,
        "ODR_SEAL_PASSPHRASE": settings.ODR_SEAL_PASSPHRASE,
        "ODR_TRUST_ROOTS": ",".join(settings.ODR_TRUST_ROOTS),
        "EMAIL_URL": "consolemail://",
        "PYTHONPATH": str(BASE_DIR),
        "ODR_FILING_CHANNEL": "torelik",
        "ODR_TORELIK_URL": url,
        "ODR_TORELIK_SECRET": SECRET,
        "ODR_TORELIK_TIMEOUT": "30",
        "ODR_DELIVERY_BACKOFF_SECONDS": "1",
        "ODR_DELIVERY_BACKOFF_MAX_SECONDS": "1",
    }


WORKER = [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--interval", "0"]


def _waiting_deliveries():
    return DBTaskResult.objects.filter(
        task_path="agreements.tasks.deliver_filing", status=TaskResultStatus.READY
    ).exclude(run_after=get_date_max())


@pytest.mark.django_db(transaction=True)
def test_when_the_worker_is_killed_mid_delivery_then_a_new_worker_delivers_and_the_court_files_it_once(
    file_it, fake_torelik, torelik_settings, tmp_path
):
    fake_torelik.script = ["hang"]
    filing = file_it()
    env = _worker_env(torelik_settings, fake_torelik.url)

    with open(tmp_path / "killed.log", "w") as log:
        worker = subprocess.Popen(WORKER, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert fake_torelik.received.wait(timeout=30), (tmp_path / "killed.log").read_text()[-3000:]
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    filing, delivery = _fresh(filing)
    assert filing.status == FilingStatus.QUEUED
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 1
    assert _waiting_deliveries().count() == 1  # the follow-up, queued before the request went out
    fake_torelik.release.set()  # the court filed it; its answer reaches no one

    latest = max(job.run_after for job in _waiting_deliveries())
    time.sleep(max(0.0, (latest - timezone.now()).total_seconds()) + 0.2)
    recovered = subprocess.run(WORKER, check=False, cwd=BASE_DIR, env=env, capture_output=True, text=True,
                               timeout=120)
    assert recovered.returncode == 0, recovered.stdout[-2000:] + recovered.stderr[-2000:]

    filing, delivery = _fresh(filing)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 2, delivery.last_error
    assert filing.status == FilingStatus.DELIVERED and filing.external_id == "TR-1"
    assert filing.events.filter(status=FilingStatus.DELIVERED).count() == 1
    assert [r["behaviour"] for r in fake_torelik.requests] == ["hang", "ok"]
    assert [r["key"] for r in fake_torelik.requests] == [str(filing.idempotency_key)] * 2
    assert len(fake_torelik.filings) == 1
    jobs = DBTaskResult.objects.filter(task_path="agreements.tasks.deliver_filing")
    assert jobs.filter(status=TaskResultStatus.RUNNING).count() == 1  # the one that died with its worker
    assert jobs.filter(status=TaskResultStatus.SUCCESSFUL, return_value=True).count() == 1
