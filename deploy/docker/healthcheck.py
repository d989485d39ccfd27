"""The image's HEALTHCHECK: exit 0 when this container's Daphne answers /healthz.

Usage: python healthcheck.py PORT

Django answers only requests for a name in ALLOWED_HOSTS (anything else is a
400), so the probe names the first of them: a `.example.kz` wildcard without
its dot, and `localhost` when the list is empty or `*`. /healthz is exempt from
the HTTPS redirect (odr/settings.py), so plain HTTP on the container's port
suffices. Standard library only: the slim image has no curl.
"""

import os
import sys
import urllib.error
import urllib.request


def probe_host(allowed_hosts: str) -> str:
    first = allowed_hosts.split(",")[0].strip().lstrip(".")
    return first if first not in ("", "*") else "localhost"


def main(port: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        headers={"Host": probe_host(os.environ.get("ALLOWED_HOSTS", ""))},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            healthy = response.status == 200
    except (urllib.error.URLError, OSError) as error:
        print(f"healthz: {error}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
