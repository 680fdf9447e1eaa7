"""The Linux bridge (l2) role's parts: decide in ``plan``, read the kernel in ``kernel_view``, act in ``apply``.

``neutrino.agent.roles.l2.LinuxBridgeRole`` composes them into the role the agent process runs.
"""
