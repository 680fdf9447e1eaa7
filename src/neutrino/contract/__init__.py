"""What the server and the agents share, and nothing else: imports only the standard library.

- ``l2``, ``l3``: each role's desired-state records (the ``sync_state`` replies);
- ``names``: kernel device and namespace names, made in one place for both sides;
- ``events``: change events as agents receive them;
- ``codec``: the one conversion between these records and their JSON-able wire form.

A new role adds its records here as a module named after the role (docs/architecture.md).
"""
