"""A tiny TCP/UDP service for NAT tests, run inside a namespace with ``ip netns exec``.

``serve PROTO:PORT ...`` answers every connection (TCP) or datagram (UDP) with
``"<local port> <peer address>"``: the test learns which internal port a forwarding reached and
the source the service saw. ``ask PROTO ADDRESS PORT`` prints the answer, or exits 1 with the error
(refused, timeout) so a test can tell "no service" from "answered".

FTP-style related connections (active mode, as an FTP client's ``PORT``): ``serve ftp:PORT``
greets (``220``), takes a ``USER`` line (``230``), then reads ``PORT h1,h2,h3,h4,p1,p2``, opens the
data connection to that address and sends ``data`` on it, then answers ``200`` (or ``425`` when it
could not connect).
``ftp-ask ADDRESS PORT LOCAL_IP DATA_PORT`` listens on DATA_PORT, sends the PORT command for
LOCAL_IP and prints what arrived on the data connection (exit 1 with the server's answer if none).
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


def _serve_ftp(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(16)
        while True:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"220 ready\r\n")
                lines = conn.makefile("rb")
                if not lines.readline().startswith(b"USER "):
                    continue
                conn.sendall(b"230 logged in\r\n")
                line = lines.readline().decode().strip()
                fields = line.removeprefix("PORT ").split(",")
                host, data_port = ".".join(fields[:4]), int(fields[4]) * 256 + int(fields[5])
                try:
                    with socket.create_connection((host, data_port), timeout=3) as data:
                        data.sendall(b"data")
                    conn.sendall(b"200 data sent\r\n")
                except OSError as exc:
                    conn.sendall(f"425 no data connection to {host}:{data_port}: {exc}\r\n".encode())


def ask_ftp(address: str, port: int, local_ip: str, data_port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", data_port))
        listener.listen(1)
        listener.settimeout(10)
        with socket.create_connection((address, port), timeout=10) as control:
            replies = control.makefile("rb")
            replies.readline()  # the banner
            # A command before PORT, as any FTP client logs in first: the kernel's FTP helper only
            # reads commands that start right after a line it has seen end.
            control.sendall(b"USER anonymous\r\n")
            replies.readline()
            high, low = divmod(data_port, 256)
            control.sendall(f"PORT {local_ip.replace('.', ',')},{high},{low}\r\n".encode())
            reply = replies.readline().decode().strip()
        if not reply.startswith("200"):
            raise OSError(reply)
        data, _ = listener.accept()
        with data:
            return data.recv(2048).decode()


def serve(specs: list[str]) -> None:
    threads = []
    for spec in specs:
        proto, port = spec.split(":")
        target = {"tcp": _serve_tcp, "udp": _serve_udp, "ftp": _serve_ftp}[proto]
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
        if argv[0] == "ftp-ask":
            print(ask_ftp(argv[1], int(argv[2]), argv[3], int(argv[4])))
        else:
            print(ask(argv[1], argv[2], int(argv[3])))
    except OSError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
