// One service: its launch timeline (server-sent events while this server follows the launch),
// a status that refreshes itself, logs (tail or follow, per container), suspend/resume/delete.
import { ProblemError, del, get, post, readEvents } from "./api.js";
import { confirmDialog, relativeTimes, toast } from "./ui.js";

const head = document.getElementById("service");
const { project, release } = head.dataset;
const base = `/api/projects/${project}/services/${release}`;
const timeline = document.getElementById("timeline");
const statusMessage = document.getElementById("status-message");
const phases = [...timeline.querySelectorAll("[data-phase]")].map((li) => li.dataset.phase);

function mark(phase, failed) {
  let current = phases.indexOf(phase);
  if (failed) current = Math.max(0, [...timeline.children].findLastIndex((li) => li.classList.contains("done")) + 1);
  [...timeline.children].forEach((li, index) => {
    const done = index < current || (phase === "running" && index <= current);
    li.classList.toggle("done", done);
    li.classList.toggle("current", index === current && !failed && phase !== "running");
    li.classList.toggle("failed", failed && index === current);
    if (index === current) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
}

function markFromBadge() {
  const label = document.getElementById("service-status").textContent.trim();
  if (label === "Running") mark("running", false);
  else if (label === "Failed") mark("failed", true);
  else if (label === "Suspended") timeline.classList.add("muted-timeline");
  else mark("installing", false);
}

async function followLaunch() {
  let seen = false;
  try {
    await readEvents(`${base}/events`, (name, data) => {
      if (name !== "phase") return;
      seen = true;
      mark(data.phase, data.phase === "failed");
      statusMessage.textContent = data.message || data.phase;
    });
  } catch (error) {
    if (!(error instanceof ProblemError) || error.status !== 404) {
      statusMessage.textContent = error.friendly || String(error);
    }
  }
  if (!seen) markFromBadge();
  await refresh();
}

// The server renders status and pods; a refresh swaps in its newer rendering.
async function refresh() {
  const response = await fetch(window.location.pathname, { credentials: "same-origin" });
  if (response.status === 404) {
    statusMessage.textContent = "This service no longer exists.";
    return false;
  }
  if (!response.ok) return true;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["service-status", "pods"]) {
    const fresh = doc.getElementById(id);
    const here = document.getElementById(id);
    if (fresh && here && fresh.outerHTML !== here.outerHTML) here.replaceWith(fresh);
  }
  const freshHead = doc.getElementById("service");
  if (freshHead) {
    for (const action of ["suspend", "resume"]) {
      const mine = head.querySelector(`[data-action="${action}"]`);
      const theirs = freshHead.querySelector(`[data-action="${action}"]`);
      if (mine && theirs) mine.hidden = theirs.hidden;
    }
    const message = doc.getElementById("status-message");
    if (message && !timeline.querySelector(".current")) statusMessage.textContent = message.textContent;
  }
  relativeTimes();
  markFromBadge();
  return true;
}

async function keepFresh() {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 5000));
    if (document.hidden) continue;
    if (!(await refresh())) return;
  }
}

// --- logs ------------------------------------------------------------------------------------

const logs = document.getElementById("logs");
const MAX_LINES = 5000;
let stream = null;

function atBottom() {
  return logs.scrollHeight - logs.scrollTop - logs.clientHeight < 40;
}

function append(lines) {
  const stick = atBottom();
  const text = logs.textContent === "Loading…" ? "" : logs.textContent;
  const all = (text ? `${text}\n` : "") + lines.join("\n");
  const kept = all.split("\n");
  logs.textContent = kept.length > MAX_LINES ? kept.slice(-MAX_LINES).join("\n") : all;
  if (stick) logs.scrollTop = logs.scrollHeight;
}

async function loadLogs() {
  stream?.abort();
  stream = null;
  const [pod, container] = document.getElementById("logs-container").value.split("|");
  const query = `pod=${encodeURIComponent(pod)}&container=${encodeURIComponent(container)}&tail=200`;
  logs.textContent = "Loading…";
  try {
    if (document.getElementById("logs-follow").checked) {
      stream = new AbortController();
      logs.textContent = "";
      logs.dataset.following = "true";
      await readEvents(`${base}/logs?${query}&follow=true`, (name, line) => {
        if (name === "line") append([String(line)]);
      }, stream.signal);
      logs.dataset.following = "false";
    } else {
      const answer = await get(`${base}/logs?${query}`);
      logs.textContent = answer.lines.join("\n") || "(no log line yet)";
      logs.scrollTop = logs.scrollHeight;
    }
  } catch (error) {
    logs.textContent = `Cannot read the logs: ${error.friendly || error}`;
  }
}

if (logs) {
  document.getElementById("logs-container").addEventListener("change", loadLogs);
  document.getElementById("logs-follow").addEventListener("change", loadLogs);
  document.getElementById("logs-reload").addEventListener("click", loadLogs);
  document.getElementById("logs-form").addEventListener("submit", (event) => event.preventDefault());
  loadLogs();
}

// --- actions ---------------------------------------------------------------------------------

head.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  const name = document.querySelector("h1").firstChild.textContent.trim();
  try {
    if (button.dataset.action === "delete") {
      const ok = await confirmDialog({
        title: `Delete ${name}?`,
        message: "The service, its settings and its volumes are deleted. This cannot be undone.",
        confirmLabel: "Delete",
        danger: true,
      });
      if (!ok) return;
      stream?.abort();
      await del(base);
      toast(`${name} deleted.`);
      window.location.assign("/services");
      return;
    }
    const action = button.dataset.action;
    button.disabled = true;
    button.textContent = action === "suspend" ? "Suspending…" : "Resuming…";
    await post(`${base}/${action}`);
    toast(action === "suspend" ? `${name} suspended: its data stays.` : `${name} is running again.`);
    button.textContent = action === "suspend" ? "Suspend" : "Resume";
    button.disabled = false;
    await refresh();
    if (logs) loadLogs();
  } catch (error) {
    button.disabled = false;
    toast(error instanceof ProblemError ? error.friendly : String(error), "bad");
  }
});

followLaunch().then(keepFresh);
