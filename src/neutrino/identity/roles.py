"""Role names the identity knows, and implied-role expansion as Keystone's defaults do it.

Keystone's bootstrap makes ``admin`` imply ``manager``, ``manager`` imply ``member`` and ``member``
imply ``reader``; tokens list the expanded set. Neutron's secure-RBAC defaults depend on it: reads
require ``reader``, so a member's token without ``reader`` would be refused every GET.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ADMIN = "admin"
MANAGER = "manager"
MEMBER = "member"
READER = "reader"
SERVICE = "service"

# Roles every identity has (bootstrap creates them; tempest expects admin, member and reader).
STANDARD_ROLES: tuple[str, ...] = (ADMIN, MANAGER, MEMBER, READER, SERVICE)

# prior role -> roles it implies directly.
IMPLIED_ROLES: Mapping[str, tuple[str, ...]] = {
    ADMIN: (MANAGER,),
    MANAGER: (MEMBER,),
    MEMBER: (READER,),
}


def expand_roles(names: Iterable[str], implied: Mapping[str, tuple[str, ...]] = IMPLIED_ROLES) -> frozenset[str]:
    """The given role names plus every role they imply, transitively (cycles are harmless)."""
    result: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in result:
            continue
        result.add(name)
        pending.extend(implied.get(name, ()))
    return frozenset(result)


def implied_by(name: str, implied: Mapping[str, tuple[str, ...]] = IMPLIED_ROLES) -> frozenset[str]:
    """Roles ``name`` implies, excluding itself unless a cycle leads back to it."""
    return expand_roles(implied.get(name, ()), implied)
