// Lists and forms for the project's resources. Each list pages, sorts and filters with the API's
// own query parameters (limit/marker, sort_key/sort_dir, attribute filters), so it stays quick
// with thousands of ports; each form shows the API's error message at the form (and marks the
// field it names). Detail pages add the nested things: router interfaces, gateway and routes,
// security group rules, QoS rules, port forwardings, address group addresses.
import { api, buildForm, confirmDelete, fmt, h, listAll, statusBadge, toast } from "./core.js";

const PAGE = 25;
const bool = (name, def) => ({ name, type: "bool", default: def });

async function options(path, key, query = {}, label = (o) => o.name || o.id) {
  const items = await listAll(path, key, query);
  return items.map((o) => [o.id, label(o)]);
}

export const RESOURCES = {
  networks: { title: "Networks", path: "networks", key: "network", plural: "networks",
    columns: ["name", "status", "subnets", "shared", "router:external", "admin_state_up"],
    sortable: ["name", "status", "id"], filters: ["name", "status", "shared", "router:external"],
    fields: async () => [{ name: "name" }, { name: "description" }, bool("admin_state_up", true),
                         { name: "mtu", type: "int", create: false }, { name: "port_security_enabled", type: "bool", default: true }] },
  subnets: { title: "Subnets", path: "subnets", key: "subnet", plural: "subnets",
    columns: ["name", "cidr", "ip_version", "gateway_ip", "enable_dhcp", "network_id"],
    sortable: ["name", "cidr", "ip_version", "id"], filters: ["name", "cidr", "network_id", "ip_version"],
    fields: async (ctx) => [
      { name: "network_id", type: "select", edit: false, options: await options("v2.0/networks", "networks") },
      { name: "name" }, { name: "cidr", edit: false, placeholder: "10.0.0.0/24" },
      { name: "ip_version", type: "select", numeric: true, optional: false, options: [4, 6], default: ctx.values?.ip_version ?? 4, edit: false },
      { name: "gateway_ip", placeholder: "default: first address" }, bool("enable_dhcp", true),
      { name: "dns_nameservers", type: "lines" }, { name: "description" }] },
  ports: { title: "Ports", path: "ports", key: "port", plural: "ports",
    columns: ["name", "status", "fixed_ips", "mac_address", "device_owner", "network_id"],
    sortable: ["name", "status", "mac_address", "device_owner", "id"],
    filters: ["name", "status", "network_id", "device_owner", "device_id", "mac_address"],
    fields: async () => [
      { name: "network_id", type: "select", edit: false, options: await options("v2.0/networks", "networks") },
      { name: "name" }, { name: "description" }, bool("admin_state_up", true),
      { name: "security_groups", type: "lines", help: "security group ids, one per line", create: false },
      { name: "qos_policy_id", type: "select", keepEmpty: true, nullIfEmpty: true,
        options: await options("v2.0/qos/policies", "policies").catch(() => []) }] },
  routers: { title: "Routers", path: "routers", key: "router", plural: "routers",
    columns: ["name", "status", "external_gateway_info", "routes", "admin_state_up"],
    sortable: ["name", "status", "id"], filters: ["name", "status"],
    fields: async () => [{ name: "name" }, { name: "description" }, bool("admin_state_up", true),
      { name: "external_gateway_info", type: "select", label: "gateway network",
        options: await options("v2.0/networks", "networks", { "router:external": "true" }), keepEmpty: true, nullIfEmpty: true },
      { name: "routes", type: "routes", create: false, placeholder: "destination nexthop, one per line" }],
    toBody: (v) => {
      if ("external_gateway_info" in v) v.external_gateway_info = v.external_gateway_info ? { network_id: v.external_gateway_info } : null;
      return v;
    },
    fromObject: (o) => ({ ...o, external_gateway_info: o.external_gateway_info && o.external_gateway_info.network_id }) },
  floatingips: { title: "Floating IPs", path: "floatingips", key: "floatingip", plural: "floatingips",
    columns: ["floating_ip_address", "status", "fixed_ip_address", "port_id", "floating_network_id"],
    sortable: ["floating_ip_address", "status", "id"], filters: ["floating_ip_address", "status", "port_id", "floating_network_id"],
    label: (o) => o.floating_ip_address,
    fields: async () => [
      { name: "floating_network_id", type: "select", edit: false,
        options: await options("v2.0/networks", "networks", { "router:external": "true" }) },
      { name: "port_id", type: "select", keepEmpty: true, nullIfEmpty: true,
        options: await options("v2.0/ports", "ports", {}, (p) => `${p.name || p.id.slice(0, 8)} ${fmt(p.fixed_ips)}`) },
      { name: "description" }] },
  "security-groups": { title: "Security groups", path: "security-groups", key: "security_group", plural: "security_groups",
    columns: ["name", "description", "stateful"], sortable: ["name", "id"], filters: ["name"],
    fields: async () => [{ name: "name" }, { name: "description" }, { name: "stateful", type: "bool", default: true }] },
  "qos-policies": { title: "QoS policies", path: "qos/policies", key: "policy", plural: "policies",
    columns: ["name", "description", "shared", "is_default", "rules"], sortable: ["name", "id"], filters: ["name", "shared"],
    fields: async () => [{ name: "name" }, { name: "description" }, bool("shared", false), bool("is_default", false)] },
  "address-groups": { title: "Address groups", path: "address-groups", key: "address_group", plural: "address_groups",
    columns: ["name", "description", "addresses"], sortable: ["name", "id"], filters: ["name"],
    fields: async () => [{ name: "name" }, { name: "description" },
                         { name: "addresses", type: "lines", placeholder: "10.0.0.0/24, one per line" }],
    // Addresses change through their own actions, not an update.
    update: async (id, values, before) => {
      const { addresses = [], ...rest } = values;
      await api.put(`v2.0/address-groups/${id}`, { address_group: rest });
      const add = addresses.filter((a) => !before.addresses.includes(a));
      const gone = before.addresses.filter((a) => !addresses.includes(a));
      if (add.length) await api.put(`v2.0/address-groups/${id}/add_addresses`, { addresses: add });
      if (gone.length) await api.put(`v2.0/address-groups/${id}/remove_addresses`, { addresses: gone });
    } },
};

