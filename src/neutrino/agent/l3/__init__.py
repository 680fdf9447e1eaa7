"""The l3 role's parts: settings, the pure planner (desired routers vs. the kernel), NAT rules."""
