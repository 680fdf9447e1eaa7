"""Solicit and read one IPv6 router advertisement on a device; prints what it says as JSON.

Run inside a namespace (``ip netns exec NS python ra_probe.py DEVICE``): sends a router
solicitation to ff02::2 and prints the first advertisement's M/O flags, MTU option and prefixes
(with their on-link and autonomous flags), independently of any kernel or radvd view.
"""

from __future__ import annotations

import json
import socket
import struct
import sys

RS, RA = 133, 134
OPT_PREFIX, OPT_MTU = 3, 5


def parse(data: bytes) -> dict[str, object]:
    flags = data[5]
    mtu, prefixes = None, []
    options = data[16:]
    while len(options) >= 8 and options[1]:
        kind, length = options[0], options[1] * 8
        body = options[:length]
        if kind == OPT_MTU:
            mtu = struct.unpack("!I", body[4:8])[0]
        elif kind == OPT_PREFIX:
            prefixes.append({"prefix": f"{socket.inet_ntop(socket.AF_INET6, body[16:32])}/{body[2]}",
                             "on_link": bool(body[3] & 0x80), "autonomous": bool(body[3] & 0x40)})
        options = options[length:]
    return {"managed": bool(flags & 0x80), "other": bool(flags & 0x40), "mtu": mtu, "prefixes": prefixes}


def main(device: str, timeout: float = 20.0) -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.settimeout(timeout)
        sock.sendto(bytes([RS, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, socket.if_nametoindex(device)))
        while True:
            data, _ = sock.recvfrom(4096)
            if data[0] == RA:
                print(json.dumps(parse(data)))
                return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
