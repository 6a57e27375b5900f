// My services: live status and quota (server-sent snapshots), notes, suspend/resume, rename,
// share, delete (one or all), and the saved configurations.
import { ProblemError, del, get, patch, post, readEvents } from "./api.js";
import { confirmDialog, element, promptDialog, relativeTimes, toast } from "./ui.js";

const list = document.getElementById("service-cards");
const project = list.dataset.project;
const base = `/api/projects/${project}/services`;

const TONES = { running: "ok", starting: "busy", suspended: "off", failed: "bad", deleting: "busy" };

/** The words and tone of a status (as onyxia_py/ui/services.py's Status.of). */
export function statusOf(status) {
  return [status ? status[0].toUpperCase() + status.slice(1) : "Unknown", TONES[status] || "busy"];
}

const cards = () => [...list.querySelectorAll("[data-release]")];
const cardOf = (release) => document.getElementById(`svc-${release}`);

function paintCard(card, service) {
  const [label, tone] = statusOf(service.status);
  const badge = card.querySelector("[data-status-badge]");
  if (badge.textContent !== label) {
    badge.textContent = label;
    badge.className = `badge badge-${tone}`;
  }
  card.dataset.status = service.status;
  const reason = card.querySelector("[data-reason]");
  reason.textContent = service.reason || "";
  reason.hidden = !service.reason;
  const suspend = card.querySelector('[data-action="suspend"]');
  const resume = card.querySelector('[data-action="resume"]');
  if (suspend) suspend.hidden = label !== "Running";
  if (resume) resume.hidden = label !== "Suspended";
  // Only a running service can be opened; a suspended one says so instead of "Running since".
  for (const open of card.querySelectorAll("[data-open]")) open.hidden = service.status !== "running";
  paintSince(card, service);
  const name = card.querySelector("[data-name]");
  if (name && service.friendly_name && name.textContent !== service.friendly_name) name.textContent = service.friendly_name;
}

function paintSince(card, service) {
  const since = card.querySelector("[data-since]");
  if (!since || !service.status) return;
  const time = (iso) => element("time", { dateTime: iso }, iso);
  const created = service.created || since.dataset.created;
  const gpus = service.gpus ? ` · ${service.gpus} GPU${service.gpus === 1 ? "" : "s"}` : "";
  let parts;
  if (service.status === "suspended") parts = ["Suspended (no pod runs, the data stays) · launched ", time(created)];
  else if (service.status === "running" && service.running_since) parts = ["Running since ", time(service.running_since)];
  else parts = ["Launched ", time(created)];
  for (const node of parts) if (node instanceof Element) node.dataset.relative = "";
  since.replaceChildren(...parts, gpus);
  relativeTimes(since);
}

async function reloadCards() {
  // New services (launched elsewhere): take the page's own rendering of the list.
  const response = await fetch(window.location.pathname, { credentials: "same-origin" });
  if (!response.ok) return;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = doc.getElementById("service-cards");
  if (fresh) {
    list.replaceChildren(...fresh.children);
    relativeTimes(list);
  }
  refreshEmptyState();
}

function refreshEmptyState() {
  const any = cards().length > 0;
  document.getElementById("no-services").hidden = any;
  document.getElementById("delete-all").hidden = !cards().some((c) => c.dataset.mine === "true");
}

function paintQuota(lines) {
  for (const line of lines) {
    const gauge = document.querySelector(`[data-gauge="${CSS.escape(line.resource)}"]`);
    if (!gauge) continue;
    gauge.querySelector("[data-gauge-text]").textContent = `${line.used_text} of ${line.hard_text}`;
    const bar = gauge.querySelector("[data-gauge-bar]");
    bar.value = line.percent;
    bar.textContent = `${line.percent}%`;
    bar.className = line.percent >= 90 ? "full" : line.percent >= 70 ? "high" : "";
  }
}

function applySnapshot(services, quota) {
  const seen = new Set();
  let unknown = false;
  for (const service of services) {
    seen.add(service.id);
    const card = cardOf(service.id);
    if (card) paintCard(card, service);
    else unknown = true;
  }
  for (const card of cards()) {
    if (!seen.has(card.dataset.release)) card.remove();
  }
  if (quota) paintQuota(quota);
  if (unknown) reloadCards();
  else refreshEmptyState();
}

// Live updates: the watch stream when the server offers it, else a poll of the list.
async function watch() {
  const stop = new AbortController();
  window.addEventListener("pagehide", () => stop.abort());
  for (let failures = 0; failures < 5 && !stop.signal.aborted; ) {
    try {
      await readEvents(`/api/projects/${project}/watch`, (name, data) => {
        if (name === "snapshot") applySnapshot(data.services, data.quota);
        failures = 0;
      }, stop.signal);
    } catch (error) {
      if (error instanceof ProblemError && error.status === 404) return poll();
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, 2000 * failures));
    }
  }
  return undefined;
}

