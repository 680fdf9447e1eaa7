"""One configuration format for every command: a TOML file, defaults for everything, env overrides.

Every key is documented in docs/configuration.md. Secrets (database URL, bus URL, passwords) may
instead come from environment variables ``NEUTRINO_<SECTION>_<KEY>`` so they need not sit in files.
The state directory is found the same way by every command: ``--state-dir``, else
``$NEUTRINO_STATE_DIR``, else the user's data directory (``~/.local/share/neutrino`` for a user,
``/root/.local/share/neutrino`` for root).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs


def default_state_dir() -> Path:
    env = os.environ.get("NEUTRINO_STATE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("neutrino", appauthor=False))


@dataclass(slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 9696
    # Public base URL put in the catalog and links; derived from host/port when empty.
    public_url: str = ""
    state_dir: str = ""
    # Service plugins to load by entry-point name (group ``neutrino.service_plugins``).
    service_plugins: list[str] = field(default_factory=lambda: ["router", "security_group", "qos", "auto_allocate"])
    pagination_max_limit: int = -1
    # Bounds on a request's head, enforced as its bytes arrive (api/transport.py): a longer URL is
    # answered 414, a larger request line plus headers 431.
    max_url_length: int = 8192
    max_header_size: int = 65536
    policy_file: str = ""
    # Move networks (routers) off DHCP (L3) agents that have not reported for twice
    # [agent] agent_down_time_seconds, checking every half of it (Neutron's options and defaults).
    allow_automatic_dhcp_failover: bool = True
    allow_automatic_l3agent_failover: bool = False
    log_level: str = "INFO"


@dataclass(slots=True)
class DatabaseSettings:
    # sqlite+aiosqlite:///PATH, postgresql+asyncpg://..., mysql+asyncmy://...
    url: str = ""
    pool_size: int = 10
    echo: bool = False


@dataclass(slots=True)
class IdentitySettings:
    # embedded | keystone | noauth
    strategy: str = "embedded"
    token_ttl_seconds: int = 3600
    region: str = "RegionOne"
    # keystone strategy: where to validate tokens, and the service's own credentials.
    keystone_url: str = ""
    keystone_username: str = ""
    keystone_password: str = ""
    keystone_project: str = "service"
    keystone_cache_seconds: int = 300


@dataclass(slots=True)
class MechanismSettings:
    # Type drivers enabled, and the one used for project networks without provider attributes.
    type_drivers: list[str] = field(default_factory=lambda: ["flat", "vlan", "vxlan", "local"])
    tenant_network_types: list[str] = field(default_factory=lambda: ["vxlan"])
    mechanism_drivers: list[str] = field(default_factory=lambda: ["linuxbridge"])
    # "physnet" or "physnet:min:max" for vlan; flat_networks lists physnets ("*" = any).
    flat_networks: list[str] = field(default_factory=lambda: ["*"])
    network_vlan_ranges: list[str] = field(default_factory=lambda: ["physnet1:1000:2999"])
    vni_ranges: list[str] = field(default_factory=lambda: ["1:65535"])
    physical_mtu: int = 1500
    base_mac: str = "fa:16:3e:00:00:00"
    dns_domain: str = "openstacklocal."
    max_dns_nameservers: int = 5
    max_subnet_host_routes: int = 20
    max_allowed_address_pair: int = 10
    dhcp_agents_per_network: int = 1


@dataclass(slots=True)
class QuotaSettings:
    network: int = 100
    subnet: int = 100
    port: int = 500
    subnetpool: int = -1
    rbac_policy: int = 10
    router: int = 10
    floatingip: int = 50
    security_group: int = 10
    security_group_rule: int = 100


@dataclass(slots=True)
class BusSettings:
    # memory:// (in-process) or amqp://user:pass@host:5672/vhost
    url: str = "memory://"
    rpc_timeout_seconds: float = 30.0


@dataclass(slots=True)
class AgentSettings:
    host: str = ""
    roles: list[str] = field(default_factory=lambda: ["l2"])
    report_interval_seconds: float = 30.0
    agent_down_time_seconds: float = 75.0
    resync_interval_seconds: float = 60.0
    # "physnet:interface" pairs.
    bridge_mappings: list[str] = field(default_factory=list)
    tunnel_ip: str = ""
    # Lets several simulated hosts share one kernel without name clashes (qdhcp- namespaces).
    namespace_prefix: str = ""
    # Upstream resolvers of the DHCP agent's dnsmasq; empty: the host's /etc/resolv.conf.
    dnsmasq_dns_servers: list[str] = field(default_factory=list)
    # Network namespace that plays this host's root namespace ("" = the real one; fullstack tests).
    netns: str = ""
    availability_zone: str = "nova"


@dataclass(slots=True)
class AllInOneSettings:
    """``neutrino up`` only: the demo external network DevStack creates (docs/configuration.md)."""

    public_network: bool = True
    public_physical_network: str = "public"
    public_bridge: str = "br-ex"
    floating_range: str = "172.24.4.0/24"
    public_network_gateway: str = "172.24.4.1"
    # Masquerade traffic from floating_range leaving through another interface; opt-in only.
    public_nat: bool = False
    # Run the l3 role (routers) next to l2, as DevStack's all-in-one network node does.
    l3_agent: bool = True
    # Run the firewall role (security groups, anti-spoofing) next to l2. One per network namespace:
    # its bridge table drops every tap it was not told about.
    firewall_agent: bool = True
    # Run the qos role (bandwidth limits with tc, DSCP marking) next to l2. One per network namespace
    # too: a full resync removes shaping from taps it was not told about.
    qos_agent: bool = True
    # Run the dhcp role (one dnsmasq per network) next to l2, likewise.
    dhcp_agent: bool = True
    # Run the metadata role (proxies in qdhcp-/qrouter- namespaces) and serve Neutrino's metadata backend.
    metadata_agent: bool = True


@dataclass(slots=True)
class MetadataSettings:
    """Where the metadata agent's proxies forward, and the secret they sign instance ids with."""

    # "" = Neutrino's own backend, served by `neutrino up` on <state_dir>/metadata.sock; or a Nova
    # metadata API, e.g. "http://nova-api:8775".
    nova_metadata_url: str = ""
    # File holding metadata_proxy_shared_secret (mode 0600); "" = <state_dir>/metadata_proxy_shared_secret,
    # which `neutrino up` generates.
    metadata_proxy_shared_secret_file: str = ""


