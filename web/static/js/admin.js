// Administration: catalogue refresh/add/change/remove, every service with suspend/delete, and
// the services holding GPUs.
import { ProblemError, del, get, post, put } from "./api.js";
import { clearErrors, confirmDialog, relative, showProblem, toast } from "./ui.js";
import { YamlError, parseYaml } from "./yaml.js";

const friendly = (error) => (error instanceof ProblemError ? error.friendly : String(error));

// --- catalogues list -------------------------------------------------------------------------

function badge(text, tone) {
  return Object.assign(document.createElement("span"), { className: `badge badge-${tone}`, textContent: text });
}

document.getElementById("catalogs-table")?.addEventListener("click", async (event) => {
  const refresh = event.target.closest("[data-refresh]");
  const remove = event.target.closest("[data-remove]");
  if (refresh) {
    const id = refresh.dataset.refresh;
    const row = refresh.closest("tr");
    refresh.disabled = true;
    refresh.firstChild.textContent = "Refreshing…";
    try {
      const status = await post(`/api/admin/catalogs/${id}/refresh`);
      const cell = row.querySelector("[data-load-status]");
      if (status.last_error) {
        cell.replaceChildren(badge("failed", "bad"), ` ${status.last_error}`);
        toast(`${id}: the refresh failed (${status.last_error}); the last good copy stays.`, "bad");
      } else {
        const took = status.duration_seconds == null ? "" : ` in ${status.duration_seconds.toFixed(1)} s`;
        cell.replaceChildren(badge("ok", "ok"), ` refreshed ${relative(status.last_success)}${took}`);
        toast(`${id} refreshed: ${status.chart_count} charts.`);
      }
      row.querySelector("[data-chart-count]").textContent = status.chart_count;
    } catch (error) {
      toast(friendly(error), "bad");
    } finally {
      refresh.disabled = false;
      refresh.firstChild.textContent = "Refresh";
    }
  } else if (remove) {
    const id = remove.dataset.remove;
    const ok = await confirmDialog({
      title: `Remove the catalogue ${id}?`,
      message: "Users no longer see its charts. Services already launched from it keep running.",
      confirmLabel: "Remove",
      danger: true,
    });
    if (!ok) return;
    try {
      await del(`/api/admin/catalogs/${id}`);
      remove.closest("tr").remove();
      toast(`${id} removed.`);
    } catch (error) {
      toast(friendly(error), "bad");
    }
  }
});

// --- catalogue form --------------------------------------------------------------------------

const catalogForm = document.getElementById("catalog-form");

function definitionOf(form) {
  const field = (name) => form.elements[name];
  const text = (name) => field(name).value.trim();
  let extras = {};
  if (text("extras")) {
    extras = parseYaml(field("extras").value);
    if (!extras || typeof extras !== "object" || Array.isArray(extras)) {
      throw new YamlError("write fields as “key: value” lines");
    }
  }
  const list = (name) =>
    text(name)
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const definition = {
    ...extras,
    id: text("id"),
    location: text("location"),
    status: field("status").value,
    multipleServicesMode: field("multipleServicesMode").value,
    maxNumberOfVersions: Number(text("maxNumberOfVersions") || 5),
    highlightedCharts: list("highlightedCharts"),
    excludedCharts: list("excludedCharts"),
    skipTlsVerify: field("skipTlsVerify").checked,
    visible: { user: field("visible.user").checked, project: field("visible.project").checked },
  };
  for (const name of ["name", "description", "username", "password"]) {
    if (text(name)) definition[name] = name === "password" ? field(name).value : text(name);
  }
  if (!definition.name) definition.name = definition.id;
  return { definition, extras };
}

catalogForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(catalogForm);
  let built;
  try {
    built = definitionOf(catalogForm);
  } catch (error) {
    if (!(error instanceof YamlError)) throw error;
    showProblem(catalogForm, { errors: [{ field: "extras", reason: error.message }], detail: "" });
    catalogForm.elements.extras.focus();
    return;
  }
  const { definition, extras } = built;
  const creating = catalogForm.dataset.mode === "create";
  try {
    if (creating) await post("/api/admin/catalogs", definition);
    else await put(`/api/admin/catalogs/${catalogForm.dataset.id}`, definition);
    window.location.assign("/admin/catalogs");
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    // Fields typed in the YAML box are reported there.
    error.errors = error.errors.map((e) =>
      Object.hasOwn(extras, e.field.split(".")[0]) ? { field: "extras", reason: `${e.field}: ${e.reason}` } : e,
    );
    const { first } = showProblem(catalogForm, error);
    (first || document.getElementById("form-errors")).focus();
  }
});

// --- every service ---------------------------------------------------------------------------

// GET /api/admin/services lists every service with its project (its namespace); the actions
// name it by namespace and release.
const adminUrl = (s) => `/api/admin/services/${s.project}/${s.id}`;
const TONES = { running: "ok", starting: "busy", suspended: "off", failed: "bad", deleting: "busy" };

function actionButton(action, label, danger) {
  const button = Object.assign(document.createElement("button"), {
    type: "button",
    className: danger ? "btn btn-small btn-danger-quiet" : "btn btn-small",
    textContent: label,
  });
  button.dataset.adminAction = action;
  const hidden = Object.assign(document.createElement("span"), { className: "visually-hidden" });
  button.append(hidden);
  return button;
}

