"""Print shell assignments for the test run's DATABASE_URL and REDIS_URL.

PostgreSQL (127.0.0.1:5432, database `test`) and Redis (127.0.0.1:6379) are
used when they answer — the production configuration, and what CI has. On a
machine without them the suite falls back to SQLite + the in-memory channel
layer and says so (on stderr, so the caller can `eval` stdout).
"""

import os
import shlex
import socket
import sys

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def main() -> None:
    pg = answers("127.0.0.1", 5432)
    redis = answers("127.0.0.1", 6379)
    assignments = {
        "DATABASE_URL": PG_URL if pg else "",
        "REDIS_URL": REDIS_URL if redis else "",
    }
    print(
        "Tests run on "
        + ("PostgreSQL" if pg else "SQLite (PostgreSQL not reachable on 127.0.0.1:5432)")
        + " and "
        + ("Redis" if redis else "the in-memory channel layer (Redis not reachable on 127.0.0.1:6379)")
        + ".",
        file=sys.stderr,
    )
    for name, value in assignments.items():
        print(f"{name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
