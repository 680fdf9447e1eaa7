"""Where the agents' calls go on the bus (docs/agent-contract.md §4)."""

from __future__ import annotations

# The bus target the server serves the agent RPC methods on.
SERVER_TARGET = "server"
