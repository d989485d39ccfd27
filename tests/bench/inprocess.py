"""The benchmark's in-process measurements, run by tests/bench/run.py in a
process of its own on the benchmark's database (`python -m tests.bench.inprocess`):

* an agreement PDF rendered and sealed as the sealing job does it — the
  frozen PDF with its signature fields (WeasyPrint), then three signers'
  boxes stamped and the platform seal (pyHanko) — p50 over 20;
* a room page's server time and SQL query count, for rooms holding few and
  many messages (the count must not grow: tests/sessions/test_room_page_queries.py
  asserts it).

Prints one JSON object.
"""

import datetime
import io
import json
import os
import statistics
import sys
import time
import uuid

import django


def _p50(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def pdf_figures(rounds: int = 20) -> dict:
    from django.core.management import call_command

    from agreements import rendering
    from agreements.sealing import get_sealer
    from agreements.services import drafts

    call_command("make_dev_ca", stdout=io.StringIO())
    content = drafts.draft_defaults(layout="kk-ru")
    for key in drafts.section_keys("kk-ru"):
        if not content[key]:
            content[key] = ("Жауапкер талапкерге 500 000 теңге төлейді. ә ғ қ ң ө ұ ү һ і"
                            if key.startswith("kk.") else "Ответчик выплачивает истцу 500 000 тенге.")
    people = [
        rendering.Person(name="Дана Омарова", role="claimant", field="Signature1"),
        rendering.Person(name="Ерлан Сейткали", role="respondent", field="Signature2"),
        rendering.Person(name="Айгерим Садыкова", role="mediator", field="Signature3"),
    ]
    sealer = get_sealer()
    render_times, seal_times, sizes = [], [], []
    for _ in range(rounds + 1):  # the first round warms caches (fonts, templates) and is not counted
        started = time.perf_counter()
        doc = rendering.document_context(
            reference="ODR-2026-000001", layout="kk-ru", content=content, people=people,
            date=datetime.date(2026, 11, 22), verification_code=uuid.uuid4().hex[:20].upper(),
        )
        pdf = rendering.render_frozen_pdf(doc)
        rendered = time.perf_counter()
        for person in people:
            stamp = rendering.stamp_text(name=person.name, role=person.role, method="email_code",
                                         signed_at=datetime.datetime.now(datetime.UTC), layout="kk-ru")
            pdf = sealer.sign(pdf, field=person.field, reason="Signed with a one-time code", stamp=stamp)
        pdf = sealer.seal(pdf, reason="Sealed by the platform")
        sealed = time.perf_counter()
        render_times.append(rendered - started)
        seal_times.append(sealed - rendered)
        sizes.append(len(pdf))
    render_times, seal_times = render_times[1:], seal_times[1:]
    return {
        "rounds": rounds,
        "render_p50_ms": _p50(render_times),
        "seal_p50_ms": _p50(seal_times),
        "total_p50_ms": _p50([r + s for r, s in zip(render_times, seal_times, strict=True)]),
        "sealed_kib": round(statistics.median(sizes) / 1024, 1),
    }


def page_figures(fixtures: dict, rounds: int = 20) -> dict:
    """GET the room page as a party, in a room with its few seeded events and
    in one where many messages were then posted."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from odr.models import User
    from sessions.models import Room
    from sessions.services import rooms

    def measure(room_id: str, email: str) -> dict:
        # As nginx forwards it: HTTPS, the site's host.
        client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
        client.force_login(User.objects.get(email=email))
        url = reverse("mediation:room", args=[room_id])
        times, queries = [], []
        for _ in range(rounds + 1):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
            assert response.status_code == 200, (response.status_code, response.get("Location"))
            queries.append(len(captured))
        return {"server_p50_ms": _p50(times[1:]), "queries": queries[-1]}

    quiet, busy = fixtures["rooms"][0], fixtures["rooms"][1]
    busy_room = Room.objects.get(public_id=busy["room"])
    speakers = [User.objects.get(email=m["email"]) for m in busy["members"] if m["role"] != "observer"]
    for n in range(200):
        rooms.message_post(room=busy_room, user=speakers[n % len(speakers)], client_id=str(uuid.uuid4()),
                           body=f"Message {n} of a long session.")
    party = lambda room: next(m["email"] for m in room["members"] if m["role"] == "claimant")  # noqa: E731
    few = measure(quiet["room"], party(quiet))
    many = measure(busy["room"], party(busy))
    return {"participants": len(quiet["members"]), "few_messages": few, "many_messages": many,
            "many": 200}


def main() -> None:
    fixtures_path = sys.argv[1]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odr.settings")
    django.setup()
    with open(fixtures_path) as handle:
        fixtures = json.load(handle)
    print(json.dumps({"pdf": pdf_figures(), "room_page": page_figures(fixtures)}))


if __name__ == "__main__":
    main()
