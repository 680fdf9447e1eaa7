// Admin views: agents and what is scheduled on them, quotas and usage per project, provider and
// external networks, network IP availability. The page is only linked for admins, and the API
// refuses the calls to anyone else (the refusal is shown as it comes).
import { api, buildForm, fmt, h, listAll, toast } from "./core.js";

export function renderAdmin(ctx, page) {
  const { main, live } = ctx;
  const box = h("div", { id: `admin-${page}` });
  main.append(box);
  const views = { agents, quotas, networks: providerNetworks, "ip-availability": ipAvailability };
  const view = views[page];
  if (!view) { box.append(h("p", {}, "Nothing here.")); return null; }
  const fail = (e) => box.replaceChildren(h("h1", {}, "Admin"), h("p", { class: "form-error", role: "alert", id: "admin-error" }, e.message));
  const load = () => view(box).catch(fail);
  load();
  if (page !== "agents") return null;
  let timer;
  const off = live.on((changes) => {
    if (changes.some((c) => c.resource === "agent")) { clearTimeout(timer); timer = setTimeout(load, 100); }
  });
  // An agent turning dead is no write (nothing is committed when heartbeats stop), so the page
  // re-reads the list on the agent-down clock, while it is open.
  const tick = setInterval(load, 10000);
  return () => { off(); clearTimeout(timer); clearInterval(tick); };
}

async function agents(box) {
  const list = await listAll("v2.0/agents", "agents");
  list.sort((a, b) => `${a.host}${a.agent_type}`.localeCompare(`${b.host}${b.agent_type}`));
  const scheduled = await Promise.all(list.map(async (a) => {
    if (a.agent_type === "DHCP agent") return ["dhcp-networks", "networks", (await api.get(`v2.0/agents/${a.id}/dhcp-networks`)).networks || []];
    if (a.agent_type === "L3 agent") return ["l3-routers", "routers", (await api.get(`v2.0/agents/${a.id}/l3-routers`)).routers || []];
    return null;
  }));
  const rows = list.map((a, i) => {
    const sched = scheduled[i];
    return h("tr", { dataset: { id: a.id, alive: String(a.alive) } },
      h("td", { "data-label": "type" }, a.agent_type), h("td", { "data-label": "host" }, a.host),
      h("td", { "data-label": "alive" }, h("span", { class: "status " + (a.alive ? "status-active" : "status-error") }, a.alive ? "alive" : "dead")),
      h("td", { "data-label": "state" }, a.admin_state_up ? "enabled" : "disabled"),
      h("td", { "data-label": "heartbeat" }, fmt(a.heartbeat_timestamp)),
      h("td", { "data-label": "scheduled" }, sched ? schedCell(a, sched, box) : "—"),
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
        try { await api.put(`v2.0/agents/${a.id}`, { agent: { admin_state_up: !a.admin_state_up } }); agents(box); }
        catch (e) { toast(e.message, "error"); }
      } }, a.admin_state_up ? "Disable" : "Enable")));
  });
  box.replaceChildren(h("h1", {}, "Agents"),
    h("div", { class: "table-wrap" }, h("table", { class: "list", id: "agents-table" },
      h("thead", {}, h("tr", {}, ["type", "host", "alive", "state", "last heartbeat", "scheduled", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows))));
}

function schedCell(agent, [path, key, items], box) {
  const input = h("input", { placeholder: `${key.slice(0, -1)} id`, "aria-label": `Schedule a ${key.slice(0, -1)} on ${agent.host}` });
  const body = key === "networks" ? (v) => ({ network_id: v }) : (v) => ({ router_id: v });
  return h("div", {},
    h("ul", { class: "plain" }, items.map((o) => h("li", {}, o.name || o.id, " ",
      h("button", { type: "button", class: "link", onclick: async () => {
        try { await api.del(`v2.0/agents/${agent.id}/${path}/${o.id}`); agents(box); } catch (e) { toast(e.message, "error"); }
      } }, "remove")))),
    h("form", { class: "inline", onsubmit: async (ev) => {
      ev.preventDefault();
      try { await api.post(`v2.0/agents/${agent.id}/${path}`, body(input.value.trim())); agents(box); }
      catch (e) { toast(e.message, "error"); }
    } }, input, h("button", { type: "submit" }, "Schedule")));
}

async function quotas(box) {
  const projects = (await api.get("identity/v3/projects")).projects || [];
  const select = h("select", { id: "quota-project", "aria-label": "Project" }, projects.map((p) => h("option", { value: p.id }, p.name)));
  const slot = h("div", { id: "quota-slot" });
  async function show() {
    const project = select.value;
    const details = (await api.get(`v2.0/quotas/${project}/details`)).quota;
    if (project !== select.value) return;  // another project was chosen meanwhile
    const names = Object.keys(details).sort();
    slot.replaceChildren(
      h("div", { class: "table-wrap" }, h("table", { class: "list", id: "quota-table" },
        h("thead", {}, h("tr", {}, ["resource", "used", "limit"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, names.map((n) => h("tr", {}, h("td", {}, n), h("td", {}, String(details[n].used)),
                                               h("td", {}, String(details[n].limit))))))),
      buildForm({ id: "quota-form", submitLabel: "Save limits",
        fields: names.map((n) => ({ name: n, type: "int" })),
        values: Object.fromEntries(names.map((n) => [n, details[n].limit])),
        onSubmit: async (v) => { await api.put(`v2.0/quotas/${project}`, { quota: v }); toast("Quotas saved"); show(); } }));
    slot.dataset.project = project;
  }
  select.addEventListener("change", () => show().catch((e) => toast(e.message, "error")));
  box.replaceChildren(h("h1", {}, "Quotas and usage"), h("label", { class: "field" }, "Project", select), slot);
  if (projects.length) await show();
}

async function providerNetworks(box) {
  const nets = await listAll("v2.0/networks", "networks");
  const cols = ["name", "provider:network_type", "provider:physical_network", "provider:segmentation_id", "router:external", "shared", "project_id", "status"];
  box.replaceChildren(h("h1", {}, "Provider and external networks"),
    h("div", { class: "table-wrap" }, h("table", { class: "list", id: "provider-table" },
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, nets.map((n) => h("tr", {}, cols.map((c) => h("td", { "data-label": c }, fmt(n[c])))))))));
}

async function ipAvailability(box) {
  const items = await listAll("v2.0/network-ip-availabilities", "network_ip_availabilities");
  box.replaceChildren(h("h1", {}, "Network IP availability"),
    h("div", { class: "table-wrap" }, h("table", { class: "list", id: "ip-table" },
      h("thead", {}, h("tr", {}, ["network", "used", "total", "subnets"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, items.map((n) => h("tr", {}, h("td", {}, n.network_name || n.network_id), h("td", {}, String(n.used_ips)),
        h("td", {}, String(n.total_ips)),
        h("td", {}, (n.subnet_ip_availability || []).map((s) => `${s.cidr}: ${s.used_ips}/${s.total_ips}`).join(", "))))))));
}
