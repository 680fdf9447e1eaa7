"""Keystone v3 JSON bodies, rendered from the identity's plain data (pure functions).

Shapes follow ../shared/spec/identity.md: what tempest, keystoneauth1, openstacksdk and the
``openstack`` CLI read. Password hashes are never rendered (they never reach this module).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from neutrino.identity.model import Domain, Project, Role, RoleAssignment, Token, User
from neutrino.identity.tokens import format_time

# The newest Keystone v3 minor version whose subset we serve; keystoneauth only checks the major.
API_VERSION = "v3.14"
API_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"


@dataclass(frozen=True, slots=True)
class Urls:
    """Where things are: ``public_url`` is the server root (the network endpoint)."""

    public_url: str
    region: str

    @property
    def identity(self) -> str:
        """The identity service root (catalog endpoint), e.g. ``http://host:9696/identity``."""
        return self.public_url.rstrip("/") + "/identity"

    @property
    def v3(self) -> str:
        return self.identity + "/v3"


def version_v3(urls: Urls) -> dict[str, Any]:
    return {
        "id": API_VERSION,
        "status": "stable",
        "updated": API_UPDATED,
        "links": [{"rel": "self", "href": urls.v3 + "/"}],
        "media-types": [{"base": "application/json", "type": MEDIA_TYPE}],
    }


def versions(urls: Urls) -> dict[str, Any]:
    return {"versions": {"values": [version_v3(urls)]}}


def catalog(urls: Urls) -> list[dict[str, Any]]:
    """The service catalog: ``network`` at the server root, ``identity`` under ``/identity``.

    Endpoints carry both ``region`` and ``region_id``: tempest indexes ``ep['region']`` directly,
    keystoneauth reads ``region_id``. Ids are stable (derived from the URL) so they survive restarts.
    """
    def service(service_type: str, name: str, url: str) -> dict[str, Any]:
        return {
            "id": _stable_id(f"service:{service_type}:{url}"),
            "type": service_type,
            "name": name,
            "endpoints": [{
                "id": _stable_id(f"endpoint:public:{url}"),
                "interface": "public",
                "region": urls.region,
                "region_id": urls.region,
                "url": url,
            }],
        }

    return [service("network", "neutron", urls.public_url.rstrip("/")),
            service("identity", "keystone", urls.identity)]


def token_body(token: Token, role_ids: Mapping[str, str], urls: Urls, *, with_catalog: bool) -> dict[str, Any]:
    """The ``{"token": ...}`` document of a token; ``role_ids`` maps role names to ids."""
    subject, claims = token.subject, token.claims
    body: dict[str, Any] = {
        "methods": list(claims.methods),
        "user": {
            "id": subject.user.id,
            "name": subject.user.name,
            "domain": {"id": subject.user_domain.id, "name": subject.user_domain.name},
            "password_expires_at": None,
        },
        "audit_ids": list(claims.audit_ids),
        "issued_at": format_time(claims.issued_at),
        "expires_at": format_time(claims.expires_at),
    }
    if subject.project is not None and subject.project_domain is not None:
        body["project"] = {
            "id": subject.project.id,
            "name": subject.project.name,
            "domain": {"id": subject.project_domain.id, "name": subject.project_domain.name},
        }
        body["is_domain"] = False
        # An implied role with no row of its own (deleted by an operator) still shows, id = name.
        body["roles"] = [{"id": role_ids.get(name, name), "name": name} for name in subject.roles]
        if with_catalog:
            body["catalog"] = catalog(urls)
    return {"token": body}


def domain_body(domain: Domain, urls: Urls) -> dict[str, Any]:
    return {
        "id": domain.id,
        "name": domain.name,
        "description": domain.description,
        "enabled": domain.enabled,
        "tags": [],
        "options": {},
        "links": {"self": f"{urls.v3}/domains/{domain.id}"},
    }


def project_body(project: Project, urls: Urls) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "domain_id": project.domain_id,
        "description": project.description,
        "enabled": project.enabled,
        "is_domain": False,
        "parent_id": project.domain_id,
        "tags": [],
        "options": {},
        "links": {"self": f"{urls.v3}/projects/{project.id}"},
    }


def user_body(user: User, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "domain_id": user.domain_id,
        "enabled": user.enabled,
        "description": user.description,
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{urls.v3}/users/{user.id}"},
    }
    if user.default_project_id is not None:
        body["default_project_id"] = user.default_project_id
    return body


def role_body(role: Role, urls: Urls) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "domain_id": None,
        "description": None,
        "options": {},
        "links": {"self": f"{urls.v3}/roles/{role.id}"},
    }


@dataclass(frozen=True, slots=True)
class AssignmentNames:
    """Lookups for ``include_names``: objects by id."""

    roles: Mapping[str, Role]
    users: Mapping[str, User]
    projects: Mapping[str, Project]
    domains: Mapping[str, Domain]


def assignment_body(assignment: RoleAssignment, urls: Urls, names: AssignmentNames | None) -> dict[str, Any]:
    role: dict[str, Any] = {"id": assignment.role_id}
    user: dict[str, Any] = {"id": assignment.user_id}
    project: dict[str, Any] = {"id": assignment.project_id}
    if names is not None:
        _add_name(role, names.roles.get(assignment.role_id))
        _add_named_in_domain(user, names.users.get(assignment.user_id), names.domains)
        _add_named_in_domain(project, names.projects.get(assignment.project_id), names.domains)
    granted = assignment.prior_role_id or assignment.role_id
    links: dict[str, Any] = {
        "assignment": f"{urls.v3}/projects/{assignment.project_id}/users/{assignment.user_id}/roles/{granted}"}
    if assignment.prior_role_id is not None:
        links["prior_role"] = f"{urls.v3}/roles/{assignment.prior_role_id}"
    return {"role": role, "user": user, "scope": {"project": project}, "links": links}


def collection(key: str, items: Iterable[dict[str, Any]], self_url: str) -> dict[str, Any]:
    return {key: list(items), "links": {"self": self_url, "previous": None, "next": None}}


def error_body(code: int, title: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "title": title, "message": message}}


def _add_name(target: dict[str, Any], obj: Role | None) -> None:
    if obj is not None:
        target["name"] = obj.name


def _add_named_in_domain(target: dict[str, Any], obj: User | Project | None, domains: Mapping[str, Domain]) -> None:
    if obj is None:
        return
    target["name"] = obj.name
    domain = domains.get(obj.domain_id)
    target["domain"] = {"id": obj.domain_id, "name": domain.name if domain else obj.domain_id}


def _stable_id(text: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, text).hex
