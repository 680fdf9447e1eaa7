// The topology: the project's networks, subnets, routers (and their gateways), instances (their
// ports grouped by device_id), ports, DHCP ports and floating IPs as a Cytoscape graph. It is
// loaded once through the API and then kept current by the live stream: each change is applied
// to the model and the graph is diffed against it (no reload, no polling, no relayout of what
// is already placed).
import { api, ApiError, confirmDelete, fmt, h, listAll, statusBadge, toast } from "./core.js";

const KINDS = ["network", "subnet", "port", "router", "floatingip"];
const STATUS_COLOURS = { ACTIVE: "#2e7d32", DOWN: "#757575", BUILD: "#f9a825", ERROR: "#c62828" };
const HIDDEN_OWNERS = new Set(["network:router_gateway", "network:floatingip"]);

export const STYLE = [
  { selector: "node", style: { label: "data(label)", "font-size": 10, "min-zoomed-font-size": 7,
    "text-valign": "bottom", "text-margin-y": 3, color: "#222", "background-color": "#90a4ae",
    "border-width": 3, "border-color": "data(colour)", width: 22, height: 22 } },
  { selector: "node.network", style: { shape: "round-rectangle", width: 46, height: 26, "background-color": "#1565c0",
    color: "#0d47a1", "font-weight": "bold", "font-size": 13 } },
  { selector: "node.external", style: { "background-color": "#6a1b9a", color: "#4a148c", width: 60 } },
  { selector: "node.subnet", style: { shape: "rectangle", width: 30, height: 16, "background-color": "#64b5f6" } },
  { selector: "node.router", style: { shape: "diamond", width: 34, height: 34, "background-color": "#ef6c00", "font-size": 13 } },
  { selector: "node.instance", style: { shape: "round-rectangle", "background-color": "#eceff1",
    "background-opacity": 0.6, "border-style": "dashed", "text-valign": "top", "padding": 6 } },
  { selector: "node.port", style: { width: 12, height: 12, "background-color": "#b0bec5", "font-size": 8 } },
  { selector: "node.dhcp", style: { shape: "hexagon", "background-color": "#00897b", width: 16, height: 16 } },
  { selector: "node.floatingip", style: { shape: "star", width: 18, height: 18, "background-color": "#fdd835" } },
  { selector: "edge", style: { width: 1.5, "line-color": "#b0bec5", "curve-style": "haystack" } },
  { selector: "edge.gateway", style: { width: 3, "line-color": "#6a1b9a" } },
  { selector: "edge.fip", style: { "line-style": "dashed", "line-color": "#f9a825" } },
  { selector: "edge.pool", style: { "line-style": "dotted", "line-color": "#ce93d8" } },
  { selector: ".match", style: { "underlay-color": "#ffeb3b", "underlay-opacity": 0.7, "underlay-padding": 6 } },
  { selector: "node:selected", style: { "overlay-color": "#1565c0", "overlay-opacity": 0.25, "overlay-padding": 6 } },
];

function colour(status) { return STATUS_COLOURS[status] || "#9e9e9e"; }

// The model: one Map per kind, holding the API's objects as the viewer sees them.
export class Model {
  constructor(projectId, scoped) {
    this.projectId = projectId;
    this.scoped = scoped; // an admin sees every project through the API: keep to the current one
    for (const k of KINDS) this[k] = new Map();
  }
  wants(kind, obj) {
    if (!this.scoped) return true;
    if (kind === "network" && obj["router:external"]) return true;
    return obj.project_id === this.projectId;
  }
  put(kind, obj) { if (this.wants(kind, obj)) this[kind].set(obj.id, obj); else this[kind].delete(obj.id); }
  apply(change) {
    if (!KINDS.includes(change.resource)) return false;
    if (change.op === "delete") return this[change.resource].delete(change.id);
    this.put(change.resource, change.object);
    return true;
  }
}

