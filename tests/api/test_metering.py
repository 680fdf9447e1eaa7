"""Metering labels and rules (``metering``, ``metering_source_and_destination_fields``) on a live
server: the ``openstack network meter`` commands as the admin runs them, what the label's project
reads, what members may not do, the errors tempest checks, and other projects seeing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.test_rbac_quotas_cli import unique
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import TwoProjects, two_projects

LABEL_KEYS = {"id", "name", "description", "project_id", "tenant_id", "shared"}
RULE_KEYS = {"id", "metering_label_id", "direction", "excluded", "remote_ip_prefix", "source_ip_prefix",
             "destination_ip_prefix"}


World = TwoProjects


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with two_projects(live_server, tmp_path_factory.mktemp("meter") / "clouds.yaml", "meter") as w:
        try:
            yield w
        finally:
            for project in (w.member.project_id, w.other.project_id):
                for label in w.adm.get("/metering/metering-labels", params={"project_id": project}).json()[
                        "metering_labels"]:
                    w.adm.delete(f"/metering/metering-labels/{label['id']}")


def test_the_extensions_are_listed(world: World) -> None:
    assert {"metering", "metering_source_and_destination_fields"} <= {
        e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


def test_labels_and_rules_through_the_cli(world: World) -> None:
    label = world.cli("neutrino-admin", "network", "meter", "create", "--project", world.member.project_id,
                      "--description", "egress of the web tier", unique("meter"), "-f", "json")
    assert (label["project_id"], label["shared"]) == (world.member.project_id, False)
    rule = world.cli("neutrino-admin", "network", "meter", "rule", "create", "--egress", "--exclude",
                     "--remote-ip-prefix", "10.7.0.9/16", label["id"], "-f", "json")
    rule = ok(world.a.get(f"/metering/metering-label-rules/{rule['id']}"), "metering_label_rule")
    assert (rule["direction"], rule["excluded"], rule["remote_ip_prefix"]) == ("egress", True, "10.7.0.0/16")
    both = created(world.adm.post("/metering/metering-label-rules", json={"metering_label_rule": {
        "metering_label_id": label["id"], "direction": "ingress", "source_ip_prefix": "192.0.2.0/24",
        "destination_ip_prefix": "10.1.0.0/16"}}), "metering_label_rule")
    assert set(both) == RULE_KEYS
    assert (both["remote_ip_prefix"], both["source_ip_prefix"]) == (None, "192.0.2.0/24")
    # The label's project reads both; another project sees neither.
    shown = ok(world.a.get(f"/metering/metering-labels/{label['id']}"), "metering_label")
    assert set(shown) == LABEL_KEYS and shown["description"] == "egress of the web tier"
    assert {r["id"] for r in ok(world.a.get("/metering/metering-label-rules"), "metering_label_rules")} == {
        rule["id"], both["id"]}
    assert ok(world.a.get("/metering/metering-label-rules", params={"direction": "ingress"}),
              "metering_label_rules")[0]["id"] == both["id"]
    neutron_error(world.b.get(f"/metering/metering-labels/{label['id']}"), 404, "MeteringLabelNotFound")
    neutron_error(world.b.get(f"/metering/metering-label-rules/{rule['id']}"), 404, "MeteringLabelRuleNotFound")
    assert ok(world.b.get("/metering/metering-labels"), "metering_labels") == []
    # Members make and delete nothing.
    neutron_error(world.a.post("/metering/metering-labels", json={"metering_label": {"name": "x"}}), 403,
                  "PolicyNotAuthorized")
    neutron_error(world.a.delete(f"/metering/metering-label-rules/{rule['id']}"), 403, "PolicyNotAuthorized")
    world.cli("neutrino-admin", "network", "meter", "rule", "delete", rule["id"])
    assert ok(world.adm.get("/metering/metering-label-rules", params={"id": rule["id"]}),
              "metering_label_rules") == []
    world.cli("neutrino-admin", "network", "meter", "delete", label["id"])
    # The label's rules went with it.
    neutron_error(world.adm.get(f"/metering/metering-label-rules/{both['id']}"), 404, "MeteringLabelRuleNotFound")


def test_errors_tempest_checks(world: World) -> None:
    neutron_error(world.adm.post("/metering/metering-labels", json={"metering_label": {"name": "x" * 256}}), 400,
                  "HTTPBadRequest")
    assert ok(world.adm.get("/metering/metering-labels", params={"id": "33"}), "metering_labels") == []
    assert ok(world.adm.get("/metering/metering-label-rules", params={"id": "33"}), "metering_label_rules") == []
    label = created(world.adm.post("/metering/metering-labels", json={"metering_label": {
        "name": unique("m"), "project_id": world.member.project_id}}), "metering_label")
    rules = "/metering/metering-label-rules"
    created(world.adm.post(rules, json={"metering_label_rule": {
        "metering_label_id": label["id"], "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8"}}),
        "metering_label_rule")
    neutron_error(world.adm.post(rules, json={"metering_label_rule": {
        "metering_label_id": label["id"], "direction": "ingress", "remote_ip_prefix": "10.2.0.0/16"}}), 409,
        "MeteringLabelRuleOverlaps")
    neutron_error(world.adm.post(rules, json={"metering_label_rule": {
        "metering_label_id": label["id"], "direction": "egress", "remote_ip_prefix": "10.0.0.0/8",
        "source_ip_prefix": "10.0.0.0/8"}}), 400, "BadRequest")
    neutron_error(world.adm.post(rules, json={"metering_label_rule": {
        "metering_label_id": label["id"], "direction": "egress"}}), 400, "BadRequest")
    neutron_error(world.adm.post(rules, json={"metering_label_rule": {
        "metering_label_id": label["id"], "direction": "up", "remote_ip_prefix": "10.0.0.0/8"}}), 400,
        "HTTPBadRequest")
    neutron_error(world.adm.post(rules, json={"metering_label_rule": {
        "metering_label_id": "e2f1d1a4-9d4e-4bb4-9a35-0f6b1e1f0c11", "direction": "egress",
        "remote_ip_prefix": "10.0.0.0/8"}}), 404, "MeteringLabelNotFound")
    neutron_error(world.adm.put(f"/metering/metering-labels/{label['id']}", json={"metering_label": {"name": "n"}}),
                  405, "HTTPMethodNotAllowed")
