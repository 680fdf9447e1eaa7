"""The metadata proxy: an HTTP server inside a ``qdhcp-``/``qrouter-`` namespace, and its driver.

The program (``python -m neutrino.dataplane.metadata_proxy``) answers instances on
``http://169.254.169.254/`` and ``http://[fe80::a9fe:a9fe]/``. It identifies the caller by its source address in the map file the
metadata role writes for this namespace (address -> port, instance, project; it rests on
anti-spoofing, as in Neutron), removes whatever ``X-Instance-ID``, ``X-Tenant-ID``,
``X-Forwarded-For`` and ``X-Instance-ID-Signature`` the caller sent, adds its own (the signature is
HMAC-SHA256 of the instance id with the shared secret, read from a 0600 file, never from the command
line) and forwards the request to the metadata backend (Neutrino's own, over a UNIX socket, or
Nova's metadata API, over HTTP), as Neutron's metadata agent does. A caller the map does not know
gets 404 and nothing is forwarded.

:class:`MetadataProxyDriver` starts, finds (pid file checked against /proc: the program and the
namespace) and stops one proxy per namespace through
:class:`~neutrino.dataplane.daemons.DaemonRunner`; everything it writes lives in one directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from neutrino.contract.metadata import sign
from neutrino.dataplane.daemons import DaemonRunner, Program
from neutrino.dataplane.netlink import NETNS_DIR
from neutrino.dataplane.processes import ProcessFacts

MODULE = "neutrino.dataplane.metadata_proxy"
# Headers only the proxy may set; whatever the instance sent under these names is dropped.
IDENTITY_HEADERS = ("x-instance-id", "x-tenant-id", "x-forwarded-for", "x-instance-id-signature")
_HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
               "host", "content-length")
_MAX_HEAD = 65536


def forwarded_headers(received: Sequence[tuple[str, str]], caller_ip: str, who: Mapping[str, str],
                      secret: str) -> list[tuple[str, str]]:
    """The caller's headers without identity or hop-by-hop ones, plus the proxy's identity headers (pure)."""
    kept = [(k, v) for k, v in received if k.lower() not in IDENTITY_HEADERS and k.lower() not in _HOP_BY_HOP]
    return [*kept, ("X-Forwarded-For", caller_ip), ("X-Instance-ID", who["device_id"]),
            ("X-Tenant-ID", who["project_id"]), ("X-Instance-ID-Signature", sign(secret, who["device_id"]))]


class _Map:
    """The address map, read again whenever its file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._data: dict[str, dict[str, str]] = {}

    def get(self, ip: str) -> dict[str, str] | None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._data = json.loads(self.path.read_text())
                self._stamp = stamp
        except (OSError, ValueError):
            pass
        return self._data.get(ip)


async def _respond(writer: asyncio.StreamWriter, status: int, reason: str, body: bytes,
                   headers: Sequence[tuple[str, str]] = ()) -> None:
    head = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP),
            f"Content-Length: {len(body)}", "Connection: close", "", ""]
    writer.write("\r\n".join(head).encode("latin-1") + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, addresses: _Map,
                  client: httpx.AsyncClient, secret: str) -> None:
    try:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0") or 0)
        body = await reader.readexactly(length) if length > 0 else b""
        peer = writer.get_extra_info("peername")
        # An IPv6 link-local caller comes with its zone ("fe80::...%ns-..."); the map has the address only.
        caller = str(peer[0]).split("%", 1)[0] if peer else ""
        who = addresses.get(caller)
        if who is None:
            await _respond(writer, 404, "Not Found", b"Not Found")
            return
        try:
            answer = await client.request(method, path, content=body,
                                          headers=forwarded_headers(headers, caller, who, secret))
        except httpx.HTTPError:
            await _respond(writer, 500, "Internal Server Error", b"metadata backend unreachable")
            return
        await _respond(writer, answer.status_code, answer.reason_phrase, answer.content,
                       [(k, v) for k, v in answer.headers.items() if k.lower() != "content-encoding"])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _client(backend: str) -> httpx.AsyncClient:
    if backend.startswith("unix:"):
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=backend[len("unix:"):]),
                                 base_url="http://metadata", timeout=30)
    return httpx.AsyncClient(base_url=backend.rstrip("/"), timeout=30)


