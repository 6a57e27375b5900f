// Account: create and revoke personal API tokens; get temporary S3 credentials and their
// ready-to-paste snippets (secrets masked until shown).
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

// -- S3 credentials --------------------------------------------------------------------------

const s3 = document.getElementById("s3");
const MASK = "••••••••";

if (s3) {
  const getButton = document.getElementById("s3-get");
  const result = document.getElementById("s3-result");
  const errors = document.getElementById("s3-errors");
  const tabs = document.getElementById("snippet-tabs");
  const panel = document.getElementById("snippet-panel");
  const code = document.getElementById("snippet-code");
  const secretInput = document.getElementById("s3-secret");
  const tokenInput = document.getElementById("s3-token");
  let issued = null;
  let selected = "boto3";

  /** The snippet as shown: the secret and the token masked unless they are shown above. */
  const shown = (snippet) => {
    let text = snippet.code;
    if (secretInput.type === "password") text = text.replaceAll(issued.secret_access_key, MASK);
    if (tokenInput.type === "password") text = text.replaceAll(issued.session_token, MASK);
    return text;
  };

  const current = () => issued.snippets.find((s) => s.id === selected) || issued.snippets[0];

  function select(id, focus = false) {
    selected = id;
    const snippet = current();
    for (const tab of tabs.children) {
      const on = tab.dataset.snippet === snippet.id;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on) {
        panel.setAttribute("aria-labelledby", tab.id);
        if (focus) tab.focus();
      }
    }
    document.getElementById("snippet-title").textContent = snippet.title;
    document.getElementById("snippet-language").textContent = `Language: ${snippet.language}`;
    document.getElementById("snippet-copy-what").textContent = ` the ${snippet.title} snippet`;
    code.textContent = shown(snippet);
  }

  function renderTabs() {
    tabs.replaceChildren(
      ...issued.snippets.map((snippet) => {
        const tab = document.createElement("button");
        tab.type = "button";
        tab.id = `snippet-tab-${snippet.id}`;
        tab.setAttribute("role", "tab");
        tab.setAttribute("aria-controls", "snippet-panel");
        tab.dataset.snippet = snippet.id;
        tab.textContent = snippet.title;
        return tab;
      }),
    );
    select(selected);
  }

  tabs.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) select(tab.dataset.snippet);
  });
  tabs.addEventListener("keydown", (event) => {
    const all = [...tabs.children];
    const at = all.findIndex((tab) => tab.dataset.snippet === current().id);
    const moves = { ArrowDown: at + 1, ArrowRight: at + 1, ArrowUp: at - 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = (moves[event.key] + all.length) % all.length;
    select(all[next].dataset.snippet, true);
  });

  s3.addEventListener("click", (event) => {
    const reveal = event.target.closest("[data-s3-reveal]");
    if (!reveal) return;
    const input = document.getElementById(reveal.dataset.s3Reveal);
    const showing = input.type === "password";
    input.type = showing ? "text" : "password";
    reveal.setAttribute("aria-pressed", String(showing));
    reveal.firstChild.textContent = showing ? "Hide" : "Show";
    if (issued) select(selected);
  });

  document.getElementById("snippet-copy").addEventListener("click", async () => {
    const snippet = current();
    try {
      await navigator.clipboard.writeText(snippet.code);
      toast(`${snippet.title}: copied to the clipboard.`);
    } catch {
      code.textContent = snippet.code; // what the user selects must be the real code
      getSelection().selectAllChildren(code);
      toast("Copy it yourself (Ctrl+C): the browser refused. The secrets are shown.", "busy");
    }
  });

  getButton.addEventListener("click", async () => {
    errors.hidden = true;
    getButton.disabled = true;
    try {
      issued = await post(`/api/projects/${encodeURIComponent(s3.dataset.project)}/s3/credentials`);
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      errors.textContent = error.friendly;
      errors.hidden = false;
      errors.focus();
      return;
    } finally {
      getButton.disabled = false;
    }
    document.getElementById("s3-access-key").value = issued.access_key_id;
    secretInput.value = issued.secret_access_key;
    tokenInput.value = issued.session_token;
    const expiry = document.getElementById("s3-expiry");
    const time = Object.assign(document.createElement("time"), { dateTime: issued.expires_at, textContent: issued.expires_at });
    time.dataset.relative = "";
    expiry.replaceChildren(`${new Date(issued.expires_at).toLocaleString()} (`, time, ")");
    relativeTimes(expiry);
    renderTabs();
    result.hidden = false;
    getButton.textContent = "Get new credentials";
    toast(`New credentials, valid until ${new Date(issued.expires_at).toLocaleTimeString()}.`);
    document.getElementById("s3-access-key").focus();
  });
}
