"""A TCP throughput probe run inside namespaces: ``receiver(buffer)`` prints "ready", then the
Mbit/s it received after a 0.5 s warm-up; ``sender(buffer)`` sends for 3 s. Both take the
receiver's address as their one argument (``python -c SCRIPT ADDRESS``); ``port`` lets several
transfers run at once against one receiving namespace."""

from __future__ import annotations


def receiver(buffer: int, *, port: int = 5201) -> str:
    return RECEIVE.replace("65536", str(buffer)).replace("5201", str(port))


def sender(buffer: int, *, connect_timeout: float | None = None, port: int = 5201) -> str:
    script = SEND.replace("65536", str(buffer))
    if connect_timeout is not None:
        script = script.replace("(sys.argv[1], 5201))", f"(sys.argv[1], 5201), timeout={connect_timeout})")
    return script.replace("5201", str(port))


# The parts the scripts share: a listener that says it is ready, the loop that counts what arrives
# (after a 0.5 s warm-up) and prints Mbit/s, and the loop that sends for 3 s.
_LISTEN = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 5201)); s.listen(1)
print("ready", flush=True)
"""
_COUNT = """while True:
    d = c.recv(65536)
    if not d:
        break
    now = time.monotonic()
    if start is None and now - t0 >= 0.5:
        start, total = now, 0
    total += len(d)
print(total * 8 / (time.monotonic() - start) / 1e6, flush=True)
"""
_PUSH = """while time.monotonic() < end:
    c.sendall(buf)
c.close()
"""

RECEIVE = _LISTEN + "c, _ = s.accept(); total = 0; start = None; t0 = time.monotonic()\n" + _COUNT
SEND = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 5201)); buf = b"x" * 65536; end = time.monotonic() + 3
""" + _PUSH

DOWNLOAD_SERVER = _LISTEN + 'c, _ = s.accept(); buf = b"x" * 65536; end = time.monotonic() + 3\n' + _PUSH
DOWNLOAD = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 5201), timeout=5); c.settimeout(None); total = 0; start = None
t0 = time.monotonic()
""" + _COUNT
