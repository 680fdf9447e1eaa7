"""Where the agents' calls go on the bus (docs/agent-contract.md §4)."""

from __future__ import annotations

# The bus target the server serves the agent RPC methods on.
SERVER_TARGET = "server"

# A server process that answers agents announces its start here, on the one all-hosts topic (news
# every agent needs): agents that had known another start resync at once, spread over the window.
SERVER_STARTED_TOPIC = "event.server.all"


def server_news(epoch: str, resync_window: float) -> dict[str, object]:
    """What the start announcement and every ``report_state`` reply carry (additive keys).

    ``server_epoch`` names one start of a server host (its workers share it), so a heartbeat that
    merely timed out is told apart from a restart; ``resync_window`` is how many seconds the agents
    of this fleet should spread their recovery full syncs over.
    """
    return {"server_epoch": epoch, "resync_window": resync_window}


def read_server_news(payload: object) -> tuple[str | None, float | None]:
    """(epoch, window) from an announcement or a heartbeat reply; (None, None) from an older server."""
    if not isinstance(payload, dict):
        return None, None
    epoch, window = payload.get("server_epoch"), payload.get("resync_window")
    return (epoch if isinstance(epoch, str) and epoch else None,
            float(window) if isinstance(window, int | float) and not isinstance(window, bool) and window > 0
            else None)
