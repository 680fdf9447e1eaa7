"""From ``sync_state("metadata")`` to what each namespace needs: a proxy, its address map, a redirect.

Pure. In a ``qdhcp-`` namespace the proxy listens on port 80 (the DHCP port carries 169.254.169.254
on networks without a router); in a ``qrouter-`` namespace on 9697, with an nftables redirect of
169.254.169.254:80 to it, as Neutron's L3 agent does, and (IPv6, not in HA routers, whose namespace
has IPv6 off) of [fe80::a9fe:a9fe]:80 arriving on ``qr-`` devices, the redirect Neutron's L3 agent
adds. Neutron's agent adds no address for it, so nothing would answer an instance's neighbour
solicitation for fe80::a9fe:a9fe; here each ``qr-`` device carries it (link scope: the l3 role,
which manages global addresses only, leaves it alone), as the DHCP port does in ``qdhcp-``.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.roles.metadata.config import MetadataConfig
from neutrino.contract.metadata import MetadataState
from neutrino.contract.names import dhcp_namespace, router_interface_name, router_namespace
from neutrino.dataplane.metadata_proxy import map_content

DHCP_PORT = 80
ROUTER_PORT = 9697
REDIRECT_FAMILY = "ip"
REDIRECT_TABLE = "neutrino-metadata"
REDIRECT_BODY = f"""  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 169.254.169.254 tcp dport 80 redirect to :{ROUTER_PORT}
  }}"""


REDIRECT6_FAMILY = "ip6"
REDIRECT6_BODY = f"""  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "qr-*" ip6 daddr fe80::a9fe:a9fe tcp dport 80 redirect to :{ROUTER_PORT}
  }}"""


@dataclass(frozen=True, slots=True)
class ProxyWish:
    netns: str
    port: int
    map: str
    redirect: str | None  # the nftables body in a router namespace
    redirect6: str | None = None  # the IPv6 one (a router that is not HA)
    v6_devices: tuple[str, ...] = ()  # qr- devices that carry fe80::a9fe:a9fe


def wishes(state: MetadataState, config: MetadataConfig) -> dict[str, ProxyWish]:
    out = {}
    for network in state.networks:
        ns = dhcp_namespace(network.network_id, prefix=config.namespace_prefix)
        out[ns] = ProxyWish(ns, DHCP_PORT, map_content(network.instances), None)
    for router in state.routers:
        ns = router_namespace(router.router_id, prefix=config.namespace_prefix)
        v6 = not router.ha
        out[ns] = ProxyWish(ns, ROUTER_PORT, map_content(router.instances), REDIRECT_BODY,
                            REDIRECT6_BODY if v6 else None,
                            tuple(router_interface_name(p) for p in router.interfaces) if v6 else ())
    return out
