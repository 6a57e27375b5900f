// Small page helpers: announcements, dialogs, field errors, relative times.
import { ProblemError } from "./api.js";

/** Show a short message in the corner (read out by screen readers). */
export function toast(message, tone = "ok") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = document.createElement("p");
  item.className = `toast toast-${tone}`;
  const close = Object.assign(document.createElement("button"), {
    type: "button",
    className: "toast-close",
    textContent: "×",
  });
  close.setAttribute("aria-label", "Dismiss");
  close.addEventListener("click", () => item.remove());
  item.append(document.createTextNode(message), close);
  box.append(item);
  keepClearOfFocus(box);
  setTimeout(() => item.remove(), tone === "bad" ? 12000 : 6000);
}

/** Toasts never hide the field being filled: they move to the other corner when they would. */
function keepClearOfFocus(box) {
  if (box.dataset.watching) return;
  box.dataset.watching = "true";
  const place = () => {
    const focused = document.activeElement;
    if (!focused || focused === document.body || box.contains(focused)) return;
    box.classList.remove("toasts-top");
    const a = focused.getBoundingClientRect();
    const b = box.getBoundingClientRect();
    const overlaps = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    box.classList.toggle("toasts-top", overlaps);
  };
  document.addEventListener("focusin", place);
  new MutationObserver(place).observe(box, { childList: true });
}

function dialogShell(title, body) {
  const dialog = document.createElement("dialog");
  dialog.setAttribute("aria-labelledby", "dlg-title");
  const form = document.createElement("form");
  form.method = "dialog";
  const heading = document.createElement("h2");
  heading.id = "dlg-title";
  heading.textContent = title;
  form.append(heading);
  if (body) {
    const text = document.createElement("p");
    text.textContent = body;
    form.append(text);
  }
  dialog.append(form);
  return { dialog, form };
}

function buttons(form, confirmLabel, danger) {
  const row = document.createElement("div");
  row.className = "dialog-actions";
  const cancel = document.createElement("button");
  cancel.type = "submit";
  cancel.value = "cancel";
  cancel.className = "btn";
  cancel.textContent = "Cancel";
  const ok = document.createElement("button");
  ok.type = "submit";
  ok.value = "ok";
  ok.className = danger ? "btn btn-danger" : "btn btn-primary";
  ok.textContent = confirmLabel;
  row.append(cancel, ok);
  form.append(row);
  return { cancel, ok };
}

/** Ask for confirmation in a modal dialog; resolves true when confirmed. */
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  const { dialog, form } = dialogShell(title, message);
  const { cancel } = buttons(form, confirmLabel, danger);
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus
  });
}

/** Ask for one line of text; resolves to it (trimmed), or null when cancelled or empty. */
export function promptDialog({ title, label, value = "", confirmLabel = "Save", maxLength = 100 }) {
  const { dialog, form } = dialogShell(title, "");
  const field = document.createElement("div");
  field.className = "field";
  const lab = document.createElement("label");
  lab.htmlFor = "dlg-input";
  lab.textContent = label;
  const input = document.createElement("input");
  input.id = "dlg-input";
  input.type = "text";
  input.maxLength = maxLength;
  input.value = value;
  field.append(lab, input);
  form.append(field);
  buttons(form, confirmLabel, false);
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const text = input.value.trim();
      resolve(dialog.returnValue === "ok" && text ? text : null);
      dialog.remove();
    });
    dialog.showModal();
    input.select();
  });
}

/** Remove the field errors shown in `root`. */
export function clearErrors(root) {
  for (const slot of root.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const input of root.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const summary = root.querySelector(".error-summary");
  if (summary) {
    summary.hidden = true;
    summary.textContent = "";
  }
}

/**
 * Show a problem's field errors next to their fields (`data-error-for` slots; a field named
 * a.b.c without a slot of its own goes to its nearest parent's), and the rest in the form's
 * error summary. Returns the number of field errors placed.
 */
export function showProblem(root, problem, { summary = true } = {}) {
  clearErrors(root);
  const slots = new Map([...root.querySelectorAll("[data-error-for]")].map((s) => [s.dataset.errorFor, s]));
  const unplaced = [];
  let placed = 0;
  let first = null;
  for (const error of problem.errors || []) {
    const { field } = error;
    // Pydantic's prefix says nothing to people.
    const reason = error.reason.replace(/^Value error, /, "");
    let key = field;
    let slot = slots.get(key);
    while (!slot && key.includes(".")) {
      key = key.slice(0, key.lastIndexOf("."));
      slot = slots.get(key);
    }
    if (!slot || (key === "" && field !== "")) {
      unplaced.push(`${field}: ${reason}`);
      continue;
    }
    const prefix = key === field ? "" : `${field.slice(key.length + 1)}: `;
    slot.textContent = slot.textContent ? `${slot.textContent} ${prefix}${reason}` : `${prefix}${reason}`;
    const input = root.querySelector(`[data-error-key="${CSS.escape(key)}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
    // A field inside a closed section: open it so the message is seen.
    for (let up = slot.parentElement; up && up !== root; up = up.parentElement) {
      if (up.tagName === "DETAILS") up.open = true;
    }
    placed += 1;
  }
  const box = root.querySelector(".error-summary");
  if (summary && box) {
    const lines = [];
    if (placed) lines.push(`${placed} field${placed > 1 ? "s need" : " needs"} a change (see the messages next to them).`);
    if (!placed || unplaced.length) lines.push(problem.friendly || problem.detail || String(problem));
    lines.push(...unplaced);
    box.replaceChildren(...lines.map((line) => Object.assign(document.createElement("p"), { textContent: line })));
    box.hidden = false;
  }
  return { placed, first };
}

const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

/** "3 minutes ago" for an ISO date. */
export function relative(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const seconds = Math.round((then - Date.now()) / 1000);
  const format = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") return format.format(Math.round(seconds / size), unit);
  }
  return iso;
}

/** Turn every <time data-relative> under `root` into relative words (the date stays as a title). */
export function relativeTimes(root = document) {
  for (const time of root.querySelectorAll("time[data-relative]")) {
    const iso = time.getAttribute("datetime");
    if (!iso) continue;
    time.title = new Date(iso).toLocaleString();
    time.textContent = relative(iso);
  }
}

/** A new element with `props` (textContent, className, ...) and `children`. */
export function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** "1.4 MB" (SI units, as disks and networks count). */
export function humanBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** "1 file", "2,048 files". */
export const plural = (count, word) => `${count.toLocaleString("en")} ${word}${count === 1 ? "" : "s"}`;

/** Open a dialog whose form runs `submit`, which returns false to stay open, else what to
 * focus once closed (true: `home`). The API's field errors land next to the fields, the rest
 * in the dialog's summary. */
export function formDialog(dialog, submit, focus, home) {
  const form = dialog.querySelector("form");
  clearErrors(form);
  form.onsubmit = async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const next = await submit(form);
      if (next) {
        dialog.close("ok"); // the browser puts the focus back on the opener: move it after
        (next === true ? home : next).focus();
      }
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      const { first } = showProblem(form, error);
      (first || form.querySelector(".error-summary"))?.focus?.();
    } finally {
      button.disabled = false;
    }
  };
  dialog.showModal();
  focus.focus();
  focus.select?.();
}

/** Show `reason` next to the form's field `field` (a check made in the page); false. */
export function fieldError(form, field, reason) {
  showProblem(form, { errors: [{ field, reason }], detail: "" }, { summary: false });
  form.querySelector(`[data-error-key="${field}"]`)?.focus();
  return false;
}