export async function loadModel(session) {
  const scoped = session.is_admin;
  const pid = session.project.id;
  const own = scoped ? { project_id: pid } : {};
  const model = new Model(pid, scoped);
  const [nets, ext, subnets, ports, routers, fips] = await Promise.all([
    listAll("v2.0/networks", "networks", own),
    scoped ? listAll("v2.0/networks", "networks", { "router:external": "true" }) : Promise.resolve([]),
    listAll("v2.0/subnets", "subnets", own),
    listAll("v2.0/ports", "ports", own),
    listAll("v2.0/routers", "routers", own),
    listAll("v2.0/floatingips", "floatingips", own),
  ]);
  [...nets, ...ext].forEach((o) => model.put("network", o));
  subnets.forEach((o) => model.put("subnet", o));
  ports.forEach((o) => model.put("port", o));
  routers.forEach((o) => model.put("router", o));
  fips.forEach((o) => model.put("floatingip", o));
  return model;
}

// The graph's elements for a model: a pure function of it (ids are stable, so diffs are cheap).
export function elements(model) {
  const nodes = new Map();
  const edges = new Map();
  const node = (id, data, classes) => nodes.set(id, { group: "nodes", data: { id, ...data }, classes });
  const edge = (a, b, classes = "") => {
    if (!nodes.has(a) || !nodes.has(b)) return;
    const id = `${a}~${b}`;
    edges.set(id, { group: "edges", data: { id, source: a, target: b }, classes });
  };
  for (const n of model.network.values()) {
    node("network:" + n.id, { kind: "network", ref: n.id, label: n.name || n.id.slice(0, 8), colour: colour(n.status) },
         "network" + (n["router:external"] ? " external" : ""));
  }
  for (const s of model.subnet.values()) {
    node("subnet:" + s.id, { kind: "subnet", ref: s.id, label: `${s.name ? s.name + " " : ""}${s.cidr}`, colour: "#64b5f6" },
         "subnet");
  }
  for (const r of model.router.values()) {
    node("router:" + r.id, { kind: "router", ref: r.id, label: r.name || r.id.slice(0, 8), colour: colour(r.status) }, "router");
  }
  const instances = new Set();
  for (const p of model.port.values()) {
    if (HIDDEN_OWNERS.has(p.device_owner)) continue;
    const owner = p.device_owner || "";
    let parent;
    if (owner.startsWith("compute:") && p.device_id) {
      parent = "instance:" + p.device_id;
      if (!instances.has(parent)) {
        instances.add(parent);
        node(parent, { kind: "instance", ref: p.device_id, label: p.device_id.slice(0, 8), colour: "#90a4ae" }, "instance");
      }
    }
    const ip = (p.fixed_ips || []).map((f) => f.ip_address).join(", ");
    const cls = owner === "network:dhcp" ? "port dhcp" : "port";
    node("port:" + p.id, { kind: "port", ref: p.id, parent, colour: colour(p.status),
                           label: owner === "network:dhcp" ? `DHCP ${ip}` : (p.name || ip || p.id.slice(0, 8)) }, cls);
  }
  for (const f of model.floatingip.values()) {
    node("floatingip:" + f.id, { kind: "floatingip", ref: f.id, label: f.floating_ip_address, colour: colour(f.status) },
         "floatingip");
  }
  // Edges only once every node exists (a child's parent must be known first, too).
  for (const s of model.subnet.values()) edge("network:" + s.network_id, "subnet:" + s.id);
  for (const r of model.router.values()) {
    const gw = r.external_gateway_info && r.external_gateway_info.network_id;
    if (gw) edge("router:" + r.id, "network:" + gw, "gateway");
  }
  for (const p of model.port.values()) {
    if (HIDDEN_OWNERS.has(p.device_owner)) continue;
    const subnetId = (p.fixed_ips || []).map((f) => f.subnet_id).find((id) => model.subnet.has(id));
    edge("port:" + p.id, subnetId ? "subnet:" + subnetId : "network:" + p.network_id);
    if ((p.device_owner || "").startsWith("network:router_interface")) edge("port:" + p.id, "router:" + p.device_id);
  }
  for (const f of model.floatingip.values()) {
    if (f.port_id) edge("floatingip:" + f.id, "port:" + f.port_id, "fip");
    else edge("floatingip:" + f.id, "network:" + f.floating_network_id, "pool");
  }
  return [...nodes.values(), ...edges.values()];
}

