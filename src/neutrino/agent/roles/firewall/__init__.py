"""The firewall role: security groups and anti-spoofing in nftables (compile, plan, conntrack, role)."""
