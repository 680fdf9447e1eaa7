"""Packets logged by nftables ``log group N`` (NFLOG), read over netlink inside a network namespace.

The kernel's text logger (``nf_log_syslog``) says nothing for namespaces other than the initial one
unless ``net.netfilter.nf_log_all_netns`` is set, and would mix every host's lines in one kernel
log; NFLOG is per namespace and hands the listener the packet itself with its mark and the rule's
prefix (docs/kernel-probes.md). pyroute2 (already the project's netlink library) opens the socket
inside the namespace and encodes and decodes the messages; the ``nfnetlink_log`` message layout
below is the kernel's (``include/uapi/linux/netfilter/nfnetlink_log.h``), which pyroute2 lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, nla
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_ULOG, nfgen_msg
from pyroute2.netns import create_socket

NETLINK_NETFILTER = 12
_MSG_PACKET, _MSG_CONFIG = 0, 1
_CMD_BIND, _CMD_UNBIND = 1, 2
_COPY_PACKET = 2


class NflogError(OSError):
    pass


class _Config(nfgen_msg):
    prefix = "NFULA_CFG_"
    nla_map = (("NFULA_CFG_UNSPEC", "none"), ("NFULA_CFG_CMD", "cmd"), ("NFULA_CFG_MODE", "mode"),
               ("NFULA_CFG_NLBUFSIZ", "be32"), ("NFULA_CFG_TIMEOUT", "be32"), ("NFULA_CFG_QTHRESH", "be32"),
               ("NFULA_CFG_FLAGS", "be16"))

    class cmd(nla):  # noqa: N801 - pyroute2 names nla classes after their map entries
        fields = (("command", "B"),)

    class mode(nla):  # noqa: N801
        fields = (("copy_range", "!I"), ("copy_mode", "B"), ("pad", "B"))


class _Packet(nfgen_msg):
    prefix = "NFULA_"
    nla_map = (("NFULA_UNSPEC", "none"), ("NFULA_PACKET_HDR", "hdr"), ("NFULA_MARK", "be32"),
               ("NFULA_TIMESTAMP", "timestamp"), ("NFULA_IFINDEX_INDEV", "be32"), ("NFULA_IFINDEX_OUTDEV", "be32"),
               ("NFULA_IFINDEX_PHYSINDEV", "be32"), ("NFULA_IFINDEX_PHYSOUTDEV", "be32"), ("NFULA_HWADDR", "hex"),
               ("NFULA_PAYLOAD", "cdata"), ("NFULA_PREFIX", "asciiz"))

    class hdr(nla):  # noqa: N801
        fields = (("hw_protocol", "!H"), ("hook", "B"), ("pad", "B"))

    class timestamp(nla):  # noqa: N801
        fields = (("sec", "!Q"), ("usec", "!Q"))


@dataclass(frozen=True, slots=True)
class NflogPacket:
    """One logged packet: the rule's prefix, the packet's mark, its network-layer bytes (as much as
    the copy range allows) and the layer-3 protocol (0x0800 IPv4, 0x86dd IPv6)."""

    prefix: str
    mark: int
    payload: bytes
    hw_protocol: int = 0


def parse_messages(data: bytes) -> list[NflogPacket]:
    """The packets in one datagram (the kernel may batch several messages)."""
    out: list[NflogPacket] = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | _MSG_PACKET:
            msg = _Packet(data[offset:offset + length])
            msg.decode()
            header = msg.get_attr("NFULA_PACKET_HDR") or {}
            out.append(NflogPacket(msg.get_attr("NFULA_PREFIX") or "", msg.get_attr("NFULA_MARK") or 0,
                                   bytes(msg.get_attr("NFULA_PAYLOAD") or b""), header.get("hw_protocol", 0)))
        offset += (length + 3) & ~3
    return out


class NflogReader:
    """Listens to one NFLOG group in one namespace (``netns_path`` None: this process's own).

    Only one listener may bind a group per namespace: a second one gets ``EBUSY`` (NflogError)."""

    def __init__(self, group: int, netns_path: Path | None = None, copy_range: int = 128) -> None:
        self.group = group
        self.netns_path = netns_path
        self.copy_range = copy_range
        self._sock: socket.socket | None = None
        self._seq = 0

    def open(self) -> None:
        if self.netns_path is not None:
            sock = create_socket(str(self.netns_path), family=socket.AF_NETLINK, socket_type=socket.SOCK_RAW,
                                 proto=NETLINK_NETFILTER, flags=0)
        else:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, 0))
            self._sock = sock
            self._configure({"NFULA_CFG_CMD": {"command": _CMD_BIND}})
            # Each packet is sent at once (a queue threshold of 1), not batched for up to a second.
            self._configure({"NFULA_CFG_MODE": {"copy_range": self.copy_range, "copy_mode": _COPY_PACKET},
                             "NFULA_CFG_QTHRESH": 1})
        except BaseException:
            self._sock = None
            sock.close()
            raise
        sock.setblocking(False)

    def _configure(self, attrs: dict[str, object]) -> None:
        assert self._sock is not None
        self._seq += 1
        msg = _Config()
        msg["nfgen_family"] = socket.AF_UNSPEC
        msg["res_id"] = self.group  # pyroute2 packs it big-endian
        msg["attrs"] = list(attrs.items())
        msg["header"]["type"] = (NFNL_SUBSYS_ULOG << 8) | _MSG_CONFIG
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
        msg["header"]["sequence_number"] = self._seq
        msg.encode()
        self._sock.send(msg.data)
        reply = self._sock.recv(4096)
        _, kind = struct.unpack_from("=IH", reply)
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", reply, 16)
            if code:
                raise NflogError(-code, f"NFLOG group {self.group}: {list(attrs)} refused")

    async def packets(self) -> AsyncIterator[NflogPacket]:
        """Packets as they are logged, until closed. A full receive buffer loses packets (ENOBUFS),
        which the kernel's rate limit in front of the log rules is there to prevent; reading goes on."""
        sock = self._sock
        if sock is None:
            raise NflogError("NFLOG reader is not open")
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(sock, 65536)
            except OSError as exc:
                if exc.errno == 105:  # ENOBUFS: some were lost; the socket goes on
                    continue
                raise
            for packet in parse_messages(data):
                yield packet

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


__all__ = ["NflogError", "NflogPacket", "NflogReader", "parse_messages"]
