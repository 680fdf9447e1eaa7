"""The metering role: per-label traffic counters on the routers' gateways, reported on the bus."""
