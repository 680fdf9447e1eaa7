// The dashboard's shell: login, project switcher, logout, hash routing and the live stream.
import { api, h, Live, setUnauthenticatedHandler, toast } from "./core.js";
import { renderTopology } from "./topology.js";
import { renderList, renderDetail, RESOURCES } from "./resources.js";
import { renderAdmin } from "./admin.js";

const state = { session: null, live: null, cleanup: null };

function $(id) { return document.getElementById(id); }

function showLogin(message) {
  state.session = null;
  if (state.live) state.live.stop();
  $("shell").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("login-username").focus();
}

function showShell(session) {
  state.session = session;
  $("login").hidden = true;
  $("shell").hidden = false;
  $("whoami").textContent = `${session.user.name}${session.is_admin ? " (admin)" : ""}`;
  $("admin-nav").hidden = !session.is_admin;
  const sel = $("project-switch");
  sel.replaceChildren(...session.projects.map((p) =>
    h("option", { value: p.id, selected: session.project && p.id === session.project.id }, p.name)));
  sel.disabled = session.projects.length < 2;
  state.live.start();
  route();
}

async function login(ev) {
  ev.preventDefault();
  const form = ev.target;
  const body = Object.fromEntries(new FormData(form).entries());
  $("login-submit").disabled = true;
  try {
    const session = await api.session("POST", body);
    form.reset();
    $("login-domain").value = "Default";
    if (!location.hash || location.hash === "#/") location.hash = "#/topology";
    showShell(session);
  } catch (e) {
    showLogin(e.message);
  } finally {
    $("login-submit").disabled = false;
  }
}

async function switchProject() {
  try {
    const session = await api.session("PUT", { project_id: $("project-switch").value });
    toast(`Project ${session.project.name}`);
    showShell(session);
  } catch (e) {
    toast(e.message, "error");
  }
}

async function logout() {
  try { await api.session("DELETE"); } catch { /* the cookie is cleared either way */ }
  showLogin("");
}

function route() {
  if (!state.session) return;
  if (state.cleanup) { state.cleanup(); state.cleanup = null; }
  const main = $("main");
  main.replaceChildren();
  const parts = (location.hash.replace(/^#\/?/, "") || "topology").split("/");
  document.querySelectorAll("#nav a").forEach((a) => {
    const current = a.getAttribute("href") === "#/" + parts.slice(0, parts[0] === "admin" ? 2 : 1).join("/");
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  $("nav").classList.remove("open");
  $("nav-toggle").setAttribute("aria-expanded", "false");
  const ctx = { main, session: state.session, live: state.live };
  let cleanup;
  if (parts[0] === "topology") cleanup = renderTopology(ctx);
  else if (parts[0] === "admin") cleanup = renderAdmin(ctx, parts[1] || "agents");
  else if (RESOURCES[parts[0]] && parts[1]) cleanup = renderDetail(ctx, parts[0], parts[1]);
  else if (RESOURCES[parts[0]]) cleanup = renderList(ctx, parts[0]);
  else main.append(h("p", {}, "Nothing here."));
  state.cleanup = typeof cleanup === "function" ? cleanup : null;
}

async function boot() {
  state.live = new Live($("live"));
  setUnauthenticatedHandler(() => showLogin("Your session has ended; log in again."));
  $("login-form").addEventListener("submit", login);
  $("project-switch").addEventListener("change", switchProject);
  $("logout").addEventListener("click", logout);
  $("nav-toggle").addEventListener("click", () => {
    const open = $("nav").classList.toggle("open");
    $("nav-toggle").setAttribute("aria-expanded", String(open));
  });
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") document.querySelector(".panel-close")?.click();
  });
  const session = await api.session("GET");
  if (session && session.user) showShell(session); else showLogin("");
}

boot();
