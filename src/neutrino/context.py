"""Who is asking: the request context every service and policy check receives.

Built by the API layer from a validated token; services read it, never the HTTP request.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    user_id: str
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    request_id: str = ""
    project_name: str = ""
    user_name: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_service(self) -> bool:
        return "service" in self.roles

    @property
    def is_privileged(self) -> bool:
        """Admins and service users (Nova) may act on any project's objects."""
        return self.is_admin or self.is_service

    @classmethod
    def admin(cls, request_id: str = "internal") -> RequestContext:
        """An internal admin context (agents' RPC handlers, the all-in-one bootstrap)."""
        return cls(user_id="neutrino", project_id="", roles=frozenset({"admin", "member", "reader"}),
                   request_id=request_id)
