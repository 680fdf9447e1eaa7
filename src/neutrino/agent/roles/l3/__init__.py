"""The l3 role (Neutron's L3 agent): ``desired`` (routers by id), ``actions``, ``plan`` (pure),
``nat`` (the NAT table's body), ``config``, and ``role`` (the reconciler target and the role)."""

from neutrino.agent.roles.l3.config import L3Config
from neutrino.agent.roles.l3.role import L3Role

__all__ = ["L3Config", "L3Role"]