async def serve(port: int, map_file: Path, backend: str, secret_file: Path, pid_file: Path) -> None:
    secret = secret_file.read_text().strip()
    addresses = _Map(map_file)
    async with _client(backend) as client:
        server = await asyncio.start_server(
            lambda r, w: _handle(r, w, addresses=addresses, client=client, secret=secret),
            # Both families: instances call 169.254.169.254 and fe80::a9fe:a9fe (asyncio sets IPV6_V6ONLY).
            ["0.0.0.0", "::"], port,
            limit=_MAX_HEAD, reuse_address=True)
        pid_file.write_text(f"{os.getpid()}\n")
        async with server:
            await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neutrino-metadata-proxy")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--map", required=True, type=Path)
    parser.add_argument("--backend", required=True, help="unix:/path/to/socket or http://host:port")
    parser.add_argument("--secret-file", required=True, type=Path)
    parser.add_argument("--pid-file", required=True, type=Path)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.map, args.backend, args.secret_file, args.pid_file))
    return 0


# ---- the driver -----------------------------------------------------------------------------------


class MetadataProxyDriver:
    """One proxy per namespace; its files (pid, map, log) in ``state_dir/<namespace>/``."""

    def __init__(self, state_dir: Path, *, netns_dir: Path = NETNS_DIR, python: str = sys.executable) -> None:
        self.state_dir = state_dir
        self.netns_dir = netns_dir
        # The proxy stays in the foreground and writes its pid file once it listens.
        self.runner = DaemonRunner(Program((python, "-m", MODULE), mark=MODULE, daemonizes=False, start_timeout=15.0),
                                   netns_dir=netns_dir)

    def directory(self, netns: str) -> Path:
        return self.state_dir / netns

    def map_file(self, netns: str) -> Path:
        return self.directory(netns) / "map.json"

    def _pid_file(self, netns: str) -> Path:
        return self.directory(netns) / "pid"

    def namespaces(self) -> tuple[str, ...]:
        if not self.state_dir.is_dir():
            return ()
        return tuple(sorted(p.name for p in self.state_dir.iterdir() if p.is_dir()))

    def running(self, netns: str, *, inside: bool = True) -> ProcessFacts | None:
        """The namespace's proxy if its pid file names one (with ``inside``, running in the namespace:
        a removed namespace's proxy is found without it)."""
        return self.runner.find(self._pid_file(netns), netns if inside else None)

    def read_map(self, netns: str) -> str | None:
        try:
            return self.map_file(netns).read_text()
        except OSError:
            return None

    def write_map(self, netns: str, content: str) -> None:
        directory = self.directory(netns)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / ".map.json.tmp"
        tmp.write_text(content)
        tmp.replace(self.map_file(netns))

    async def start(self, netns: str, *, port: int, backend: str, secret_file: Path) -> ProcessFacts:
        """Start the namespace's proxy unless one runs; returns it once it listens."""
        current = self.running(netns)
        if current is not None:
            return current
        directory = self.directory(netns)
        directory.mkdir(parents=True, exist_ok=True)
        return await self.runner.start(netns, [
            "--port", str(port), "--map", str(self.map_file(netns)), "--backend", backend,
            "--secret-file", str(secret_file), "--pid-file", str(self._pid_file(netns))],
            self._pid_file(netns), log_file=directory / "log")

    async def remove(self, netns: str) -> None:
        await self.runner.stop(self._pid_file(netns))
        directory = self.directory(netns)
        if directory.is_dir():
            for entry in directory.iterdir():
                entry.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                directory.rmdir()


def map_content(instances: Sequence[Any]) -> str:
    """The map file for a namespace: address -> who (sorted, so the same instances give the same text)."""
    return json.dumps({i.ip_address: {"port_id": i.port_id, "device_id": i.device_id, "project_id": i.project_id}
                       for i in sorted(instances, key=lambda i: i.ip_address)}, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())
