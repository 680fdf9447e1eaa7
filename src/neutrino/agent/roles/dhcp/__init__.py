"""The dhcp role: Neutron's DHCP agent (dnsmasq driver) as a reconciler.

``config`` (what the agent is told), ``desired`` (the server's ``sync_state("dhcp")`` reply turned
into what each network's namespace and dnsmasq must be), ``plan`` (pure: desired vs. what was read),
``role`` (reads the kernel and the dnsmasq files, applies the plan, restarts a dnsmasq that died).
"""
