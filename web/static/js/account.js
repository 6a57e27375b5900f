// Account: create and revoke personal API tokens.
import { ProblemError, del, post } from "./api.js";
import { clearErrors, confirmDialog, relativeTimes, showProblem, toast } from "./ui.js";

const form = document.getElementById("token-form");
const table = document.getElementById("tokens-table").querySelector("tbody");

function cell(text, tag = "td") {
  const element = document.createElement(tag);
  if (tag === "th") element.scope = "row";
  element.textContent = text;
  return element;
}

function revokeButton(token) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "btn btn-small btn-danger-quiet";
  button.dataset.revoke = token.id;
  button.dataset.name = token.name;
  button.textContent = "Revoke";
  const hidden = document.createElement("span");
  hidden.className = "visually-hidden";
  hidden.textContent = ` ${token.name}`;
  button.append(hidden);
  return button;
}

function row(token) {
  const tr = document.createElement("tr");
  tr.dataset.token = token.id;
  const prefix = cell("");
  prefix.append(Object.assign(document.createElement("code"), { textContent: `${token.prefix}…` }));
  const created = cell("");
  created.append(Object.assign(document.createElement("time"), { dateTime: token.created_at, textContent: token.created_at }));
  created.firstChild.dataset.relative = "";
  const actions = cell("");
  actions.append(revokeButton(token));
  tr.append(cell(token.name, "th"), prefix, cell(token.scopes.join(", ")), created, cell(token.expires_at.slice(0, 10)), cell("never"), actions);
  return tr;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  const errors = document.getElementById("token-errors");
  errors.hidden = true;
  const name = form.elements.name.value.trim();
  const scopes = [...form.querySelectorAll('input[name="scopes"]:checked')].map((c) => c.value);
  const days = form.elements.expires_in_days.value;
  const local = [];
  if (!name) local.push({ field: "name", reason: "Give the token a name, to recognise it later." });
  if (!scopes.length) local.push({ field: "scopes", reason: "Choose at least one right." });
  if (local.length) {
    showProblem(form, { errors: local, detail: "" }, { summary: false });
    form.querySelector("[aria-invalid]")?.focus();
    return;
  }
  try {
    const token = await post("/api/tokens", { name, scopes, expires_in_days: days ? Number(days) : null });
    const box = document.getElementById("new-token");
    box.hidden = false;
    const value = document.getElementById("new-token-value");
    value.value = token.token;
    value.focus();
    value.select();
    table.prepend(row(token));
    relativeTimes(table);
    document.getElementById("no-tokens").hidden = true;
    form.reset();
    toast(`Token “${token.name}” created.`);
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    const { placed, first } = showProblem(form, error, { summary: false });
    if (!placed) {
      errors.textContent = error.friendly;
      errors.hidden = false;
    }
    first?.focus();
  }
});

table.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-revoke]");
  if (!button) return;
  const ok = await confirmDialog({
    title: `Revoke “${button.dataset.name}”?`,
    message: "Scripts using it stop working at once.",
    confirmLabel: "Revoke",
    danger: true,
  });
  if (!ok) return;
  try {
    await del(`/api/tokens/${button.dataset.revoke}`);
    const tr = button.closest("tr");
    tr.classList.add("revoked");
    button.replaceWith(Object.assign(document.createElement("span"), { className: "badge badge-off", textContent: "revoked" }));
    toast("Token revoked.");
  } catch (error) {
    toast(error instanceof ProblemError ? error.friendly : String(error), "bad");
  }
});
