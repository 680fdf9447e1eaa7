"""Pure IPAM decisions: subnets, addresses, MACs, subnet pools and DNS names.

Nothing in this package touches a database, the network or the clock: every function takes plain
data (frozen records from :mod:`.records`, request values as the API decoded them, and a
``random.Random`` where a choice is random) and either returns the decision as frozen data or raises
a domain error from :mod:`neutrino.errors` with Neutron's exact type and message. The subnet, port
and subnet-pool services read the rows, call these functions inside their transaction, and write
what they return.

Modules:
- :mod:`.records` — the records that cross this seam (``SubnetInfo``, ``FixedIp``, ``UNSET``).
- :mod:`.owners` — the device owners IPAM treats specially.
- :mod:`.notation` — textual IP/CIDR syntax and Neutron's messages for malformed values.
- :mod:`.subnet_validation` — subnet create/update validation and defaults.
- :mod:`.addresses` — address arithmetic and the choice of a free address.
- :mod:`.fixed_ips` — what a port's ``fixed_ips`` request asks IPAM to do (create and update).
- :mod:`.mac` — MAC normalisation and generation.
- :mod:`.prefixes` — subnet-pool prefixes, bounds, quota and prefix allocation.
- :mod:`.dns` — a port's ``dns_assignment``.
"""
