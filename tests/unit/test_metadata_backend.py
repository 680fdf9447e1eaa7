"""The metadata backend and the proxy's header rules, over real HTTP requests to the ASGI app.

The backend must never answer with another instance's data: a request without the proxy's identity
headers is 400, one whose signature does not verify 403, one for an unknown instance or another
project 404. The proxy drops whatever identity headers the caller sent and sets its own.
"""

from __future__ import annotations

import httpx

from neutrino.compute.metadata import InstanceFacts, MetadataBackend, sign
from neutrino.dataplane.metadata_proxy import forwarded_headers

SECRET = "s3cret"
VM = InstanceFacts("vm-1", "web", "project-a", public_keys={"key": "ssh-ed25519 AAAA test"}, user_data=b"#!/bin/sh\n",
                   mac_address="fa:16:3e:00:00:01", mtu=1450, port_id="port-1",
                   fixed_ips=(("10.0.0.5", "10.0.0.0/24", "10.0.0.1"),), floating_ip="172.24.4.9")


async def _lookup(instance_id: str) -> InstanceFacts | None:
    return VM if instance_id == VM.instance_id else None


def _client() -> httpx.AsyncClient:
    backend = MetadataBackend(_lookup, lambda: SECRET)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=backend.app), base_url="http://metadata")


def _signed(instance_id: str, project: str = "project-a") -> dict[str, str]:
    return {"X-Instance-ID": instance_id, "X-Tenant-ID": project, "X-Forwarded-For": "10.0.0.5",
            "X-Instance-ID-Signature": sign(SECRET, instance_id)}


async def test_signed_requests_get_the_instance_in_both_formats() -> None:
    async with _client() as client:
        meta = (await client.get("/openstack/latest/meta_data.json", headers=_signed("vm-1"))).json()
        assert meta["uuid"] == "vm-1" and meta["public_keys"] == {"key": "ssh-ed25519 AAAA test"}
        ec2 = await client.get("/latest/meta-data/public-ipv4", headers=_signed("vm-1"))
        assert ec2.text == "172.24.4.9"
        assert (await client.get("/2009-04-04/meta-data/local-ipv4", headers=_signed("vm-1"))).text == "10.0.0.5"
        assert (await client.get("/latest/user-data", headers=_signed("vm-1"))).content == b"#!/bin/sh\n"


async def test_unsigned_forged_unknown_and_foreign_requests_get_nothing() -> None:
    async with _client() as client:
        assert (await client.get("/latest/meta-data/instance-id")).status_code == 400
        forged = {**_signed("vm-1"), "X-Instance-ID-Signature": sign("guess", "vm-1")}
        assert (await client.get("/latest/meta-data/instance-id", headers=forged)).status_code == 403
        assert (await client.get("/latest/meta-data/instance-id", headers=_signed("vm-2"))).status_code == 404
        assert (await client.get("/latest/meta-data/instance-id", headers=_signed("vm-1", "b"))).status_code == 404


def test_the_proxy_replaces_identity_headers_the_caller_sent() -> None:
    sent = [("Host", "169.254.169.254"), ("X-Instance-ID", "vm-2"), ("x-tenant-id", "b"),
            ("X-Forwarded-For", "10.0.0.9"), ("X-Instance-ID-Signature", "00"), ("Accept", "*/*")]
    out = forwarded_headers(sent, "10.0.0.5", {"device_id": "vm-1", "project_id": "project-a"}, SECRET)
    assert out == [("Accept", "*/*"), ("X-Forwarded-For", "10.0.0.5"), ("X-Instance-ID", "vm-1"),
                   ("X-Tenant-ID", "project-a"), ("X-Instance-ID-Signature", sign(SECRET, "vm-1"))]
