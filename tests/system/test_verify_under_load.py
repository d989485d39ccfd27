"""System tests: /verify/ under hostile load does not stall the site.

`test_when_hostile_files_are_checked_then_a_room_page_keeps_its_latency`:
one real `daphne odr.asgi:application` process. A signed-in party loads the
room page one request after another, first alone (the baseline), then while
10 clients keep uploading the 18 MB file of 100,000 incremental updates to
/verify/ (≈ 10 s of CPU and hundreds of MB unconfined; tests/agreements/
hostile_pdfs.py). The per-address rate limit is lifted for the test (as for
an attacker with many addresses), so every upload reaches the sandbox or its
queue. What is asserted is behaviour: every room page is a 200; every upload
is answered 200 "could not be checked", or 503 (busy) — never a 500; Daphne
lives and logs no traceback. The room page's p50/p95 in both phases are
printed and written to verify_under_load.json in the test's directory; the
figure in docs/performance.md comes from a run of this test.

`test_when_verify_is_flooded_through_nginx_then_nginx_answers_429`: nginx
with deploy/nginx/odr-site.conf (tests/topology.Nginx) in front of nothing:
a burst of POSTs to /verify/ beyond `limit_req`'s burst is refused by nginx
itself with 429; what it lets through goes on to the (absent) upstream.
"""

import io
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.management import call_command

from tests.agreements import hostile_pdfs
from tests.asgi_server import DaphneProcess, free_port, server_env, session_cookie
from tests.room_client import open_session_with
from tests.topology import Nginx

ROOM_REQUESTS = 100  # per phase, at least
UPLOADERS = 10
SERVER_CRASH = "Traceback"


@pytest.fixture
def trust_roots(settings, tmp_path) -> str:
    """A development CA of the test's own, for the Daphne process's checks."""
    settings.ODR_PKI_DIR = tmp_path / "pki"
    settings.ODR_SEAL_PKCS12 = str(tmp_path / "pki" / "seal.p12")
    settings.ODR_SEAL_PASSPHRASE = "test-seal-passphrase"
    call_command("make_dev_ca", stdout=io.StringIO())
    return str(tmp_path / "pki" / "ca.pem")


def percentiles(latencies: list[float]) -> dict:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def load_room(session: requests.Session, url: str, count: int) -> tuple[list[float], list[int]]:
    """The room page `count` times, one after another; (seconds each, statuses)."""
    latencies, statuses = [], []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status_code)
    return latencies, statuses


def verify_client(base_url: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.headers["Accept-Language"] = "en"
    session.get(f"{base_url}/verify/", timeout=60)
    return session, session.cookies["csrftoken"]


def post_file(session: requests.Session, token: str, base_url: str, data: bytes) -> tuple[int, bool]:
    response = session.post(
        f"{base_url}/verify/", data={"csrfmiddlewaretoken": token},
        files={"file": ("agreement.pdf", data, "application/pdf")}, timeout=120,
    )
    return response.status_code, "Could not be checked." in response.text


def keep_uploading(base_url: str, data: bytes, stop: threading.Event, answers: list) -> None:
    session, token = verify_client(base_url)
    while not stop.is_set():
        answers.append(post_file(session, token, base_url, data))


@pytest.mark.django_db(transaction=True)
def test_when_hostile_files_are_checked_then_a_room_page_keeps_its_latency(
    active_case, party_a, mediator, trust_roots, tmp_path, capsys
):
    joint = open_session_with(active_case, mediator, party_a)
    cookie = session_cookie(party_a)
    env = server_env(ODR_TRUST_ROOTS=trust_roots, ODR_VERIFY_UPLOAD_RATE="100000/m")
    hostile = hostile_pdfs.incremental_updates()
    daphne = DaphneProcess(free_port(), env, tmp_path / "daphne.log")
    try:
        room_url = f"{daphne.url}/rooms/{joint.public_id}/"
        party = requests.Session()
        party.cookies.set("sessionid", cookie)
        # Warm: the room page's first request, and the sandbox's server.
        load_room(party, room_url, 5)
        assert post_file(*verify_client(daphne.url), daphne.url, hostile_pdfs.minimal()) == (200, False)

        baseline, baseline_statuses = load_room(party, room_url, ROOM_REQUESTS)

        stop, answers = threading.Event(), []
        uploaders = [
            threading.Thread(target=keep_uploading, args=(daphne.url, hostile, stop, answers), daemon=True)
            for _ in range(UPLOADERS)
        ]
        for uploader in uploaders:
            uploader.start()
        time.sleep(1.0)  # the uploads are on their way, and the first checks running
        # At least ROOM_REQUESTS, and on until every uploader has had two answers.
        loaded, loaded_statuses = [], []
        while len(loaded) < ROOM_REQUESTS or len(answers) < 2 * UPLOADERS:
            latencies, statuses = load_room(party, room_url, 10)
            loaded += latencies
            loaded_statuses += statuses
            assert len(loaded) < 50 * ROOM_REQUESTS, f"the uploads are not being answered: {answers}"
        answered_meanwhile = len(answers)
        stop.set()
        for uploader in uploaders:
            uploader.join(120)

        log = daphne.log()
        alive = daphne.process.poll() is None
    finally:
        daphne.stop()

    assert set(baseline_statuses) == {200} and set(loaded_statuses) == {200}, (baseline_statuses, loaded_statuses)
    assert not any(uploader.is_alive() for uploader in uploaders)
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert all(unchecked for status, unchecked in answers if status == 200), answers
    assert statuses.count(200) >= 2, statuses  # checks did run during the load
    assert alive, log[-3000:]
    assert SERVER_CRASH not in log, log[-5000:]
    assert "could not be checked: cpu" in log

    report = {
        "room_page_alone": percentiles(baseline),
        "room_page_under_hostile_load": percentiles(loaded),
        "uploaders": UPLOADERS,
        "hostile_file_bytes": len(hostile),
        "uploads_answered": {str(code): statuses.count(code) for code in sorted(set(statuses))},
        "uploads_answered_while_room_page_loaded": answered_meanwhile,
    }
    (tmp_path / "verify_under_load.json").write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        print(f"\n[verify under load] {json.dumps(report)}")


def test_when_verify_is_flooded_through_nginx_then_nginx_answers_429(tmp_path):
    static_root = tmp_path / "static"
    static_root.mkdir()
    nginx = Nginx(tmp_path / "nginx", daphne_ports=[free_port()], static_root=static_root)
    try:
        def post(_):
            response = requests.post(f"{nginx.url}/verify/", data=b"x", verify=str(nginx.cert), timeout=30)
            return response.status_code, "nginx" in response.text

        # All at once: the burst is 20, and a token comes back every second.
        with ThreadPoolExecutor(max_workers=40) as pool:
            answers = list(pool.map(post, range(40)))
    finally:
        nginx.stop()
    refused = [answer for answer in answers if answer[0] == 429]
    passed = [answer for answer in answers if answer[0] != 429]
    assert all(from_nginx for _, from_nginx in refused)
    assert {status for status, _ in passed} <= {502}, answers  # on to the upstream, which is not there
    # The burst and the first request pass; a second's worth of tokens more
    # at most, however slowly the 40 requests arrive.
    assert len(passed) >= 21 and len(refused) >= 10, answers
