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
    service_plugins: list[str] = field(default_factory=lambda: [
        "router", "security_group", "qos", "auto_allocate", "flavors", "metering", "log", "local_ip", "ndp_proxy"])
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
    # L3 HA (Neutron's options of the same names): new routers are HA unless the (admin) request
    # says otherwise; an HA router goes to at most this many L3 agents (each on its own host); the
    # per-project HA networks take their subnet from this CIDR; keepalived advertises every this
    # many seconds (an L3 agent option in Neutron: here the server sends it, so every instance of
    # one router agrees on it).
    l3_ha: bool = False
    max_l3_agents_per_router: int = 3
    l3_ha_net_cidr: str = "169.254.192.0/18"
    ha_vrrp_advert_int: int = 2
    log_level: str = "INFO"
    # Request bodies over this many bytes are refused with 413 before they are read, on every
    # endpoint (Neutron's and Keystone's max_request_body_size default: 112 KiB).
    max_request_body_size: int = 114688
    # Where /metrics is served: "" = on the API listener, "off" = nowhere, "HOST:PORT" = on a
    # listener of its own (and not on the API one).
    metrics_listen: str = ""
    # Processes of ``neutrino server`` (Neutron's options): API workers share the listening socket,
    # RPC workers answer agents apart from the API. -1: the number of CPUs (API) and 1 (RPC) when
    # the deployment can run workers (a shared database and a real bus), else one process doing
    # everything; ``neutrino up`` runs one process unless set. rpc_workers = 0: API workers answer agents.
    api_workers: int = -1
    rpc_workers: int = -1
    # Background jobs (agent failover) run in one process across every server host: the holder of
    # this database lease, renewed every third of it and taken over once it has run out.
    background_lease_seconds: float = 30.0
    # Full syncs per second the server plans to serve after its own restart or the broker's: agents
    # spread their recovery syncs over (registered agents / this) seconds, 1 s to one report interval.
    agent_resync_rate: float = 50.0


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
    # "dns": list dns-integration, dns-domain-ports and subnet-dns-publish-fixed-ip (dns_* attributes).
    extension_drivers: list[str] = field(default_factory=list)
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
    # "device:egress:ingress" (kbit/s; either may be empty): uplink capacities, as Neutron's agents
    # state them; the qos role's minimum bandwidth guarantees are shared out of the egress one.
    resource_provider_bandwidths: list[str] = field(default_factory=list)
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
    # Run the metering role (per-label traffic counters on the routers) next to l3.
    metering_agent: bool = True


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
class MeteringSettings:
    """The metering agent role (Neutron's ``[DEFAULT] measure_interval``, ``report_interval``,
    ``granular_traffic_data`` of metering_agent.ini)."""

    # Seconds between two reads of the routers' counters.
    measure_interval_seconds: float = 30.0
    # Seconds between two metering reports on the bus.
    report_interval_seconds: float = 300.0
    # Report per label, router, project, label and project, router and label (Neutron's granular
    # traffic data) instead of one report per label.
    granular_traffic_data: bool = False


@dataclass(slots=True)
class NetworkLogSettings:
    """Security group logging in the firewall role (Neutron's ``[network_log]`` agent options)."""

    # Logged packets per second, all of a host's ports together, and the burst above it (Neutron's
    # defaults and minimums: 100 and 25).
    rate_limit: int = 100
    burst_limit: int = 25
    # The file the firewall role appends its log lines to; "" = <state_dir>/firewall/<host>/network-log.log.
    local_output_log_base: str = ""


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
    metering: MeteringSettings = field(default_factory=MeteringSettings)
    network_log: NetworkLogSettings = field(default_factory=NetworkLogSettings)

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
    """The configuration is unreadable, names an unknown key, or gives a key a bad value.

    The message names the key, what it expects and what was given; it is shown as one line.
    """


def _bad(section: str, key: str, expected: str, given: Any) -> ConfigError:
    return ConfigError(f"[{section}] {key}: expected {expected}, given {given!r}")


def _apply(section_obj: Any, values: dict[str, Any], section: str) -> None:
    names = {f.name: f for f in dataclasses.fields(section_obj)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"unknown configuration key [{section}] {key}")
        default = getattr(section_obj, key)
        setattr(section_obj, key, _converted(section, key, default, value))