@dataclass(slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    ml2: MechanismSettings = field(default_factory=MechanismSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    all_in_one: AllInOneSettings = field(default_factory=AllInOneSettings)
    metadata: MetadataSettings = field(default_factory=MetadataSettings)

    @property
    def state_path(self) -> Path:
        return Path(self.server.state_dir) if self.server.state_dir else default_state_dir()

    @property
    def metadata_secret_path(self) -> Path:
        return Path(self.metadata.metadata_proxy_shared_secret_file or self.state_path / "metadata_proxy_shared_secret")

    @property
    def metadata_backend(self) -> str:
        return self.metadata.nova_metadata_url or f"unix:{self.state_path / 'metadata.sock'}"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.state_path / 'neutrino.sqlite'}"

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        host = self.server.host if self.server.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.server.port}"


class ConfigError(Exception):
    """The configuration file is unreadable or names an unknown key."""


def _apply(section_obj: Any, values: dict[str, Any], section: str) -> None:
    names = {f.name: f for f in dataclasses.fields(section_obj)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"unknown configuration key [{section}] {key}")
        default = getattr(section_obj, key)
        if isinstance(default, bool):
            value = _as_bool(value)
        elif isinstance(default, int) and not isinstance(value, int):
            value = int(value)
        elif isinstance(default, float):
            value = float(value)
        elif isinstance(default, list) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        setattr(section_obj, key, value)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def load_settings(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None,
                  overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Read a TOML file (optional), then ``NEUTRINO_<SECTION>_<KEY>`` variables, then overrides."""
    settings = Settings()
    environ = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    sections = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"unknown configuration section [{name}]")
        _apply(sections[name], values, name)
    for name, obj in sections.items():
        env_values = {}
        for f in dataclasses.fields(obj):
            var = f"NEUTRINO_{name.upper()}_{f.name.upper()}"
            if var in environ:
                env_values[f.name] = environ[var]
        _apply(obj, env_values, name)
    for name, values in (overrides or {}).items():
        _apply(sections[name], values, name)
    return settings
