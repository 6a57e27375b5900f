// The launcher: sliders and conditional fields, live validation by the server, save, restore
// defaults, and the launch itself with its progress streamed over server-sent events.
import { ProblemError, post, readEvents } from "./api.js";
import { canonical, collect, pathOf, readInput, restore } from "./formvalues.js";
import { clearErrors, showProblem, toast } from "./ui.js";

const form = document.getElementById("launch-form");
const { catalog, chart, version, project } = form.dataset;
const inputs = [...form.querySelectorAll("[data-value-input]")];
const validity = document.getElementById("validity");
const launchButton = document.getElementById("launch-button");

// --- sliders ---------------------------------------------------------------------------------

function showSlider(input) {
  const text = `${input.value}${input.dataset.unit || ""}`;
  input.setAttribute("aria-valuetext", text);
  const output = document.querySelector(`output[data-output-for="${input.id}"]`);
  if (output) output.textContent = text;
}

function paintRange(box) {
  const [low, high] = box.querySelectorAll("input[type=range]");
  const min = Number(low.min);
  const span = Number(low.max) - min || 1;
  const fill = box.querySelector("[data-dual-fill]");
  const from = ((Number(low.value) - min) / span) * 100;
  const to = ((Number(high.value) - min) / span) * 100;
  // CSSOM writes are allowed by the CSP (style attributes in markup are not).
  fill.style.left = `${from}%`;
  fill.style.width = `${Math.max(0, to - from)}%`;
}

for (const box of form.querySelectorAll("[data-dual-range]")) {
  const [low, high] = box.querySelectorAll("input[type=range]");
  const keepOrder = (moved) => {
    // The guaranteed amount never exceeds the maximum: the other thumb follows.
    if (Number(low.value) > Number(high.value)) {
      if (moved === low) high.value = low.value;
      else low.value = high.value;
      showSlider(moved === low ? high : low);
    }
    showSlider(moved);
    paintRange(box);
  };
  low.addEventListener("input", () => keepOrder(low));
  high.addEventListener("input", () => keepOrder(high));
  paintRange(box);
}
for (const input of inputs) {
  if (input.type === "range") {
    input.addEventListener("input", () => showSlider(input));
    showSlider(input);
  }
}

// GPUs: say so when asking for more than are free right now.
for (const warning of form.querySelectorAll("[data-gpu-warning]")) {
  const input = document.getElementById(warning.dataset.gpuWarning);
  const free = Number(form.querySelector(`[data-gpu-hint="${warning.dataset.gpuWarning}"]`)?.dataset.gpuFree ?? 0);
  const check = () => {
    const wanted = Number(input.value);
    warning.hidden = !(wanted > free);
    warning.textContent = `You ask for ${wanted} GPU${wanted === 1 ? "" : "s"} but only ${free} ${free === 1 ? "is" : "are"} free now: the service cannot start until one node has that many free.`;
  };
  input.addEventListener("input", check);
  check();
}

// --- conditional fields (`hidden: {path, value}`) -------------------------------------------

const bySlashPath = new Map(inputs.map((i) => [pathOf(i).join("/"), i]));
const rules = [...form.querySelectorAll("[data-hidden-path]")];

function applyRules() {
  for (const element of rules) {
    const source = bySlashPath.get(element.dataset.hiddenPath);
    if (!source) continue;
    let current;
    try {
      current = readInput(source);
    } catch {
      continue;
    }
    element.hidden = canonical(current) === canonical(JSON.parse(element.dataset.hiddenValue));
  }
}
applyRules();

// --- live validation -------------------------------------------------------------------------

let validation = 0;
let timer = null;

function yamlErrors(broken) {
  for (const { input, message } of broken) {
    const slot = document.getElementById(`${input.id}-error`);
    if (slot) slot.textContent = message;
    input.setAttribute("aria-invalid", "true");
  }
}

async function validate() {
  const ticket = ++validation;
  const { values, broken } = collect(form);
  if (broken.length) {
    clearErrors(form);
    yamlErrors(broken);
    validity.textContent = "Some settings cannot be read: see the messages next to them.";
    return;
  }
  validity.textContent = "Checking…";
  try {
    await post(`/api/catalogs/${catalog}/charts/${chart}/validate`, { version, project, values });
    if (ticket !== validation) return;
    clearErrors(form);
    validity.textContent = "Your settings are valid.";
    validity.className = "validity ok small";
  } catch (error) {
    if (ticket !== validation) return;
    if (!(error instanceof ProblemError)) throw error;
    if (error.status === 422) {
      const { placed } = showProblem(form, error, { summary: false });
      validity.textContent = placed
        ? `${placed} setting${placed > 1 ? "s need" : " needs"} a change: see the messages next to ${placed > 1 ? "them" : "it"}.`
        : error.friendly;
    } else {
      validity.textContent = error.friendly;
    }
    validity.className = "validity bad small";
  }
}

function soon() {
  clearTimeout(timer);
  timer = setTimeout(validate, 400);
}