function cell(name, obj) {
  if (name === "status") return statusBadge(obj.status);
  if (name === "external_gateway_info") return fmt(obj.external_gateway_info && obj.external_gateway_info.network_id);
  if (name === "rules") return String((obj.rules || []).length);
  return fmt(obj[name]);
}

async function formFields(spec, mode, values) {
  const all = await spec.fields({ values });
  return all.filter((f) => (mode === "create" ? f.create !== false : f.edit !== false));
}

// ---- the list page ----------------------------------------------------------------------------

export function renderList(ctx, name) {
  const spec = RESOURCES[name];
  const { main, live } = ctx;
  const q = { sort_key: spec.sortable[0], sort_dir: "asc", filterKey: spec.filters[0], filterValue: "" };
  const markers = []; // markers of the pages before this one
  let marker;
  let lastItems = [];
  const table = h("table", { class: "list", id: `${name}-table` });
  const pager = h("div", { class: "pager" });
  const formBox = h("div", { id: `${name}-form-box` });
  const filterKey = h("select", { id: `${name}-filter-key`, "aria-label": "Filter attribute" },
                      spec.filters.map((f) => h("option", { value: f }, f)));
  const filterValue = h("input", { id: `${name}-filter-value`, type: "search", placeholder: "exact value",
                                   "aria-label": "Filter value" });
  const filter = h("form", { class: "filter", id: `${name}-filter` }, filterKey, filterValue,
                   h("button", { type: "submit" }, "Filter"));
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    q.filterKey = filterKey.value;
    q.filterValue = filterValue.value.trim();
    markers.length = 0; marker = undefined; load();
  });
  main.append(h("div", { class: "head" }, h("h1", {}, spec.title),
    h("button", { type: "button", id: `${name}-create`, onclick: () => openForm("create") }, "Create")),
    formBox, filter, h("div", { class: "table-wrap" }, table), pager);

  async function openForm(mode, obj) {
    const values = obj ? (spec.fromObject ? spec.fromObject(obj) : obj) : {};
    const fields = await formFields(spec, mode, values);
    formBox.replaceChildren(buildForm({ id: `${name}-${mode}`, fields, values, submitLabel: mode === "create" ? "Create" : "Save",
      onCancel: () => formBox.replaceChildren(),
      onSubmit: async (v) => {
        const body = spec.toBody ? spec.toBody(v) : v;
        if (mode === "create") await api.post(`v2.0/${spec.path}`, { [spec.key]: body });
        else if (spec.update) await spec.update(obj.id, body, obj);
        else await api.put(`v2.0/${spec.path}/${obj.id}`, { [spec.key]: body });
        formBox.replaceChildren();
        toast(mode === "create" ? `Created ${spec.key}` : `Saved ${spec.key}`);
        load();
      } }));
    formBox.querySelector("input, select, textarea")?.focus();
  }

  async function load() {
    const query = { limit: PAGE, marker, sort_key: q.sort_key, sort_dir: q.sort_dir };
    if (q.filterValue) query[q.filterKey] = q.filterValue;
    try {
      const body = await api.get(`v2.0/${spec.path}`, query);
      lastItems = body[spec.plural] || [];
      const next = (body[spec.plural + "_links"] || []).find((l) => l.rel === "next");
      draw(lastItems, next ? new URL(next.href, location.href).searchParams.get("marker") : null);
    } catch (e) {
      table.replaceChildren(h("caption", { class: "form-error", role: "alert" }, e.message));
    }
  }

  function header(col) {
    if (!spec.sortable.includes(col)) return h("th", { scope: "col" }, col);
    const active = q.sort_key === col;
    return h("th", { scope: "col", "aria-sort": active ? (q.sort_dir === "asc" ? "ascending" : "descending") : "none" },
      h("button", { type: "button", class: "link sort", onclick: () => {
        q.sort_dir = active && q.sort_dir === "asc" ? "desc" : "asc";
        q.sort_key = col; markers.length = 0; marker = undefined; load();
      } }, col, active ? (q.sort_dir === "asc" ? " ▲" : " ▼") : ""));
  }

  function draw(items, nextMarker) {
    const label = spec.label || ((o) => o.name || o.id);
    table.replaceChildren(
      h("thead", {}, h("tr", {}, spec.columns.map(header), h("th", { scope: "col" }, "actions"))),
      h("tbody", {}, items.length ? items.map((o) => h("tr", { dataset: { id: o.id } },
        spec.columns.map((c, i) => h("td", { "data-label": c },
          i === 0 ? h("a", { href: `#/${name}/${o.id}` }, label(o) || o.id) : cell(c, o))),
        h("td", { class: "row-actions" },
          h("button", { type: "button", class: "secondary", onclick: () => openForm("edit", o) }, "Edit"),
          h("button", { type: "button", class: "danger", onclick: async () => {
            if (!(await confirmDelete(`${spec.key} ${label(o)}`))) return;
            try { await api.del(`v2.0/${spec.path}/${o.id}`); toast(`Deleted ${label(o)}`); load(); }
            catch (e) { toast(e.message, "error"); }
          } }, "Delete"))))
        : h("tr", {}, h("td", { colspan: spec.columns.length + 1, class: "muted" }, "None."))));
    pager.replaceChildren(
      h("button", { type: "button", disabled: !markers.length, onclick: () => { marker = markers.pop(); load(); } }, "Previous"),
      h("span", { class: "muted" }, `page ${markers.length + 1}`),
      h("button", { type: "button", disabled: !nextMarker, onclick: () => { markers.push(marker); marker = nextMarker; load(); } }, "Next"));
  }

  let timer = null;
  const off = live.on((changes) => {
    if (changes.some((c) => c.resource === spec.key || (spec.key === "policy" && c.resource === "qos_policy"))) {
      clearTimeout(timer);
      timer = setTimeout(load, 100);
    }
  });
  load();
  return () => { off(); clearTimeout(timer); };
}

