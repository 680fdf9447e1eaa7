"""Neutrino's metadata backend for its own instances: what Nova's metadata API serves a cloud image.

The metadata proxy in a ``qdhcp-``/``qrouter-`` namespace forwards each instance request here with
``X-Instance-ID``, ``X-Tenant-ID``, ``X-Forwarded-For`` and ``X-Instance-ID-Signature`` (HMAC-SHA256
of the instance id with the shared secret), exactly as Neutron's metadata agent talks to Nova; a
request without them is 400, with a signature that does not verify 403, for an instance this
backend does not know (or of another project) 404. Never another instance's data: the answer is
chosen by the signed instance id alone.

Formats, as cloud-init reads them: OpenStack (``/openstack/latest/meta_data.json``,
``network_data.json``, ``user_data``, ``vendor_data.json``, ``vendor_data2.json``) and EC2
(``/latest/meta-data/`` tree, ``/latest/user-data``); any dated version serves the same as latest.
What an instance is comes from :class:`InstanceFacts`, which the composition root builds from the
instance records (``neutrino instance create``) and the API's view of its port.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from neutrino.contract.metadata import sign

SIGNATURE_HEADER = "X-Instance-ID-Signature"
INSTANCE_HEADER = "X-Instance-ID"
TENANT_HEADER = "X-Tenant-ID"
FORWARDED_HEADER = "X-Forwarded-For"


@dataclass(frozen=True, slots=True)
class InstanceFacts:
    instance_id: str
    name: str
    project_id: str
    availability_zone: str = "nova"
    public_keys: Mapping[str, str] = field(default_factory=dict)  # key name -> OpenSSH public key
    user_data: bytes | None = None
    mac_address: str = ""
    mtu: int | None = None
    port_id: str = ""
    fixed_ips: tuple[tuple[str, str, str], ...] = ()  # (ip, cidr, gateway or "")
    floating_ip: str | None = None
    dns_nameservers: tuple[str, ...] = ()


Lookup = Callable[[str], Awaitable[InstanceFacts | None]]


def meta_data_json(facts: InstanceFacts) -> dict[str, Any]:
    keys = [{"name": name, "type": "ssh", "data": key} for name, key in facts.public_keys.items()]
    return {"uuid": facts.instance_id, "name": facts.name, "hostname": facts.name,
            "project_id": facts.project_id, "availability_zone": facts.availability_zone,
            "launch_index": 0, "public_keys": dict(facts.public_keys), "keys": keys, "meta": {},
            "devices": []}


def network_data_json(facts: InstanceFacts) -> dict[str, Any]:
    link = f"tap{facts.port_id[:11]}"
    networks = []
    for index, (ip, cidr, gateway) in enumerate(facts.fixed_ips):
        version = 6 if ":" in ip else 4
        networks.append({"id": f"network{index}", "link": link, "type": f"ipv{version}_dhcp" if version == 4
                         else "ipv6_dhcpv6-stateful", "network_id": facts.port_id, "ip_address": ip,
                         "netmask": cidr.rsplit("/", 1)[1] if "/" in cidr else "",
                         "routes": ([{"network": "0.0.0.0" if version == 4 else "::", "netmask": "0",
                                      "gateway": gateway}] if gateway else [])})
    return {"links": [{"id": link, "vif_id": facts.port_id, "type": "bridge", "ethernet_mac_address":
                       facts.mac_address, "mtu": facts.mtu}],
            "networks": networks,
            "services": [{"type": "dns", "address": a} for a in facts.dns_nameservers]}


def ec2_tree(facts: InstanceFacts) -> dict[str, Any]:
    """The ``/latest/meta-data/`` tree: a dict is a directory, a str a leaf."""
    tree: dict[str, Any] = {
        "instance-id": facts.instance_id, "hostname": facts.name, "local-hostname": facts.name,
        "public-hostname": facts.name, "ami-id": "ami-00000001", "instance-type": "m1.small",
        "placement": {"availability-zone": facts.availability_zone},
        "local-ipv4": next((ip for ip, _, _ in facts.fixed_ips if ":" not in ip), ""),
        "public-ipv4": facts.floating_ip or "", "mac": facts.mac_address,
    }
    if facts.public_keys:
        tree["public-keys"] = {f"{i}={name}": {"openssh-key": key}
                               for i, (name, key) in enumerate(facts.public_keys.items())}
    return tree


def _walk(tree: Mapping[str, Any], parts: list[str]) -> Any:
    node: Any = tree
    for part in parts:
        if not isinstance(node, Mapping):
            return None
        if part in node:
            node = node[part]
            continue
        # EC2 lists public keys as "0=name" and serves them under "0/".
        matched = next((v for k, v in node.items() if k.split("=", 1)[0] == part), None)
        if matched is None:
            return None
        node = matched
    return node


def _listing(node: Mapping[str, Any]) -> str:
    return "\n".join(f"{k}/" if isinstance(v, Mapping) and "=" not in k else k for k, v in node.items())


class MetadataBackend:
    """The ASGI app; ``lookup`` finds an instance by id, ``secret`` verifies the proxy's signature."""

    def __init__(self, lookup: Lookup, secret: Callable[[], str]) -> None:
        self.lookup = lookup
        self.secret = secret
        self.app = Starlette(routes=[Route("/{path:path}", self.serve, methods=["GET", "HEAD"])])

    async def _instance(self, request: Request) -> InstanceFacts | Response:
        instance_id = request.headers.get(INSTANCE_HEADER)
        tenant = request.headers.get(TENANT_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not instance_id or not signature or not tenant:
            return PlainTextResponse("X-Instance-ID, X-Tenant-ID and X-Instance-ID-Signature are required", 400)
        if not hmac.compare_digest(sign(self.secret(), instance_id), signature):
            return PlainTextResponse("Invalid proxy request signature.", 403)
        facts = await self.lookup(instance_id)
        if facts is None or facts.project_id != tenant:
            return PlainTextResponse("Not Found", 404)
        return facts

    async def serve(self, request: Request) -> Response:
        found = await self._instance(request)
        if isinstance(found, Response):
            return found
        facts = found
        parts = [p for p in request.url.path.split("/") if p]
        if not parts:
            return PlainTextResponse("latest\nopenstack")
        if parts[0] == "openstack":
            return self._openstack(facts, parts[2:] if len(parts) > 1 else [], listing=len(parts) < 2)
        return self._ec2(facts, parts[1:])

    def _openstack(self, facts: InstanceFacts, parts: list[str], *, listing: bool) -> Response:
        if listing:
            return PlainTextResponse("latest")
        name = parts[0] if parts else ""
        if not name:
            files = ["meta_data.json", "network_data.json", "vendor_data.json", "vendor_data2.json"]
            return PlainTextResponse("\n".join(files + (["user_data"] if facts.user_data is not None else [])))
        if name == "meta_data.json":
            return JSONResponse(meta_data_json(facts))
        if name == "network_data.json":
            return JSONResponse(network_data_json(facts))
        if name in ("vendor_data.json", "vendor_data2.json"):
            return JSONResponse({})
        if name == "user_data" and facts.user_data is not None:
            return Response(facts.user_data, media_type="application/octet-stream")
        return PlainTextResponse("Not Found", 404)

    def _ec2(self, facts: InstanceFacts, parts: list[str]) -> Response:
        if not parts:
            return PlainTextResponse("meta-data/\n" + ("user-data" if facts.user_data is not None else ""))
        if parts[0] == "user-data":
            if facts.user_data is None:
                return PlainTextResponse("Not Found", 404)
            return Response(facts.user_data, media_type="application/octet-stream")
        if parts[0] != "meta-data":
            return PlainTextResponse("Not Found", 404)
        node = _walk(ec2_tree(facts), parts[1:])
        if node is None:
            return PlainTextResponse("Not Found", 404)
        if isinstance(node, Mapping):
            return PlainTextResponse(_listing(node))
        return PlainTextResponse(str(node))


__all__ = ["InstanceFacts", "MetadataBackend", "sign", "meta_data_json", "network_data_json", "ec2_tree"]
