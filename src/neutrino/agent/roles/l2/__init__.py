"""The Linux bridge (l2) role: decide in ``plan`` (pure, over ``actions``), read the kernel in
``kernel_view``, act in ``apply``, report port status through ``reporter``/``reporting``;
``role.LinuxBridgeRole`` composes them into the role the agent process runs."""

from neutrino.agent.roles.l2.config import LinuxBridgeConfig
from neutrino.agent.roles.l2.role import LinuxBridgeRole, ReconcileReport

__all__ = ["LinuxBridgeConfig", "LinuxBridgeRole", "ReconcileReport"]