async function poll() {
  for (;;) {
    try {
      applySnapshot(await get(base), null);
    } catch {
      /* try again at the next tick */
    }
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

// --- actions ---------------------------------------------------------------------------------

async function act(card, action) {
  const release = card.dataset.release;
  const name = card.querySelector("[data-name]").textContent.trim();
  if (action === "delete") {
    const ok = await confirmDialog({
      title: `Delete ${name}?`,
      message: "The service, its settings and its volumes (files not saved elsewhere) are deleted. This cannot be undone.",
      confirmLabel: "Delete",
      danger: true,
    });
    if (!ok) return;
    await del(`${base}/${release}`);
    card.remove();
    refreshEmptyState();
    toast(`${name} deleted.`);
  } else if (action === "suspend" || action === "resume") {
    const button = card.querySelector(`[data-action="${action}"]`);
    button.disabled = true;
    button.textContent = action === "suspend" ? "Suspending…" : "Resuming…";
    try {
      await post(`${base}/${release}/${action}`);
      toast(action === "suspend" ? `${name} suspended: its data stays.` : `${name} is resuming.`);
      paintCard(card, { status: action === "suspend" ? "suspended" : "starting", friendly_name: name });
    } finally {
      button.disabled = false;
      button.textContent = action === "suspend" ? "Suspend" : "Resume";
    }
  } else if (action === "rename") {
    const fresh = await promptDialog({ title: `Rename ${name}`, label: "New name", value: name, confirmLabel: "Rename" });
    if (!fresh) return;
    const service = await patch(`${base}/${release}`, { friendly_name: fresh });
    paintCard(card, service);
    toast(`Renamed to ${fresh}.`);
  } else if (action === "share") {
    const button = card.querySelector('[data-action="share"]');
    const share = button.getAttribute("aria-pressed") !== "true";
    await patch(`${base}/${release}`, { share });
    button.setAttribute("aria-pressed", String(share));
    button.textContent = share ? "Stop sharing" : "Share";
    card.querySelector("[data-shared]").hidden = !share;
    toast(share ? `${name} is shared with the group.` : `${name} is no longer shared.`);
  }
}

list.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  try {
    await act(button.closest("[data-release]"), button.dataset.action);
  } catch (error) {
    toast(error instanceof ProblemError ? error.friendly : String(error), "bad");
  }
});

list.addEventListener(
  "toggle",
  async (event) => {
    const details = event.target;
    if (!details.matches("[data-notes]") || !details.open || details.dataset.loaded) return;
    const text = details.querySelector("[data-notes-text]");
    try {
      const service = await get(`${base}/${details.dataset.notes}`);
      text.textContent = service.notes.trim() || "This service has no notes.";
      details.dataset.loaded = "true";
    } catch (error) {
      text.textContent = error instanceof ProblemError ? error.friendly : String(error);
    }
  },
  true,
);

document.getElementById("delete-all").addEventListener("click", async () => {
  const mine = cards().filter((c) => c.dataset.mine === "true");
  const ok = await confirmDialog({
    title: `Delete all your ${mine.length} services in ${project}?`,
    message: "Every service you launched in this project is deleted with its volumes. Shared services of other members stay. This cannot be undone.",
    confirmLabel: "Delete all",
    danger: true,
  });
  if (!ok) return;
  const button = document.getElementById("delete-all");
  button.disabled = true;
  try {
    const { deleted } = await del(base);
    for (const release of deleted) cardOf(release)?.remove();
    toast(`${deleted.length} service${deleted.length === 1 ? "" : "s"} deleted.`);
  } catch (error) {
    toast(error instanceof ProblemError ? error.friendly : String(error), "bad");
  } finally {
    button.disabled = false;
    refreshEmptyState();
  }
});

// --- saved configurations --------------------------------------------------------------------

document.getElementById("saved-list")?.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-saved-action]");
  if (!button) return;
  const item = button.closest("[data-saved]");
  const id = item.dataset.saved;
  const name = item.querySelector("[data-name]").textContent;
  const url = `/api/projects/${project}/saved/${id}`;
  try {
    if (button.dataset.savedAction === "launch") {
      button.disabled = true;
      const accepted = await post(`${url}/launch`);
      window.location.assign(`/services/${accepted.release}`);
    } else if (button.dataset.savedAction === "rename") {
      const fresh = await promptDialog({ title: `Rename “${name}”`, label: "New name", value: name, confirmLabel: "Rename" });
      if (!fresh) return;
      await patch(url, { name: fresh });
      item.querySelector("[data-name]").textContent = fresh;
      toast("Renamed.");
    } else if (button.dataset.savedAction === "delete") {
      if (!(await confirmDialog({ title: `Delete “${name}”?`, message: "Only the saved settings are deleted, no service.", confirmLabel: "Delete", danger: true }))) return;
      await del(url);
      item.remove();
      toast(`“${name}” deleted.`);
    }
  } catch (error) {
    button.disabled = false;
    toast(error instanceof ProblemError ? error.friendly : String(error), "bad");
  }
});

refreshEmptyState();
watch();
