"""docs/performance.md from a benchmark report (tests/bench/run.py), with the
hand-written findings of tests/bench/findings.md (profiles, fixes, what is
left) after the figures."""

from pathlib import Path

from tests.bench.run import RATE_STEP_P99_MS, TARGET

FINDINGS = Path(__file__).with_name("findings.md")


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def write_markdown(report: dict) -> str:
    m = report["machine"]
    base = report["baseline"][0]
    ours = report["odr"]
    target = ours[0]
    sockets = target["sockets"]
    ratio = round(target["p50_ms"] / base["p50_ms"], 2) if target["p50_ms"] and base["p50_ms"] else None
    sustained = [r for r in ours if r["p99_ms"] is not None and r["p99_ms"] <= RATE_STEP_P99_MS and not r["lost"]]
    best = max(sustained, key=lambda r: r["messages_per_s"] or 0) if sustained else None
    pdf = report["inprocess"]["pdf"]
    page = report["inprocess"]["room_page"]
    full_scale = report["rooms"] >= TARGET["rooms"] and sockets >= TARGET["connections"]

    lines = [
        "# Performance",
        "",
        "Measured by `make bench` (tests/bench/run.py); this file is written by it.",
        "What the figures mean and how they are produced: the end of this page.",
        "",
        f"- **Date:** {report['started']} → {report['finished']} (UTC)",
        f"- **Command:** `{report['command']}`",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; Python {m['python']}; "
        f"{m['nginx']}; {m['postgresql']}; {m['redis']}",
        "- **Topology:** nginx (TLS) → 2 × Daphne (`--proxy-headers`) + the job worker, DEBUG off, "
        "PostgreSQL, Redis; the load generator on the same machine (it shares the 2 cores).",
        f"- **Load:** {report['rooms']} rooms × {report['participants']} participants = {sockets} WebSocket "
        f"connections through nginx, each participant sending a message every {target['interval_s']:g} s "
        f"(random phase), pings every 25 s; {report['warmup_s']:g} s warm-up, then {report['duration_s']:g} s measured.",
        "",
        "## Targets",
        "",
        "| target | result | |",
        "|---|---|---|",
        f"| {TARGET['connections']} connections in {TARGET['rooms']} rooms | {sockets} in {report['rooms']} | "
        f"{_verdict(full_scale)} |",
        f"| p99 < {TARGET['p99_ms']:g} ms at one message / 10 s each | p99 {target['p99_ms']} ms | "
        f"{_verdict(target['p99_ms'] is not None and target['p99_ms'] < TARGET['p99_ms'])} |",
        f"| zero loss, zero duplicates | lost {target['lost']}, duplicated {target['duplicates']} | "
        f"{_verdict(target['lost'] == 0 and target['duplicates'] == 0)} |",
        f"| p50 within {TARGET['baseline_ratio']:g}× the bare Channels baseline | {target['p50_ms']} ms vs "
        f"{base['p50_ms']} ms = {ratio}× | {_verdict(ratio is not None and ratio <= TARGET['baseline_ratio'])} |",
        f"| highest sustained rate at p99 < {RATE_STEP_P99_MS:g} ms | "
        + (f"{best['messages_per_s']} messages/s ({best['sockets']} sockets, one message / {best['interval_s']:g} s "
           f"each; p99 {best['p99_ms']} ms)" if best else "none of the rates tried")
        + " | reported |",
        "",
        "## Real-time messaging",
        "",
        "| run | interval | msgs/s | frames/s | p50 ms | p95 ms | p99 ms | max ms | lost | dup | errors | "
        "Daphne CPU % | loadgen CPU % | sockets open / in rooms after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in (("baseline", report["baseline"]), ("ODR", ours)):
        for r in rows:
            lines.append(
                f"| {name} | {r['interval_s']:g} s | {r['messages_per_s']} | {r['frames_delivered_per_s']} | "
                f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['lost']} | {r['duplicates']} | "
                f"{r['errors'] or 0} | {' + '.join(map(str, r['daphne_cpu_percent']))} | {r['loadgen_cpu_percent']} | "
                f"{r['connect_seconds']} s / {r['settle_seconds']} s |"
            )
    lines += [
        "",
        "Latency is from a message's send until the last member of its room (sender included) has it. "
        "Frames/s counts message frames received by all clients. \"Sockets open\" is how long the "
        f"{sockets} handshakes took ({40} at a time); \"in rooms\" how much longer until the server had entered "
        "every socket into its room (the consumer answers the handshake first, then checks the user's standing, "
        "records the connection and sends the presence); the measurement starts after both.",
        "",
        "## Memory",
        "",
        "| run | Daphne RSS idle (2 processes) | with all sockets open | per connection |",
        "|---|---|---|---|",
        f"| baseline | {base['daphne_rss_idle_mib']} MiB | {base['daphne_rss_connected_mib']} MiB | "
        f"{base['memory_per_connection_kib']} KiB |",
        f"| ODR | {target['daphne_rss_idle_mib']} MiB | {target['daphne_rss_connected_mib']} MiB | "
        f"{target['memory_per_connection_kib']} KiB |",
        "",
        "## Agreement PDF",
        "",
        f"Rendering the Kazakh–Russian agreement with its signature fields (WeasyPrint) and sealing it as the "
        f"sealing job does (three signers' stamped boxes and the platform seal, pyHanko), p50 over {pdf['rounds']}:",
        "",
        "| render | seal (3 boxes + seal) | total | sealed size |",
        "|---|---|---|---|",
        f"| {pdf['render_p50_ms']} ms | {pdf['seal_p50_ms']} ms | {pdf['total_p50_ms']} ms | {pdf['sealed_kib']} KiB |",
        "",
        "## Room page",
        "",
        f"GET of the room page by a party, {page['participants']} participants, p50 server time (Django test "
        "client in-process, no network) and SQL queries:",
        "",
        "| room | server time p50 | SQL queries |",
        "|---|---|---|",
        f"| a new session (its system events) | {page['few_messages']['server_p50_ms']} ms | "
        f"{page['few_messages']['queries']} |",
        f"| after {page['many']} messages | {page['many_messages']['server_p50_ms']} ms | "
        f"{page['many_messages']['queries']} |",
        "",
        "The query count does not grow with messages or participants: tests/sessions/test_room_page_queries.py "
        "asserts it on every `make test`.",
        "",
    ]
    if FINDINGS.exists():
        lines += [FINDINGS.read_text().strip(), ""]
    lines += [
        "## How it is measured",
        "",
        f"- Fixtures: `manage.py seed_load --rooms {report['rooms']} --participants {report['participants']}` "
        f"({report['seed_seconds']} s): real cases through the services (application, invitations, agreement to "
        "mediate, undertaking, session start, admissions), one login session per participant.",
        "- The load generator (tests/bench/loadgen.py) is one asyncio process with `websockets`; every client "
        "connects through nginx over TLS with its session cookie and its Origin, sends `resume`, pings every 25 s "
        "and resumes on a gap, as the browser does.",
        "- The baseline (tests/bench/baseline.py) is a bare Channels consumer that relays each frame to its group: "
        "no authentication, no storage, no encryption, same Daphne, same nginx, same Redis configuration.",
        "- Memory per connection: the growth of the two Daphne processes' resident memory from idle to all "
        "sockets open, divided by the sockets.",
        "- CPU: per Daphne process and for the load generator, over the measured window (100 % = one core).",
        "- After the target rate, faster rates are tried until p99 passes "
        f"{RATE_STEP_P99_MS:g} ms; the highest one under it is the sustained rate.",
        "",
    ]
    return "\n".join(lines)
