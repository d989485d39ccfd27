"""An ASGI application that blocks its server's event loop on the first HTTP
request and never gives it back (a synchronous call in async code that never
returns): `python -m odr.server tests.system.stuck_application:application`.
tests/system/test_server_lifecycle.py stops such a server: nothing that needs
the loop can run, so only the watchdog can end it.
"""

import time


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "http":
        block_the_event_loop()


def block_the_event_loop():
    print("blocking the event loop", flush=True)
    while True:
        time.sleep(3600)