// ---- the detail page --------------------------------------------------------------------------

export function renderDetail(ctx, name, id) {
  const spec = RESOURCES[name];
  const { main, live } = ctx;
  const box = h("div", { id: "detail" });
  main.append(h("p", {}, h("a", { href: `#/${name}` }, `← ${spec.title}`)), box);
  let obj = null;

  async function load() {
    try {
      obj = (await api.get(`v2.0/${spec.path}/${id}`))[spec.key];
    } catch (e) {
      box.replaceChildren(h("p", { class: "form-error", role: "alert" }, e.message));
      return;
    }
    const label = spec.label ? spec.label(obj) : obj.name || obj.id;
    const extras = EXTRAS[name] ? await EXTRAS[name](obj, load) : [];
    const shown = Object.keys(obj).sort().filter((k) => !NESTED.has(k));
    box.replaceChildren(h("h1", {}, `${spec.key.replace("_", " ")} ${label}`),
      h("dl", { class: "details card" }, shown.map((k) => [h("dt", {}, k),
        h("dd", {}, k === "status" ? statusBadge(obj.status) : fmt(obj[k]))])),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "danger", id: "detail-delete", onclick: async () => {
          if (!(await confirmDelete(`${spec.key} ${label}`))) return;
          try { await api.del(`v2.0/${spec.path}/${id}`); toast(`Deleted ${label}`); location.hash = `#/${name}`; }
          catch (e) { toast(e.message, "error"); }
        } }, "Delete")),
      ...extras);
  }
  const off = live.on((changes) => { if (changes.some((c) => c.id === id && c.op !== "delete")) load(); });
  load();
  return off;
}