export function layoutOptions(count) {
  // fCoSE: a force-directed layout for compound graphs (instances group their ports) whose
  // spectral first placement makes it several times quicker than cose at hundreds of nodes.
  return { name: "fcose", quality: count > 600 ? "draft" : "default", animate: false, randomize: true,
           nodeDimensionsIncludeLabels: false, idealEdgeLength: () => 45, nodeRepulsion: () => 6000,
           nestingFactor: 0.3, gravity: 0.3, packComponents: true, fit: true, padding: 20 };
}

// Apply a new element list to the graph: remove what went, update what changed, add what is new
// next to a neighbour that is already placed.
export function patch(cy, wanted) {
  const wantedIds = new Set(wanted.map((e) => e.data.id));
  cy.batch(() => {
    cy.elements().filter((e) => !wantedIds.has(e.id())).remove();
    const added = [];
    for (const el of wanted.filter((e) => e.group === "nodes")) {
      const have = cy.getElementById(el.data.id);
      if (have.nonempty()) {
        // Touch only what changed: every data or class write re-styles the element, and doing
        // that to all nodes on each event is what made one change cost a whole-graph restyle.
        const { parent, ...data } = el.data;
        const changed = {};
        for (const [key, value] of Object.entries(data)) if (have.data(key) !== value) changed[key] = value;
        if (Object.keys(changed).length) have.data(changed);
        if (!sameClasses(have, el.classes)) have.classes(el.classes);
        if ((have.parent().id() || undefined) !== parent) have.move({ parent: parent ?? null });
      } else {
        added.push(el);
      }
    }
    // Parents before children.
    added.sort((a, b) => (a.data.parent ? 1 : 0) - (b.data.parent ? 1 : 0));
    for (const el of added) cy.add(el);
    for (const el of wanted.filter((e) => e.group === "edges")) {
      if (cy.getElementById(el.data.id).empty()) cy.add(el);
    }
    for (const el of added) {
      const n = cy.getElementById(el.data.id);
      if (n.isParent()) continue;
      const anchor = n.neighborhood("node").filter((x) => !added.some((a) => a.data.id === x.id())).first();
      const base = anchor.nonempty() ? anchor.position() : { x: cy.width() / 2, y: cy.height() / 2 };
      n.position({ x: base.x + (Math.random() - 0.5) * 80, y: base.y + 30 + Math.random() * 40 });
    }
  });
}

function sameClasses(node, classes) {
  const want = classes.split(" ").filter(Boolean);
  return want.length === node.classes().length && want.every((c) => node.hasClass(c));
}

