"""The server: composition root, service plugins, and the agents' side of the bus (RPC handlers,
change events published after commit, the one table of desired state by role).

``build_server`` builds the whole API server from settings (``composition.py``).
"""

from neutrino.server.composition import Server, build_server

__all__ = ["Server", "build_server"]