// A sub-list with a create form and delete buttons (rules, port forwardings).
function subList({ id, title, items, columns, fields, create, remove }) {
  const formSlot = h("div");
  return h("section", { class: "card", id }, h("div", { class: "head" }, h("h2", {}, title),
      fields ? h("button", { type: "button", id: `${id}-add`, onclick: () => {
        formSlot.replaceChildren(buildForm({ id: `${id}-form`, fields, submitLabel: "Add",
          onCancel: () => formSlot.replaceChildren(), onSubmit: async (v) => { await create(v); } }));
        formSlot.querySelector("input, select")?.focus();
      } }, "Add") : null),
    formSlot,
    h("div", { class: "table-wrap" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)), h("th", {}, ""))),
      h("tbody", {}, items.map((it) => h("tr", { dataset: { id: it.id } }, columns.map((c) => h("td", { "data-label": c }, fmt(it[c]))),
        h("td", {}, remove ? h("button", { type: "button", class: "danger", onclick: async () => {
          if (await confirmDelete(title.toLowerCase().replace(/s$/, ""))) {
            try { await remove(it); } catch (e) { toast(e.message, "error"); }
          }
        } }, "Delete") : null)))))));
}

// Shown in their own sections below the attributes.
const NESTED = new Set(["security_group_rules", "rules"]);

const PROTOCOLS = ["", "icmp", "tcp", "udp", "icmpv6", "sctp"];

