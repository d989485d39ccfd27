"""What the server tells the application when it stops (odr/server.py).

Apart from odr/server.py because that module installs Twisted's reactor when
it is imported: the packages that listen here (sessions.consumers) must be
able to import this from anywhere, tests included.
"""

from django.dispatch import Signal

# Sent on the server's event loop when the process starts to drain (SIGTERM,
# SIGINT, SIGHUP), then again every DRAIN_TICK_SECONDS until its connections
# are gone, so that a socket that finishes its handshake meanwhile is closed
# too. A receiver closes the sockets it owns with a code that makes their
# clients reconnect (to another instance, through nginx) and lets their
# disconnect handlers run; it must not mind being called again, and returns
# how many of its sockets are still open or still in those handlers. The
# process has drained when every receiver answers 0 and no connection is left.
server_draining = Signal()

DRAIN_TICK_SECONDS = 0.25
