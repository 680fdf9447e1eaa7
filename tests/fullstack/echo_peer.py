"""A tiny TCP/UDP service for NAT tests, run inside a namespace with ``ip netns exec``.

``serve PROTO:PORT ...`` answers every connection (TCP) or datagram (UDP) with
``"<local port> <peer address>"``: the test learns which internal port a forwarding reached and
the source the service saw. ``ask PROTO ADDRESS PORT`` prints the answer, or exits 1 with the error
(refused, timeout) so a test can tell "no service" from "answered".
"""

from __future__ import annotations

import socket
import sys
import threading


def _serve_tcp(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(16)
        while True:
            conn, peer = server.accept()
            with conn:
                conn.sendall(f"{port} {peer[0]}".encode())


def _serve_udp(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("0.0.0.0", port))
        while True:
            _, peer = server.recvfrom(2048)
            server.sendto(f"{port} {peer[0]}".encode(), peer)


def serve(specs: list[str]) -> None:
    threads = []
    for spec in specs:
        proto, port = spec.split(":")
        target = _serve_tcp if proto == "tcp" else _serve_udp
        threads.append(threading.Thread(target=target, args=(int(port),), daemon=True))
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    for thread in threads:
        thread.join()


def ask(proto: str, address: str, port: int, timeout: float = 2.0) -> str:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        if proto == "udp":
            sock.send(b"?")
        return sock.recv(2048).decode()


def main(argv: list[str]) -> int:
    if argv[0] == "serve":
        serve(argv[1:])
        return 0
    try:
        print(ask(argv[1], argv[2], int(argv[3])))
    except OSError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