form.addEventListener("input", (event) => {
  if (event.target.matches("[data-value-input], [data-raw-values]")) {
    applyRules();
    soon();
  }
});
form.addEventListener("change", () => {
  applyRules();
  soon();
});

// --- restore defaults, save --------------------------------------------------------------

document.getElementById("reset-button").addEventListener("click", () => {
  const raw = form.querySelector("[data-raw-values]");
  if (raw) raw.value = raw.defaultValue;
  for (const input of inputs) {
    restore(input);
    if (input.type === "range") input.dispatchEvent(new Event("input", { bubbles: false }));
  }
  for (const box of form.querySelectorAll("[data-dual-range]")) paintRange(box);
  applyRules();
  clearErrors(form);
  validate();
  toast("Defaults restored.");
});

const saveDialog = document.getElementById("save-dialog");
const saveForm = document.getElementById("save-form");
document.getElementById("save-button").addEventListener("click", () => {
  clearErrors(saveForm);
  saveDialog.showModal();
  document.getElementById("save-name").select();
});
saveForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("save-name").value.trim();
  if (!name) {
    document.getElementById("save-name-error").textContent = "Give it a name.";
    return;
  }
  const { values, broken } = collect(form);
  if (broken.length) {
    saveDialog.close();
    yamlErrors(broken);
    broken[0].input.focus();
    return;
  }
  try {
    await post(`/api/projects/${project}/saved`, { name, catalog, chart, version, values });
    saveDialog.close();
    toast(`Configuration “${name}” saved: find it in My services.`);
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    const named = error.errors.filter((e) => e.field === "name");
    if (named.length) {
      document.getElementById("save-name-error").textContent = named.map((e) => e.reason).join(" ");
      return;
    }
    saveDialog.close();
    showProblem(form, error);
    document.getElementById("form-errors").focus();
  }
});

// --- launch --------------------------------------------------------------------------------

const progress = document.getElementById("launch-progress");
const timeline = document.getElementById("timeline");
const message = document.getElementById("progress-message");
const phases = [...timeline.querySelectorAll("[data-phase]")].map((li) => li.dataset.phase);

function mark(phase, failed) {
  const reached = phase === "failed" ? -1 : phases.indexOf(phase);
  let current = reached;
  if (failed) current = Math.max(0, [...timeline.children].findLastIndex((li) => li.classList.contains("done")) + 1);
  [...timeline.children].forEach((li, index) => {
    li.classList.toggle("done", index < current || (index === current && phase === "running"));
    li.classList.toggle("current", index === current && !failed && phase !== "running");
    li.classList.toggle("failed", failed && index === current);
    if (index === current) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
}

function busy(on) {
  launchButton.disabled = on;
  launchButton.textContent = on ? "Launching…" : "Launch";
  form.setAttribute("aria-busy", String(on));
}

async function follow(accepted) {
  const link = document.getElementById("progress-link");
  link.href = `/services/${accepted.release}`;
  let last = null;
  try {
    await readEvents(accepted.events_url, (name, data) => {
      if (name !== "phase") return;
      last = data;
      mark(data.phase, data.phase === "failed");
      message.textContent = data.message || "";
    });
  } catch (error) {
    message.textContent = `Lost the progress of the launch (${error.friendly || error}). The service may still start: check My services.`;
    document.getElementById("progress-actions").hidden = false;
    busy(false);
    return;
  }
  if (last?.phase === "running") {
    message.textContent = "Running. Opening the service page…";
    window.location.assign(`/services/${accepted.release}`);
    return;
  }
  progress.classList.add("failed");
  const why = last?.message || "The launch did not finish.";
  message.textContent = `The launch failed: ${why}`;
  showProblem(form, { errors: [], friendly: `The launch failed: ${why}`, detail: why });
  busy(false);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearTimeout(timer);
  const { values, broken } = collect(form);
  if (broken.length) {
    clearErrors(form);
    yamlErrors(broken);
    broken[0].input.focus();
    return;
  }
  const body = { catalog, chart, version, values, friendly_name: document.getElementById("friendly-name").value.trim() || null };
  const share = document.getElementById("share");
  if (share) body.share = share.checked;
  busy(true);
  clearErrors(form);
  try {
    const accepted = await post(`/api/projects/${project}/services`, body);
    progress.hidden = false;
    progress.classList.remove("failed");
    document.getElementById("progress-actions").hidden = true;
    mark("accepted", false);
    message.textContent = `Accepted as ${accepted.release}.`;
    // A warning stays in view while the progress changes below it (the service page keeps it).
    const warned = document.getElementById("progress-warning");
    warned.hidden = !accepted.warning;
    warned.textContent = accepted.warning ? `Warning: ${accepted.warning}` : "";
    progress.scrollIntoView({ block: "nearest" });
    await follow(accepted);
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    busy(false);
    const { first } = showProblem(form, error);
    (first || document.getElementById("form-errors")).focus();
  }
});

validate();
