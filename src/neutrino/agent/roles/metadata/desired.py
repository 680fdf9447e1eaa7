"""From ``sync_state("metadata")`` to what each namespace needs: a proxy, its address map, a redirect.

Pure. In a ``qdhcp-`` namespace the proxy listens on port 80 (the DHCP port carries 169.254.169.254
on networks without a router); in a ``qrouter-`` namespace on 9697, with an nftables redirect of
169.254.169.254:80 to it, as Neutron's L3 agent does.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.roles.metadata.config import MetadataConfig
from neutrino.contract.metadata import MetadataState
from neutrino.contract.names import dhcp_namespace, router_namespace
from neutrino.dataplane.metadata_proxy import map_content

DHCP_PORT = 80
ROUTER_PORT = 9697
REDIRECT_FAMILY = "ip"
REDIRECT_TABLE = "neutrino-metadata"
REDIRECT_BODY = f"""  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 169.254.169.254 tcp dport 80 redirect to :{ROUTER_PORT}
  }}"""


@dataclass(frozen=True, slots=True)
class ProxyWish:
    netns: str
    port: int
    map: str
    redirect: str | None  # the nftables body in a router namespace


def wishes(state: MetadataState, config: MetadataConfig) -> dict[str, ProxyWish]:
    out = {}
    for network in state.networks:
        ns = dhcp_namespace(network.network_id, prefix=config.namespace_prefix)
        out[ns] = ProxyWish(ns, DHCP_PORT, map_content(network.instances), None)
    for router in state.routers:
        ns = router_namespace(router.router_id, prefix=config.namespace_prefix)
        out[ns] = ProxyWish(ns, ROUTER_PORT, map_content(router.instances), REDIRECT_BODY)
    return out