const EXTRAS = {
  "security-groups": async (g, reload) => [subList({ id: "sg-rules", title: "Rules",
    items: g.security_group_rules || [],
    columns: ["direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id"],
    fields: [{ name: "direction", type: "select", optional: false, options: ["ingress", "egress"] },
             { name: "ethertype", type: "select", optional: false, options: ["IPv4", "IPv6"] },
             { name: "protocol", type: "select", options: PROTOCOLS.slice(1), placeholder: "any" },
             { name: "port_range_min", type: "int", help: "port, or ICMP type" },
             { name: "port_range_max", type: "int", help: "port, or ICMP code" },
             { name: "remote_ip_prefix", placeholder: "0.0.0.0/0" }, { name: "description" }],
    create: async (v) => { await api.post("v2.0/security-group-rules", { security_group_rule: { ...v, security_group_id: g.id } }); reload(); },
    remove: async (r) => { await api.del(`v2.0/security-group-rules/${r.id}`); reload(); } })],

  routers: async (r, reload) => {
    const ports = await listAll("v2.0/ports", "ports", { device_id: r.id });
    const ifaces = ports.filter((p) => p.device_owner.startsWith("network:router_interface"));
    const subnets = await listAll("v2.0/subnets", "subnets");
    return [subList({ id: "router-interfaces", title: "Interfaces",
      items: ifaces.map((p) => ({ id: p.id, addresses: fmt(p.fixed_ips), status: p.status, subnet_id: p.fixed_ips[0]?.subnet_id })),
      columns: ["addresses", "status", "subnet_id"],
      fields: [{ name: "subnet_id", type: "select", optional: false, options: subnets.map((s) => [s.id, `${s.name || ""} ${s.cidr}`]) }],
      create: async (v) => { await api.put(`v2.0/routers/${r.id}/add_router_interface`, v); reload(); },
      remove: async (p) => { await api.put(`v2.0/routers/${r.id}/remove_router_interface`, { port_id: p.id }); reload(); } }),
    subList({ id: "router-routes", title: "Static routes", items: (r.routes || []).map((x, i) => ({ id: String(i), ...x })),
      columns: ["destination", "nexthop"],
      fields: [{ name: "destination", placeholder: "10.9.0.0/24" }, { name: "nexthop", placeholder: "10.0.0.5" }],
      create: async (v) => { await api.put(`v2.0/routers/${r.id}`, { router: { routes: [...(r.routes || []), v] } }); reload(); },
      remove: async (x) => {
        await api.put(`v2.0/routers/${r.id}`, { router: { routes: r.routes.filter((y) => y.destination !== x.destination || y.nexthop !== x.nexthop) } });
        reload();
      } })];
  },

  "qos-policies": async (p, reload) => {
    const kinds = [
      ["bandwidth_limit_rules", "Bandwidth limit rules", ["max_kbps", "max_burst_kbps", "direction"],
       [{ name: "max_kbps", type: "int" }, { name: "max_burst_kbps", type: "int" },
        { name: "direction", type: "select", optional: false, options: ["egress", "ingress"] }]],
      ["dscp_marking_rules", "DSCP marking rules", ["dscp_mark"], [{ name: "dscp_mark", type: "int" }]],
      ["minimum_bandwidth_rules", "Minimum bandwidth rules", ["min_kbps", "direction"],
       [{ name: "min_kbps", type: "int" }, { name: "direction", type: "select", optional: false, options: ["egress", "ingress"] }]],
    ];
    const out = [];
    for (const [path, title, columns, fields] of kinds) {
      const items = (await api.get(`v2.0/qos/policies/${p.id}/${path}`))[path] || [];
      const key = path.replace(/s$/, "");
      out.push(subList({ id: `qos-${path}`, title, items, columns, fields,
        create: async (v) => { await api.post(`v2.0/qos/policies/${p.id}/${path}`, { [key]: v }); reload(); },
        remove: async (r) => { await api.del(`v2.0/qos/policies/${p.id}/${path}/${r.id}`); reload(); } }));
    }
    return out;
  },

  floatingips: async (f, reload) => {
    const items = (await api.get(`v2.0/floatingips/${f.id}/port_forwardings`)).port_forwardings || [];
    return [subList({ id: "fip-forwardings", title: "Port forwardings", items,
      columns: ["protocol", "external_port", "internal_ip_address", "internal_port", "internal_port_id"],
      fields: [{ name: "protocol", type: "select", optional: false, options: ["tcp", "udp"] },
               { name: "external_port", type: "int" }, { name: "internal_port_id" },
               { name: "internal_ip_address" }, { name: "internal_port", type: "int" }, { name: "description" }],
      create: async (v) => { await api.post(`v2.0/floatingips/${f.id}/port_forwardings`, { port_forwarding: v }); reload(); },
      remove: async (r) => { await api.del(`v2.0/floatingips/${f.id}/port_forwardings/${r.id}`); reload(); } })];
  },

  networks: async (n) => {
    const subnets = await listAll("v2.0/subnets", "subnets", { network_id: n.id });
    return [subList({ id: "network-subnets", title: "Subnets", items: subnets, columns: ["name", "cidr", "gateway_ip", "enable_dhcp"] })];
  },
};
