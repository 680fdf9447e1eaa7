"""A DHCPv4 client that times one exchange: DISCOVER, OFFER, REQUEST, ACK (run inside an instance namespace).

``dhclient`` waits a random 0-1 s before its first DISCOVER (RFC 2131 4.4.1 asks for such a delay),
which would swamp the DHCP server's part in a latency measurement; this probe sends at once and
prints, as JSON, the wall-clock times of the DISCOVER and of the ACK and the address it was given::

    ip netns exec NS python bench/dhcp_probe.py eth0 fa:16:3e:00:00:01 [--wait]

With ``--wait`` it prints ``ready`` once its socket is bound and begins when a line arrives on stdin
(so that a benchmark can start it ahead of time and not time a Python start-up).

It configures nothing (the lease is not applied) and retries the DISCOVER every second, up to 30 s;
with ``--once`` it sends one DISCOVER and waits the 30 s for its OFFER (a DHCP server that ignored it,
not knowing the MAC yet, never answers it: tests use this to see that the first DISCOVER is answered).
Replies are asked for by broadcast (flag 0x8000): the interface has no address yet.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6


def message(xid: int, mac: bytes, kind: int, options: bytes = b"") -> bytes:
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                       b"\0" * 4, b"\0" * 4, mac, b"", b"")
    return head + MAGIC + bytes([53, 1, kind]) + options + bytes([55, 3, 1, 3, 6, 255])


def parse(packet: bytes) -> tuple[int, str, dict[int, bytes]]:
    xid = struct.unpack("!I", packet[4:8])[0]
    yiaddr = socket.inet_ntoa(packet[16:20])
    options, i = {}, 240
    while i < len(packet) and packet[i] != 255:
        if packet[i] == 0:
            i += 1
            continue
        code, length = packet[i], packet[i + 1]
        options[code] = packet[i + 2:i + 2 + length]
        i += 2 + length
    return xid, yiaddr, options


def exchange(interface: str, mac_text: str, timeout: float = 30.0, *, wait: bool = False,
             once: bool = False) -> dict[str, object]:
    mac = bytes.fromhex(mac_text.replace(":", ""))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.bind(("0.0.0.0", 68))
    if wait:  # started ahead of time: the caller says when to begin (a line on stdin)
        print("ready", flush=True)
        sys.stdin.readline()
    xid = int.from_bytes(os.urandom(4), "big")
    deadline = time.monotonic() + timeout
    first_discover = time.time()
    server, offered = b"", ""
    attempts = 0
    while time.monotonic() < deadline and not offered and not (once and attempts):
        attempts += 1
        sock.sendto(message(xid, mac, DISCOVER), ("255.255.255.255", 67))
        # Every instance on the network hears every broadcast reply: the next DISCOVER goes out a
        # second after this one, however many replies to others arrive meanwhile.
        retry = deadline if once else time.monotonic() + 1.0
        try:
            while (left := retry - time.monotonic()) > 0:
                sock.settimeout(left)
                got, yiaddr, options = parse(sock.recv(2048))
                if got == xid and options.get(53) == bytes([OFFER]):
                    server, offered = options.get(54, b""), yiaddr
                    break
        except TimeoutError:
            continue
    if not offered:
        return {"error": "no offer", "attempts": attempts}
    offer_at = time.time()
    request = bytes([50, 4]) + socket.inet_aton(offered) + bytes([54, len(server)]) + server
    sock.sendto(message(xid, mac, REQUEST, request), ("255.255.255.255", 67))
    while True:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        got, yiaddr, options = parse(sock.recv(2048))
        if got == xid and options.get(53) in (bytes([ACK]), bytes([NAK])):
            break
    return {"discover": first_discover, "offer": offer_at, "ack": time.time(), "offered": offered, "address": yiaddr,
            "acked": options.get(53) == bytes([ACK]), "attempts": attempts}


if __name__ == "__main__":
    print(json.dumps(exchange(sys.argv[1], sys.argv[2], wait="--wait" in sys.argv[3:], once="--once" in sys.argv[3:])))
