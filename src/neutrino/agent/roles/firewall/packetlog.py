"""Security group logging's output: the packets the log rules hand to NFLOG, one line each in the
agent's log file, with what an operator needs, as Neutron's log driver writes them.

The kernel sends a packet's network-layer bytes, its mark and the rule's prefix (``nfw ACCEPT
ingress <group>`` / ``nfw DROP egress``, see ``compile``). The mark names the port (the inet table
carries the sender's mark on egress, the receiver's on ingress); the role's current state names
the logs that asked for that port's packets of that action, so a line reads::

    2026-12-05T04:01:02.123456Z action=ACCEPT project_id=... log_resource_ids=['<log id>'] vm_port=<port id>
    direction=ingress ethertype=IPv4 protocol=tcp src=10.0.0.5 sport=40100 dst=10.0.0.7 dport=22

(one line). The reader runs only while some log covers a port of the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from neutrino.agent.roles.firewall.compile import LOG_GROUP, LOG_PREFIX, Compiled, logs_of
from neutrino.contract.firewall import FirewallPort, FirewallState
from neutrino.dataplane.nflog import NflogPacket, NflogReader

log = logging.getLogger(__name__)

_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "icmpv6", 132: "sctp", 136: "udplite"}
_PORTED = (6, 17, 33, 132, 136)
_IPV4, _IPV6 = 0x0800, 0x86DD


def describe(payload: bytes, hw_protocol: int) -> str:
    """The packet's addresses, protocol and ports (or ICMP type and code) as ``key=value`` fields."""
    version = payload[0] >> 4 if payload else 0
    if hw_protocol == _IPV4 or (not hw_protocol and version == 4):
        if len(payload) < 20:
            return "ethertype=IPv4"
        header = (payload[0] & 0x0F) * 4
        proto, src, dst = payload[9], ipaddress.IPv4Address(payload[12:16]), ipaddress.IPv4Address(payload[16:20])
        family = "IPv4"
    elif hw_protocol == _IPV6 or (not hw_protocol and version == 6):
        if len(payload) < 40:
            return "ethertype=IPv6"
        header = 40
        proto, src, dst = payload[6], ipaddress.IPv6Address(payload[8:24]), ipaddress.IPv6Address(payload[24:40])
        family = "IPv6"
    else:
        return f"ethertype={hw_protocol:#06x}"
    fields = [f"ethertype={family}", f"protocol={_PROTOCOLS.get(proto, proto)}", f"src={src}"]
    l4 = payload[header:header + 4]
    if proto in _PORTED and len(l4) == 4:
        sport, dport = struct.unpack("!HH", l4)
        fields += [f"sport={sport}", f"dst={dst}", f"dport={dport}"]
    elif proto in (1, 58) and len(l4) >= 2:
        fields += [f"dst={dst}", f"icmp_type={l4[0]}", f"icmp_code={l4[1]}"]
    else:
        fields.append(f"dst={dst}")
    return " ".join(fields)


class PacketLog:
    """Reads the firewall's NFLOG group in the host namespace and appends a line per packet."""

    def __init__(self, path: Path | None, netns_path: Path | None,
                 reader_factory: Callable[[int, Path | None], NflogReader] = NflogReader) -> None:
        self.path = path
        self.netns_path = netns_path
        self._reader_factory = reader_factory
        self._task: asyncio.Task[None] | None = None
        self._reader: NflogReader | None = None
        self._ports: dict[int, FirewallPort] = {}  # mark -> port
        self._state: FirewallState | None = None
        self.lines = 0
        self.unmatched = 0  # packets whose mark or prefix named nothing the state knows (a change in flight)
        self.error: str | None = None

    def update(self, state: FirewallState, compiled: Compiled) -> None:
        """The state the lines are written from; starts the reader when a log covers a port of the
        host (again, at the next compile, if it could not open or read), stops it when none does."""
        logging = any(log.port_ids for log in state.logs)
        wanted = logging and self.path is not None
        self._state = state
        if logging:  # a host without logs pays nothing for them
            by_device = {p.device: p for p in state.ports}
            self._ports = {mark: by_device[d] for d, mark in compiled.ids.marks.items() if d in by_device}
        if wanted and (self._task is None or self._task.done()):  # a reader that failed is tried again
            self._task = asyncio.create_task(self._run(), name="firewall-packet-log")
        elif not wanted and self._task is not None:
            self._stop_task()

    def _stop_task(self) -> None:
        task, self._task = self._task, None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        task = self._task
        self._stop_task()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        assert self.path is not None
        reader = self._reader_factory(LOG_GROUP, self.netns_path)
        try:
            reader.open()
        except OSError as exc:
            self.error = f"cannot read NFLOG group {LOG_GROUP}: {exc}"
            log.error("firewall: %s; security group logging writes nothing", self.error)
            return
        self._reader, self.error = reader, None
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(fd, "a", buffering=1) as out:
            try:
                async for packet in reader.packets():
                    self._write(out, packet)
            except OSError as exc:
                if self._reader is reader:  # not closed by a stop
                    self.error = f"NFLOG read failed: {exc}"
                    log.error("firewall: %s", self.error)
            finally:
                reader.close()

    def _write(self, out: IO[str], packet: NflogPacket) -> None:
        line = self.line(packet)
        if line is None:
            self.unmatched += 1
            return
        out.write(line + "\n")
        self.lines += 1

    def line(self, packet: NflogPacket, now: datetime | None = None) -> str | None:
        """The log line of one packet; None when its port or prefix names nothing logged now."""
        words = packet.prefix.split()
        state, port = self._state, self._ports.get(packet.mark)
        if len(words) < 3 or words[0] != LOG_PREFIX or state is None or port is None:
            return None
        action, direction = words[1], words[2]
        logs = logs_of(state.logs, port.port_id, action, words[3] if len(words) > 3 else None)
        if not logs:
            return None
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ids = [entry.log_id for entry in logs]
        return (f"{stamp} action={action} project_id={logs[0].project_id} log_resource_ids={ids!r} "
                f"vm_port={port.port_id} direction={direction} {describe(packet.payload, packet.hw_protocol)}")

    def summary(self) -> Mapping[str, object]:
        return {"log_file": str(self.path) if self.path else None, "log_lines": self.lines,
                "log_unmatched": self.unmatched, **({"log_error": self.error} if self.error else {})}


__all__ = ["PacketLog", "describe"]