def _converted(section: str, key: str, default: Any, value: Any) -> Any:
    """``value`` (from TOML, or a string from the environment) as the type of ``default``."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise _bad(section, key, "a boolean (true or false)", value)
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise _bad(section, key, "an integer", value) from None
    if isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value).strip())
        except ValueError:
            raise _bad(section, key, "a number", value) from None
    if isinstance(default, list):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                # An environment variable may hold a list the way TOML (or JSON) writes one.
                try:
                    value = tomllib.loads(f"v = {text}")["v"]
                except tomllib.TOMLDecodeError:
                    raise _bad(section, key, 'a list of strings (["a", "b"] or a,b)', text) from None
            else:
                return [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(section, key, "a list of strings", value)
        return [v.strip() for v in value]
    if isinstance(default, str):
        if not isinstance(value, str):
            raise _bad(section, key, "a string", value)
        return value
    return value


def _range_pair(section: str, key: str, spec: str, low: int, high: int, text: str,
                given: str | None = None) -> tuple[int, int]:
    lo_text, _, hi_text = spec.partition(":")
    try:
        lo, hi = int(lo_text), int(hi_text or lo_text)
    except ValueError:
        raise _bad(section, key, text, given or spec) from None
    if not low <= lo <= hi <= high:
        raise _bad(section, key, text, given or spec)
    return lo, hi


def check_settings(settings: Settings) -> None:
    """Refuse values of the right type but the wrong form, naming the key (no traceback later)."""
    server, ml2, agent = settings.server, settings.ml2, settings.agent
    if not 1 <= server.port <= 65535:
        raise _bad("server", "port", "a TCP port 1-65535", server.port)
    if server.max_request_body_size < 1:
        raise _bad("server", "max_request_body_size", "a positive number of bytes", server.max_request_body_size)
    if server.metrics_listen not in ("", "off"):
        host, sep, port = server.metrics_listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise _bad("server", "metrics_listen", '"", "off" or "HOST:PORT"', server.metrics_listen)
    if server.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise _bad("server", "log_level", "DEBUG, INFO, WARNING, ERROR or CRITICAL", server.log_level)
    for key in ("measure_interval_seconds", "report_interval_seconds"):
        if getattr(settings.metering, key) <= 0:
            raise _bad("metering", key, "a positive number of seconds", getattr(settings.metering, key))
    if settings.identity.strategy not in ("embedded", "keystone", "noauth"):
        raise _bad("identity", "strategy", "embedded, keystone or noauth", settings.identity.strategy)
    vlan_form = '"physnet" or "physnet:min:max" with 1 <= min <= max <= 4094'
    for spec in ml2.network_vlan_ranges:
        physnet, sep, rest = spec.partition(":")
        if not physnet or (sep and not rest):
            raise _bad("ml2", "network_vlan_ranges", vlan_form, spec)
        if sep:
            if rest.count(":") != 1:
                raise _bad("ml2", "network_vlan_ranges", vlan_form, spec)
            _range_pair("ml2", "network_vlan_ranges", rest, 1, 4094, vlan_form, spec)
    for spec in ml2.vni_ranges:
        _range_pair("ml2", "vni_ranges", spec, 1, 2 ** 24 - 1, '"min:max" with 1 <= min <= max <= 16777215')
    if ml2.physical_mtu < 68:
        raise _bad("ml2", "physical_mtu", "an MTU of at least 68", ml2.physical_mtu)
    octets = ml2.base_mac.split(":")
    if len(octets) != 6 or not all(len(o) == 2 and all(c in "0123456789abcdefABCDEF" for c in o) for o in octets):
        raise _bad("ml2", "base_mac", 'a MAC address such as "fa:16:3e:00:00:00"', ml2.base_mac)
    if settings.network_log.rate_limit < 100:
        raise _bad("network_log", "rate_limit", "at least 100 packets per second (as Neutron)",
                   settings.network_log.rate_limit)
    if settings.network_log.burst_limit < 25:
        raise _bad("network_log", "burst_limit", "at least 25 packets (as Neutron)", settings.network_log.burst_limit)
    for pair in agent.bridge_mappings:
        physnet, sep, device = pair.partition(":")
        if not sep or not physnet.strip() or not device.strip():
            raise _bad("agent", "bridge_mappings", '"physnet:device" pairs', pair)
    bandwidth_form = '"device:egress:ingress" with positive kbit/s counts (either may be empty)'
    for spec in agent.resource_provider_bandwidths:
        parts = spec.split(":")
        if len(parts) != 3 or not parts[0].strip() \
                or any(p.strip() and (not p.strip().isdigit() or int(p) <= 0) for p in parts[1:]):
            raise _bad("agent", "resource_provider_bandwidths", bandwidth_form, spec)


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
    check_settings(settings)
    return settings
