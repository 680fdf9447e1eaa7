"""Ask a DNS server for A records from inside a network namespace (the machine has no dig or host)."""

from __future__ import annotations

import subprocess
import sys

_RESOLVE = r"""
import socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(query, (server, 53))
reply = s.recv(512)
count = struct.unpack(">H", reply[6:8])[0]
i = len(query)
for _ in range(count):
    i += 2 if reply[i] & 0xC0 else reply.index(b"\0", i) + 1 - i
    rtype, _, _, length = struct.unpack(">HHIH", reply[i:i + 10])
    if rtype == 1:
        print(socket.inet_ntoa(reply[i + 10:i + 14]))
    i += 10 + length
"""


def resolve_command(name: str, server: str) -> list[str]:
    """The argv that prints the A records ``server`` answers for ``name``, one per line."""
    return [sys.executable, "-c", _RESOLVE, name, server]


def resolve_in(netns: str, name: str, server: str) -> list[str]:
    done = subprocess.run(["ip", "netns", "exec", netns, *resolve_command(name, server)], capture_output=True,
                          text=True, timeout=20, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()
