"""An attribute that belongs to an extension exists only while that extension is listed."""

from neutrino.resources.definition import Attribute, Resource
from neutrino.resources.ports import PORT


def test_unlisted_extension_attributes_are_dropped_and_remembered():
    res = Resource("thing", "things", "things", (Attribute("id"), Attribute("colour", extension="colours")))
    assert res.with_extensions({"colours"}) is res
    bare = res.with_extensions(set())
    assert bare.attribute_names == ("id",) and bare.unlisted_attributes == {"colour"}
    assert bare.attribute("colour") is None


def test_port_dns_attributes_belong_to_their_extensions():
    served = PORT.with_extensions({"dns-integration"})
    assert served.attribute("dns_name") is not None and served.attribute("dns_assignment") is not None
    assert {"dns_domain", "propagate_uplink_status"} <= served.unlisted_attributes