export function renderTopology(ctx) {
  const { main, session, live } = ctx;
  const graph = h("div", { id: "cy", class: "cy", role: "img", "aria-label": "Network topology graph" });
  const search = h("input", { id: "topology-search", type: "search", placeholder: "Search name, IP or id",
                              "aria-label": "Search the topology" });
  const results = h("ul", { id: "topology-results", class: "results", "aria-label": "Matches" });
  const panel = h("aside", { id: "topology-panel", class: "panel", hidden: true, "aria-label": "Details" });
  const counts = h("span", { id: "topology-counts", class: "muted" });
  const toolbar = h("div", { class: "toolbar" }, search,
    h("button", { type: "button", id: "topology-fit", onclick: () => cy && cy.fit(undefined, 20) }, "Fit"),
    h("button", { type: "button", id: "topology-layout", onclick: () => cy && cy.layout(layoutOptions(cy.elements().length)).run() }, "Re-layout"),
    h("button", { type: "button", id: "topology-zoom-in", "aria-label": "Zoom in", onclick: () => zoom(1.25) }, "+"),
    h("button", { type: "button", id: "topology-zoom-out", "aria-label": "Zoom out", onclick: () => zoom(0.8) }, "−"),
    counts);
  const legend = h("p", { class: "legend muted" }, "Status: ",
    Object.keys(STATUS_COLOURS).map((s) => statusBadge(s)), " · diamond router · blue network · star floating IP · hexagon DHCP");
  main.append(h("h1", {}, "Topology"), toolbar, legend, h("div", { class: "topology" }, graph, panel), results);

  let cy = null;
  let model = null;
  let pending = false;
  let disposed = false;
  const started = performance.now();

  function zoom(f) { if (cy) cy.zoom({ level: cy.zoom() * f, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } }); }

  function render() {
    pending = false;
    if (!cy || disposed) return;
    const t0 = performance.now();
    const wanted = elements(model);
    const t1 = performance.now();
    patch(cy, wanted);
    updateCounts();
    const t2 = performance.now();
    Object.assign(window.__topology, { updatedAt: t2, elementsMs: t1 - t0, patchMs: t2 - t1 });
    if (!panel.hidden && panel.dataset.node) showPanel(panel.dataset.node, false);
  }
  function schedule() { if (!pending) { pending = true; requestAnimationFrame(render); } }
  function updateCounts() {
    counts.textContent = `${model.network.size} networks · ${model.subnet.size} subnets · ${model.router.size} routers · ` +
      `${model.port.size} ports · ${model.floatingip.size} floating IPs`;
    graph.dataset.nodes = String(cy.nodes().length);
  }

  async function load() {
    model = await loadModel(session);
    if (disposed) return;
    const loadedAt = performance.now();
    const els = elements(model);
    if (cy) cy.destroy();
    cy = cytoscape({ container: graph, elements: els, style: STYLE, layout: layoutOptions(els.length),
                     textureOnViewport: els.length > 400, hideEdgesOnViewport: els.length > 400,
                     boxSelectionEnabled: false });
    // Timings the benchmark reads (bench/dashboard_bench.py): data fetched, laid out, first frame drawn.
    const laidOutAt = performance.now();
    window.__topology = { cy, model, loadMs: loadedAt - started, layoutMs: laidOutAt - loadedAt,
                          firstRenderMs: laidOutAt - started, updatedAt: laidOutAt };
    cy.one("render", () => { if (window.__topology) window.__topology.firstPaintMs = performance.now() - started; });
    graph.dataset.ready = "true";
    updateCounts();
    cy.on("tap", "node", (ev) => showPanel(ev.target.id(), true));
    cy.on("tap", (ev) => { if (ev.target === cy) closePanel(); });
  }

  const offChanges = live.on((changes) => {
    if (!model) return;
    let touched = false;
    for (const c of changes) touched = model.apply(c) || touched;
    if (touched) schedule();
  });
  const offResync = live.onResync(() => { load().catch((e) => toast(e.message, "error")); });

  search.addEventListener("input", () => doSearch(search.value.trim().toLowerCase()));
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); results.querySelector("button")?.click(); }
  });

  function doSearch(term) {
    if (!cy) return;
    cy.elements().removeClass("match");
    results.replaceChildren();
    if (!term) return;
    const matches = cy.nodes().filter((n) => {
      const obj = objectOf(n.id());
      const hay = [n.data("label"), n.data("ref"), obj && obj.name,
                   obj && (obj.fixed_ips || []).map((f) => f.ip_address).join(" "),
                   obj && obj.floating_ip_address, obj && obj.cidr].join(" ").toLowerCase();
      return hay.includes(term);
    });
    matches.addClass("match");
    if (matches.nonempty()) cy.fit(matches, 60);
    matches.slice(0, 30).forEach((n) => results.append(h("li", {}, h("button", { type: "button", class: "link",
      onclick: () => { cy.$(":selected").unselect(); n.select(); cy.center(n); showPanel(n.id(), true); } },
      `${n.data("kind")}: ${n.data("label")}`))));
  }

  function objectOf(nodeId) {
    const [kind, id] = [nodeId.slice(0, nodeId.indexOf(":")), nodeId.slice(nodeId.indexOf(":") + 1)];
    if (kind === "instance") return { id, name: id, ports: [...model.port.values()].filter((p) => p.device_id === id) };
    return model[kind] ? model[kind].get(id) : null;
  }

  function closePanel() { panel.hidden = true; delete panel.dataset.node; }

  function showPanel(nodeId, focus) {
    const kind = nodeId.slice(0, nodeId.indexOf(":"));
    const obj = objectOf(nodeId);
    if (!obj) { closePanel(); return; }
    panel.dataset.node = nodeId;
    panel.hidden = false;
    const rows = detailRows(kind, obj);
    panel.replaceChildren(
      h("div", { class: "panel-head" }, h("h2", {}, `${kind} ${obj.name || obj.floating_ip_address || ""}`),
        h("button", { type: "button", class: "panel-close", "aria-label": "Close details", onclick: closePanel }, "×")),
      h("dl", { class: "details" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("div", { class: "panel-actions", id: "panel-actions" }, actions(kind, obj)));
    if (focus) panel.querySelector("button, select, input")?.focus();
  }

  function detailRows(kind, o) {
    const rows = [["id", o.id]];
    if (o.status) rows.push(["status", statusBadge(o.status)]);
    if (kind === "network") rows.push(["external", fmt(o["router:external"])], ["subnets", fmt(o.subnets)]);
    if (kind === "subnet") rows.push(["cidr", o.cidr], ["gateway", fmt(o.gateway_ip)], ["DHCP", fmt(o.enable_dhcp)]);
    if (kind === "router") rows.push(["gateway", fmt(o.external_gateway_info && o.external_gateway_info.network_id)],
                                     ["routes", fmt(o.routes)]);
    if (kind === "port") rows.push(["owner", fmt(o.device_owner)], ["device", fmt(o.device_id)],
                                   ["addresses", fmt(o.fixed_ips)], ["MAC", o.mac_address]);
    if (kind === "floatingip") rows.push(["address", o.floating_ip_address], ["port", fmt(o.port_id)],
                                         ["fixed IP", fmt(o.fixed_ip_address)]);
    if (kind === "instance") rows.push(["ports", o.ports.map((p) => (p.fixed_ips || []).map((f) => f.ip_address).join(" ")).join(", ")]);
    return rows;
  }

  // Run an API action from the panel; its error is shown in the panel, next to the action.
  function act(label, fn, cls = "") {
    return h("button", { type: "button", class: cls, dataset: { action: label }, onclick: async (ev) => {
      const btn = ev.currentTarget;
      btn.disabled = true;
      try { await fn(); } catch (e) { panelError(e); } finally { btn.disabled = false; }
    } }, label);
  }
  function panelError(e) {
    let box = panel.querySelector(".form-error");
    if (!box) { box = h("p", { class: "form-error", role: "alert" }); panel.append(box); }
    box.textContent = e instanceof ApiError ? e.message : String(e);
  }
  function picker(id, label, options) {
    return h("label", { class: "field" }, label,
      h("select", { id }, options.map(([v, text]) => h("option", { value: v }, text))));
  }
  const value = (id) => panel.querySelector("#" + id).value;
  const del = (what, path) => async () => {
    if (await confirmDelete(what)) { await api.del(path); closePanel(); toast(`Deleted ${what}`); }
  };

  function actions(kind, o) {
    const ext = [...model.network.values()].filter((n) => n["router:external"]);
    if (kind === "network") {
      return [h("a", { href: `#/networks/${o.id}`, class: "button" }, "Open"),
              o["router:external"] && o.project_id !== session.project.id ? null
                : act("Delete network", del(`network ${o.name}`, `v2.0/networks/${o.id}`), "danger")];
    }
    if (kind === "subnet") {
      const routers = [...model.router.values()];
      return [routers.length ? [picker("attach-router", "Router", routers.map((r) => [r.id, r.name || r.id])),
        act("Attach to router", async () => {
          await api.put(`v2.0/routers/${value("attach-router")}/add_router_interface`, { subnet_id: o.id });
          toast("Interface added");
        })] : null,
        act("Delete subnet", del(`subnet ${o.name || o.cidr}`, `v2.0/subnets/${o.id}`), "danger")];
    }
    if (kind === "router") {
      const attached = [...model.port.values()].filter((p) => p.device_id === o.id && p.device_owner.startsWith("network:router_interface"));
      const subnets = [...model.subnet.values()].filter((s) => !model.network.get(s.network_id)?.["router:external"]);
      return [
        picker("router-gateway", "Gateway network", [["", "none"], ...ext.map((n) => [n.id, n.name])]),
        act("Set gateway", () => api.put(`v2.0/routers/${o.id}`, { router: {
          external_gateway_info: value("router-gateway") ? { network_id: value("router-gateway") } : null } })),
        subnets.length ? [picker("router-add-subnet", "Subnet", subnets.map((s) => [s.id, `${s.name || ""} ${s.cidr}`])),
          act("Add interface", () => api.put(`v2.0/routers/${o.id}/add_router_interface`, { subnet_id: value("router-add-subnet") }))] : null,
        attached.length ? [picker("router-remove-port", "Interface", attached.map((p) => [p.id, fmt(p.fixed_ips)])),
          act("Remove interface", () => api.put(`v2.0/routers/${o.id}/remove_router_interface`, { port_id: value("router-remove-port") }))] : null,
        h("a", { href: `#/routers/${o.id}`, class: "button" }, "Open"),
        act("Delete router", del(`router ${o.name}`, `v2.0/routers/${o.id}`), "danger")];
    }
    if (kind === "port") {
      const owner = o.device_owner || "";
      if (owner.startsWith("network:router_interface")) {
        return [act("Detach from router", () => api.put(`v2.0/routers/${o.device_id}/remove_router_interface`, { port_id: o.id }))];
      }
      if (owner === "network:dhcp") return [];
      const fips = [...model.floatingip.values()];
      const bound = fips.find((f) => f.port_id === o.id);
      const free = fips.filter((f) => !f.port_id);
      return [
        bound ? act("Release floating IP association", () => api.put(`v2.0/floatingips/${bound.id}`, { floatingip: { port_id: null } }))
          : [picker("fip-choice", "Floating IP", [...free.map((f) => [f.id, f.floating_ip_address]),
                                                  ...ext.map((n) => ["new:" + n.id, `new from ${n.name}`])]),
             act("Associate floating IP", async () => {
               const choice = value("fip-choice");
               if (choice.startsWith("new:")) {
                 await api.post("v2.0/floatingips", { floatingip: { floating_network_id: choice.slice(4), port_id: o.id } });
               } else {
                 await api.put(`v2.0/floatingips/${choice}`, { floatingip: { port_id: o.id } });
               }
               toast("Floating IP associated");
             })],
        h("a", { href: `#/ports/${o.id}`, class: "button" }, "Open"),
        act("Delete port", del(`port ${o.name || o.id}`, `v2.0/ports/${o.id}`), "danger")];
    }
    if (kind === "floatingip") {
      return [o.port_id ? act("Disassociate", () => api.put(`v2.0/floatingips/${o.id}`, { floatingip: { port_id: null } })) : null,
              act("Release floating IP", del(`floating IP ${o.floating_ip_address}`, `v2.0/floatingips/${o.id}`), "danger")];
    }
    if (kind === "instance") {
      return o.ports.map((p) => h("button", { type: "button", onclick: () => showPanel("port:" + p.id, true) },
                                  `Port ${fmt(p.fixed_ips)}`));
    }
    return [];
  }

  if (typeof cytoscape === "undefined") {
    main.append(h("p", { class: "form-error" }, "The graph library did not load."));
  } else {
    load().catch((e) => main.append(h("p", { class: "form-error", role: "alert" }, e.message)));
  }
  return () => {
    disposed = true;
    offChanges();
    offResync();
    if (cy) cy.destroy();
    window.__topology = undefined;
  };
}
