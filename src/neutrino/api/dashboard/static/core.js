// The dashboard's plumbing: DOM building, the API client (through the same-origin proxy, which
// adds the session's token), the live event stream, and small shared widgets.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)neutrino_dashboard_csrf=([^;]+)/);
  return m ? m[1] : "";
}

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

async function request(method, url, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrfToken();
  if (body !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(url, { method, headers, credentials: "same-origin",
                                  body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const err = (data && (data.NeutronError || data.error)) || {};
    const message = err.message || (typeof data === "object" && data && data.message) || `${resp.status} ${resp.statusText}`;
    if (resp.status === 401 && url.startsWith("api/")) onUnauthenticated();
    throw new ApiError(resp.status, err.type || err.title || "Error", message);
  }
  return data;
}

// The public API through the proxy: api.get("v2.0/networks", {name: "x"}).
export const api = {
  get: (path, query) => request("GET", "api/" + path + qs(query)),
  post: (path, body) => request("POST", "api/" + path, body),
  put: (path, body) => request("PUT", "api/" + path, body),
  del: (path) => request("DELETE", "api/" + path),
  session: (method, body) => request(method, "session", body),
};

export function qs(query) {
  if (!query) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x)); else p.append(k, v);
  }
  const s = p.toString();
  return s ? "?" + s : "";
}

// Every object of a collection (the API pages with links; one request when it does not).
export async function listAll(path, key, query = {}) {
  const out = [];
  let marker;
  for (;;) {
    const body = await api.get(path, { ...query, marker });
    const items = body[key] || [];
    out.push(...items);
    const next = (body[key + "_links"] || []).find((l) => l.rel === "next");
    if (!next || !items.length) return out;
    marker = new URL(next.href, location.href).searchParams.get("marker");
  }
}

// The live stream: server-sent events of committed changes the viewer may see.
export class Live {
  constructor(indicator) {
    this.indicator = indicator;
    this.listeners = new Set();
    this.resyncListeners = new Set();
    this.source = null;
    this.connectedOnce = false;
  }
  start() {
    this.stop();
    const source = new EventSource("events");
    this.source = source;
    this.set("connecting");
    source.addEventListener("ready", () => {
      this.set("live");
      if (this.connectedOnce) this.resyncListeners.forEach((fn) => fn());
      this.connectedOnce = true;
    });
    source.addEventListener("changes", (ev) => {
      const changes = JSON.parse(ev.data);
      this.listeners.forEach((fn) => fn(changes));
    });
    source.addEventListener("resync", () => this.resyncListeners.forEach((fn) => fn()));
    source.addEventListener("expired", () => { this.stop(); onUnauthenticated(); });
    source.addEventListener("error", () => this.set("connecting"));
  }
  stop() {
    if (this.source) this.source.close();
    this.source = null;
    this.connectedOnce = false;
    this.set("off");
  }
  set(state) {
    this.indicator.dataset.state = state;
    this.indicator.textContent = state === "live" ? "live" : state === "off" ? "offline" : "reconnecting";
  }
  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  onResync(fn) { this.resyncListeners.add(fn); return () => this.resyncListeners.delete(fn); }
}

export function toast(text, kind = "info") {
  const box = document.getElementById("toast");
  const item = h("div", { class: "toast-item " + kind }, text);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function confirmDelete(what) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = `Delete ${what}?`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  });
}

export function statusBadge(status) {
  return h("span", { class: "status status-" + String(status || "unknown").toLowerCase() }, status || "—");
}

export function fmt(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? fmtObject(v) : String(v))).join(", ") || "—";
  if (typeof value === "object") return fmtObject(value);
  return String(value);
}

function fmtObject(v) {
  if (v.ip_address) return v.ip_address;
  if (v.destination) return `${v.destination} via ${v.nexthop}`;
  if (v.start) return `${v.start}-${v.end}`;
  return Object.entries(v).map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`).join(" ");
}

// A form from field specs; submit(values) may throw ApiError, shown at the form and its field.
export function buildForm({ id, fields, values = {}, submitLabel = "Save", onSubmit, onCancel }) {
  const error = h("p", { class: "form-error", role: "alert", id: id + "-error", hidden: true });
  const inputs = {};
  const rows = fields.map((f) => {
    const input = fieldInput(id, f, values[f.name]);
    inputs[f.name] = input;
    return h("label", { class: "field" + (f.type === "bool" ? " check" : "") }, f.label || f.name, input,
             f.help ? h("small", {}, f.help) : null);
  });
  const submit = h("button", { type: "submit", id: id + "-submit" }, submitLabel);
  const form = h("form", { class: "form card", id, novalidate: true }, rows, error,
                 h("div", { class: "actions" }, submit,
                   onCancel ? h("button", { type: "button", class: "secondary", onclick: onCancel }, "Cancel") : null));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    Object.values(inputs).forEach((i) => i.removeAttribute("aria-invalid"));
    const out = {};
    for (const f of fields) {
      const v = readInput(f, inputs[f.name]);
      if (v !== undefined) out[f.name] = v;
    }
    submit.disabled = true;
    try {
      await onSubmit(out);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      for (const f of fields) {
        if (e.message && e.message.includes(f.name)) inputs[f.name].setAttribute("aria-invalid", "true");
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function fieldInput(formId, f, value) {
  const id = `${formId}-${f.name.replace(/[^a-z0-9_-]/gi, "_")}`;
  const v = value === undefined ? f.default : value;
  if (f.type === "bool") return h("input", { type: "checkbox", id, name: f.name, checked: !!v });
  if (f.type === "select") {
    const sel = h("select", { id, name: f.name },
                  f.optional !== false ? h("option", { value: "" }, f.placeholder || "—") : null,
                  (f.options || []).map((o) => {
                    const [val, label] = Array.isArray(o) ? o : [o, o];
                    return h("option", { value: val, selected: String(val) === String(v ?? "") }, label);
                  }));
    return sel;
  }
  if (f.type === "lines" || f.type === "routes") {
    const text = Array.isArray(v) ? v.map((x) => (f.type === "routes" ? `${x.destination} ${x.nexthop}` : x)).join("\n") : "";
    return h("textarea", { id, name: f.name, rows: 3, placeholder: f.placeholder || "one per line" }, text);
  }
  return h("input", { id, name: f.name, type: f.type === "int" ? "number" : "text", value: v ?? "",
                      placeholder: f.placeholder || "" });
}

function readInput(f, input) {
  if (f.type === "bool") return input.checked;
  const raw = input.value.trim();
  if (f.type === "lines") return raw ? raw.split(/\n+/).map((s) => s.trim()).filter(Boolean) : [];
  if (f.type === "routes") {
    return raw ? raw.split(/\n+/).map((l) => l.trim().split(/\s+/)).filter((p) => p[0])
      .map(([destination, nexthop]) => ({ destination, nexthop })) : [];
  }
  if (raw === "") return f.keepEmpty ? (f.nullIfEmpty ? null : "") : undefined;
  if (f.type === "int") return Number(raw);
  if (f.type === "select" && f.numeric) return Number(raw);
  return raw;
}