function serviceRow(service) {
  const tr = document.createElement("tr");
  tr.dataset.search = [service.owner, service.project, service.chart, service.friendly_name, service.id]
    .join(" ")
    .toLowerCase();
  const name = document.createElement("th");
  name.scope = "row";
  name.append(service.friendly_name || service.id, document.createElement("br"));
  name.append(Object.assign(document.createElement("code"), { className: "small", textContent: service.id }));
  const cells = [service.project, service.owner, `${service.chart} ${service.version}`];
  const status = document.createElement("td");
  const label = service.status ? service.status[0].toUpperCase() + service.status.slice(1) : "Unknown";
  status.append(badge(label, TONES[service.status] || "busy"));
  if (service.reason) status.append(Object.assign(document.createElement("div"), { className: "small muted", textContent: service.reason }));
  const since = document.createElement("td");
  since.textContent = service.running_since ? relative(service.running_since) : "";
  const gpus = document.createElement("td");
  gpus.textContent = service.gpus || "";
  const actions = document.createElement("td");
  actions.className = "actions";
  const who = ` ${service.friendly_name || service.id} of ${service.owner}`;
  if (service.status === "running" || service.status === "starting") actions.append(actionButton("suspend", "Suspend", false));
  if (service.status === "suspended") actions.append(actionButton("resume", "Resume", false));
  actions.append(actionButton("delete", "Delete", true));
  for (const button of actions.querySelectorAll(".visually-hidden")) button.textContent = who;
  tr.append(name, ...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })), status, since, gpus, actions);
  tr.service = service;
  return tr;
}

function servicesTable(services, caption) {
  const table = document.createElement("table");
  table.className = "table";
  const cap = document.createElement("caption");
  cap.textContent = caption;
  const thead = document.createElement("thead");
  const headRow = document.createElement("tr");
  for (const title of ["Service", "Project", "User", "Chart", "Status", "Running since", "GPUs", ""]) {
    const th = document.createElement("th");
    th.scope = "col";
    if (title) th.textContent = title;
    else th.append(Object.assign(document.createElement("span"), { className: "visually-hidden", textContent: "Actions" }));
    headRow.append(th);
  }
  thead.append(headRow);
  const tbody = document.createElement("tbody");
  tbody.append(...services.map(serviceRow));
  table.append(cap, thead, tbody);
  return table;
}

async function loadServices(box, onlyGpus) {
  let services;
  try {
    services = await get("/api/admin/services");
  } catch (error) {
    const text = error instanceof ProblemError && error.status === 404
      ? "This server does not list every service yet (GET /api/admin/services is missing)."
      : `Cannot list the services: ${friendly(error)}`;
    box.replaceChildren(Object.assign(document.createElement("p"), { className: "notice", textContent: text }));
    return;
  }
  if (onlyGpus) services = services.filter((s) => s.gpus > 0);
  services.sort((a, b) => (a.owner + a.namespace + a.id).localeCompare(b.owner + b.namespace + b.id));
  if (!services.length) {
    box.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: onlyGpus ? "No service holds a GPU." : "No service on the platform." }));
    return;
  }
  const users = new Set(services.map((s) => s.owner)).size;
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  box.replaceChildren(servicesTable(services, `${plural(services.length, "service")} of ${plural(users, "user")}`));
}

async function adminAction(event) {
  const button = event.target.closest("[data-admin-action]");
  if (!button) return;
  const row = button.closest("tr");
  const service = row.service;
  const name = service.friendly_name || service.id;
  const action = button.dataset.adminAction;
  const verb = { delete: "Delete", suspend: "Suspend", resume: "Resume" }[action];
  const ok = await confirmDialog({
    title: `${verb} ${name} of ${service.owner}?`,
    message: {
      delete: "The service and its volumes are deleted. Its owner cannot undo this.",
      suspend: "It stops running; its data stays and its owner can resume it.",
      resume: "It runs again with the chart version it was installed with.",
    }[action],
    confirmLabel: verb,
    danger: action === "delete",
  });
  if (!ok) return;
  button.disabled = true;
  try {
    if (action === "delete") {
      await del(adminUrl(service));
      row.remove();
    } else {
      await post(`${adminUrl(service)}/${action}`);
      row.replaceWith(serviceRow({ ...service, status: action === "suspend" ? "suspended" : "starting", reason: null }));
    }
    toast(`${name} of ${service.owner}: ${action === "delete" ? "deleted" : action === "suspend" ? "suspended" : "resuming"}. The action is audited.`);
  } catch (error) {
    button.disabled = false;
    toast(friendly(error), "bad");
  }
}

const everyService = document.querySelector("[data-admin-services]");
if (everyService) {
  everyService.addEventListener("click", adminAction);
  loadServices(everyService, false);
  const filter = document.getElementById("svc-filter");
  filter.form.addEventListener("submit", (event) => event.preventDefault());
  filter.addEventListener("input", () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const row of everyService.querySelectorAll("tbody tr")) {
      row.hidden = !words.every((w) => row.dataset.search.includes(w));
    }
  });
}

const gpuServices = document.querySelector("[data-gpu-services]");
if (gpuServices) {
  gpuServices.addEventListener("click", adminAction);
  loadServices(gpuServices, true);
}
