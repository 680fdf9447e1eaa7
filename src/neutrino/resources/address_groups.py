"""Address groups (``address-group``): named sets of CIDRs that security group rules can point at
(``remote_address_group_id``), as neutron-lib's ``address_group`` definition.

``addresses`` is given on create only; afterwards it changes through the two member actions
``PUT add_addresses`` / ``PUT remove_addresses`` (body ``{"addresses": [...]}``, answer the whole
group wrapped as ``{"address_group": {...}}``). ``shared`` is never shown (Neutron hides it); it is
the per-caller RBAC fact the ``get_address_group`` rule reads.
"""

from neutrino.resources import types as t
from neutrino.resources.definition import (
    Attribute,
    MemberAction,
    Resource,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
)
from neutrino.resources.extensions import Extension

ADDRESS_GROUP = Resource(
    name="address_group", collection="address_groups", path="address-groups", extension="address-group",
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        Attribute("addresses", t.ListOf(t.Cidr(), unique=True, nullable=True), default=[], allow_post=True),
        Attribute("shared", t.Boolean(), visible=False),
        *standard_attrs(),
    ),
    member_actions=(
        MemberAction("add_addresses"),
        MemberAction("remove_addresses"),
    ),
    unfetched_on_write=("shared",),
)

ADDRESS_GROUP_EXTENSIONS: tuple[Extension, ...] = (
    Extension("address-group", "Address group", "Support address group", "2020-07-15T10:00:00-00:00"),
    Extension("security-groups-remote-address-group", "Remote address group id field for security group rules",
              "Add new field of remote address group id in SG rules", "2020-08-25T10:00:00-00:00"),
    Extension("rbac-address-group", "Add address_group type to RBAC", "Add address_group type to network RBAC",
              "2021-01-20T00:00:00-00:00"),
)
