// Files: the S3 bucket browser of the current project. Lists a folder a page at a time, uploads
// (button or drag-and-drop, several files, a progress bar each), downloads, previews, share
// links, public folders, new folder, rename/move, delete (a folder with everything in it) and
// the bucket's usage. Every call goes to the project's S3 API (docs/s3.md); changes carry the
// CSRF header (api.js, and the upload's XMLHttpRequest below).
import { ProblemError, del, get, post, query } from "./api.js";
import { preview } from "./files-preview.js";
import { Uploads } from "./files-upload.js";
import { confirmDialog, element, fieldError, formDialog, humanBytes, plural, relativeTimes, toast } from "./ui.js";

const root = document.getElementById("files");
const { project, bucket, endpoint } = root.dataset;
const pathStyle = root.dataset.pathStyle === "true";
const base = `/api/projects/${encodeURIComponent(project)}/s3`;
const PAGE_SIZE = 100;
const PARALLEL_UPLOADS = 2;

const $ = (id) => document.getElementById(id);
const folderRows = $("folder-rows");
const objectRows = $("object-rows");
const table = $("files-table");
const statusLine = $("files-status");
const errorBox = $("files-error");
const loadMore = $("load-more");
const uploadsList = $("uploads");
const main = root.querySelector(".files-main");

const state = {
  prefix: "",
  token: null,
  generation: 0,
  folders: 0,
  objects: new Map(), // key -> object of the folder shown
  public: [], // public prefixes of the bucket
};

// -- small helpers ---------------------------------------------------------------------------


/** The last segment of a key or prefix ("a/b/" -> "b", "a/c.txt" -> "c.txt"). */
const leaf = (path) => path.replace(/\/$/, "").split("/").pop();

const friendly = (error) => (error instanceof ProblemError ? error.friendly : String(error));

/** A small button whose accessible name ends with what it acts on ("Delete notes.txt"). */
function actionButton(label, action, target, extra = "") {
  const button = element("button", { type: "button", className: `btn btn-small ${extra}`.trim() }, label);
  button.dataset.action = action;
  button.append(element("span", { className: "visually-hidden", textContent: ` ${target}` }));
  return button;
}

function publicOf(path) {
  // The public prefix covering `path`, if any ("" is the whole bucket).
  return state.public.filter((p) => path.startsWith(p)).sort((a, b) => b.length - a.length)[0];
}

function publicUrl(key) {
  const url = new URL(endpoint);
  const path = key.split("/").map(encodeURIComponent).join("/");
  const start = url.pathname.replace(/\/$/, "");
  if (pathStyle) return `${url.origin}${start}/${bucket}/${path}`;
  return `${url.protocol}//${bucket}.${url.host}${start}/${path}`;
}

function showError(error) {
  errorBox.textContent = friendly(error);
  errorBox.hidden = false;
}

// -- navigation ------------------------------------------------------------------------------

const prefixOfUrl = () => new URLSearchParams(location.search).get("prefix") || "";

function folderHref(prefix) {
  return prefix ? `/files?${query({ prefix })}` : "/files";
}

function renderCrumbs() {
  const crumbs = $("crumbs");
  const parts = state.prefix.split("/").filter(Boolean);
  const items = [["", bucket]];
  parts.forEach((part, i) => items.push([`${parts.slice(0, i + 1).join("/")}/`, part]));
  crumbs.replaceChildren(
    ...items.map(([prefix, label], i) => {
      const link = element("a", { href: folderHref(prefix), textContent: label });
      link.dataset.prefix = prefix;
      if (i === items.length - 1) link.setAttribute("aria-current", "page");
      return element("li", {}, link);
    }),
  );
  const name = parts.length ? parts[parts.length - 1] : bucket;
  $("folder-title").textContent = name;
  for (const where of document.querySelectorAll("[data-drop-folder]")) where.textContent = `${bucket}/${state.prefix}`;
  document.title = `${name} · My files · onyxia-py`;
}

function go(prefix, { push = true, focus = true } = {}) {
  if (push) {
    const url = new URL(location.href);
    if (prefix) url.searchParams.set("prefix", prefix);
    else url.searchParams.delete("prefix");
    url.searchParams.delete("project"); // remembered by the cookie
    history.pushState({ prefix }, "", url);
  }
  state.prefix = prefix;
  renderCrumbs();
  list(true).then(() => {
    if (focus) $("folder-title").focus();
  });
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-prefix]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  go(link.dataset.prefix);
});
window.addEventListener("popstate", () => go(prefixOfUrl(), { push: false }));

// -- the listing -----------------------------------------------------------------------------

function publicBadge(path, own) {
  const covering = publicOf(path);
  const badge = element("span", { className: "badge badge-busy" });
  badge.dataset.publicBadge = "";
  if (covering === undefined) {
    badge.hidden = true;
  } else if (own && covering === path) {
    badge.textContent = "public";
  } else {
    badge.textContent = "public";
    badge.title = `Public through ${covering ? `${covering}` : "the whole bucket"}`;
  }
  return badge;
}

function folderRow(prefix) {
  const name = leaf(prefix);
  const row = element("tr");
  row.dataset.prefix = prefix;
  const link = element("a", { href: folderHref(prefix), className: "entry entry-folder" }, `${name}/`);
  link.dataset.prefix = prefix;
  const head = element("th", { scope: "row" }, link, " ", publicBadge(prefix, true));
  const actions = element("td", { className: "actions" });
  const covering = publicOf(prefix);
  if (covering === prefix) {
    actions.append(actionButton("Make private", "private", name));
  } else if (covering === undefined) {
    actions.append(actionButton("Make public", "public", name));
  }
  actions.append(actionButton("Rename", "move", name), actionButton("Delete", "delete-folder", name, "btn-danger-quiet"));
  row.append(head, element("td", { className: "num muted", textContent: "—" }), element("td"), actions);
  return row;
}

function objectRow(object) {
  const row = element("tr");
  row.dataset.key = object.key;
  const head = element("th", { scope: "row" }, element("span", { className: "entry entry-file", textContent: object.name }), " ", publicBadge(object.key, false));
  const size = element("td", { className: "num", textContent: humanBytes(object.size), title: `${object.size.toLocaleString("en")} bytes` });
  const when = element("td");
  if (object.last_modified) {
    const time = element("time", { dateTime: object.last_modified, textContent: object.last_modified });
    time.dataset.relative = "";
    when.append(time);
  }
  const download = element("a", { className: "btn btn-small", href: `${base}/object?${query({ key: object.key })}`, download: object.name }, "Download");
  download.append(element("span", { className: "visually-hidden", textContent: ` ${object.name}` }));
  const actions = element(
    "td",
    { className: "actions" },
    download,
    actionButton("Preview", "preview", object.name),
    actionButton("Share", "share", object.name),
    actionButton("Rename", "move", object.name),
    actionButton("Delete", "delete", object.name, "btn-danger-quiet"),
  );
  row.append(head, size, when, actions);
  return row;
}

function summarize() {
  const files = state.objects.size;
  const empty = !files && !state.folders;
  table.hidden = empty;
  if (empty) {
    statusLine.textContent = "This folder is empty: upload files or create a folder.";
    return;
  }
  const parts = [];
  if (state.folders) parts.push(plural(state.folders, "folder"));
  if (files) parts.push(plural(files, "file"));
  statusLine.textContent = `${parts.join(" and ")}${state.token ? " shown; more below." : "."}`;
}

/** Load the first page of the folder (`reset`), or the next one. */
async function list(reset) {
  const generation = reset ? ++state.generation : state.generation;
  const prefix = state.prefix;
  errorBox.hidden = true;
  statusLine.textContent = "Loading…";
  loadMore.disabled = true;
  try {
    const page = await get(`${base}/objects?${query({ prefix, limit: PAGE_SIZE, token: reset ? null : state.token })}`);
    if (generation !== state.generation) return; // another folder was opened meanwhile
    if (reset) {
      folderRows.replaceChildren();
      objectRows.replaceChildren();
      state.objects.clear();
      state.folders = 0;
    }
    const firstNew = [];
    for (const folder of page.folders) {
      const row = folderRow(folder);
      folderRows.append(row);
      firstNew.push(row);
    }
    for (const object of page.objects) {
      state.objects.set(object.key, object);
      const row = objectRow(object);
      objectRows.append(row);
      firstNew.push(row);
    }
    state.folders += page.folders.length;
    state.token = page.next_token;
    loadMore.hidden = !state.token;
    relativeTimes(objectRows);
    summarize();
    return firstNew[0];
  } catch (error) {
    if (generation !== state.generation) return;
    statusLine.textContent = "";
    showError(error);
  } finally {
    loadMore.disabled = false;
  }
  return undefined;
}

loadMore.addEventListener("click", async () => {
  const first = await list(false);
  if (loadMore.hidden) first?.querySelector("a, button")?.focus();
});
$("refresh").addEventListener("click", () => {
  list(true);
  refreshSide();
});

// -- usage and public folders ----------------------------------------------------------------

async function usage() {
  try {
    const found = await get(`${base}/usage`);
    const objects = root.querySelector('[data-usage="objects"]');
    const bytes = root.querySelector('[data-usage="bytes"]');
    objects.textContent = found.objects.toLocaleString("en");
    bytes.textContent = humanBytes(found.bytes);
    bytes.title = `${found.bytes.toLocaleString("en")} bytes`;
  } catch (error) {
    $("usage-note").textContent = `Usage unavailable: ${friendly(error)}`;
  }
}

function renderPublic() {
  const items = state.public.map((prefix) => {
    const link = element("a", { href: folderHref(prefix), textContent: prefix ? `${bucket}/${prefix}` : `${bucket} (the whole bucket)` });
    link.dataset.prefix = prefix;
    return element("li", {}, link);
  });
  $("public-list").replaceChildren(...items);
  $("no-public").hidden = items.length > 0;
  // Rows show the new state (their buttons and badges depend on it).
  for (const row of [...folderRows.children]) row.replaceWith(folderRow(row.dataset.prefix));
  for (const row of [...objectRows.children]) {
    row.querySelector("[data-public-badge]").replaceWith(publicBadge(row.dataset.key, false));
  }
}

async function publicPrefixes() {
  try {
    state.public = (await get(`${base}/public`)).public_prefixes;
    renderPublic();
  } catch {
    /* the listing shows the error, if it is one for people */
  }
}

let sideTimer = null;
function refreshSide() {
  clearTimeout(sideTimer);
  sideTimer = setTimeout(usage, 800);
}

async function setPublic(prefix, makePublic, button) {
  const name = leaf(prefix);
  if (makePublic) {
    const ok = await confirmDialog({
      title: `Make “${name}” public?`,
      message: `Anyone who has the address of a file in ${bucket}/${prefix} can read it, without credentials, until you make the folder private again.`,
      confirmLabel: "Make public",
    });
    if (!ok) return;
  }
  button.disabled = true;
  try {
    const answer = makePublic ? await post(`${base}/public`, { prefix }) : await del(`${base}/public?${query({ prefix })}`);
    state.public = answer.public_prefixes;
    renderPublic();
    toast(makePublic ? `“${name}” is public.` : `“${name}” is private again.`);
    folderRows.querySelector(`tr[data-prefix="${CSS.escape(prefix)}"] [data-action="${makePublic ? "private" : "public"}"]`)?.focus();
  } catch (error) {
    button.disabled = false;
    toast(friendly(error), "bad");
  }
}

// -- uploads ---------------------------------------------------------------------------------

let listTimer = null;

function relistSoon(prefix) {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => {
    if (prefix === state.prefix) list(true);
    refreshSide();
  }, 300);
}

const uploads = new Uploads({
  url: (key) => `${base}/object?${query({ key })}`,
  list: uploadsList,
  parallel: PARALLEL_UPLOADS,
  onStored: relistSoon,
  onIdle: () => {
    $("clear-uploads").hidden = false;
  },
});

async function upload(files) {
  const chosen = [...files];
  if (!chosen.length) return;
  const prefix = state.prefix;
  const existing = chosen.filter((file) => state.objects.has(prefix + file.name));
  if (existing.length) {
    const names = existing.map((file) => file.name).join(", ");
    const ok = await confirmDialog({
      title: existing.length === 1 ? `Replace “${names}”?` : `Replace ${existing.length} files?`,
      message: `${names} already ${existing.length === 1 ? "exists" : "exist"} in this folder: uploading replaces ${existing.length === 1 ? "it" : "them"}.`,
      confirmLabel: "Replace",
    });
    if (!ok) return;
  }
  $("clear-uploads").hidden = true;
  uploads.add(chosen, prefix);
}

const input = $("upload-input");
$("upload-button").addEventListener("click", () => input.click());
input.addEventListener("change", () => {
  upload(input.files);
  input.value = "";
});

const clear = element("button", { type: "button", className: "btn btn-small", id: "clear-uploads", hidden: true }, "Clear finished uploads");
uploadsList.after(clear);
clear.addEventListener("click", () => {
  for (const item of uploadsList.querySelectorAll("li.done, li.failed")) item.remove();
  uploadsList.hidden = !uploadsList.children.length;
  clear.hidden = true;
  $("upload-button").focus();
});

window.addEventListener("beforeunload", (event) => {
  if (uploads.busy) event.preventDefault(); // the browser asks before leaving
});

// Drag and drop: anywhere on the listing's panel.
const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
let dragDepth = 0;
main.addEventListener("dragenter", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  main.classList.add("dragging");
});
main.addEventListener("dragover", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
});
main.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) main.classList.remove("dragging");
});
main.addEventListener("drop", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  main.classList.remove("dragging");
  const items = [...(event.dataTransfer.items || [])];
  const folders = items.filter((item) => item.webkitGetAsEntry?.()?.isDirectory).length;
  const files = [...event.dataTransfer.files].filter((_, i) => !items[i]?.webkitGetAsEntry?.()?.isDirectory);
  if (folders) toast(`${plural(folders, "folder")} left out: drop the files themselves, or create the folder first.`, "busy");
  upload(files);
});

// -- dialogs: new folder, move, share, preview -------------------------------------------------

$("new-folder").addEventListener("click", () => {
  const dialog = $("folder-dialog");
  const name = $("folder-name");
  name.value = "";
  dialog.querySelector("[data-dialog-where]").textContent = `${bucket}/${state.prefix}`;
  formDialog(
    dialog,
    async (form) => {
      const wanted = name.value.trim().replace(/\/+$/, "");
      if (!wanted) return fieldError(form, "path", "Give the folder a name.");
      const created = await post(`${base}/folders`, { path: state.prefix + wanted });
      toast(`Folder “${wanted}” created.`);
      await list(true);
      return folderRows.querySelector(`tr[data-prefix="${CSS.escape(created.prefix)}"] a`) || true;
    },
    name,
    $("folder-title"),
  );
});

function openMove(source) {
  const dialog = $("move-dialog");
  const destination = $("move-destination");
  const folder = source.endsWith("/");
  destination.value = folder ? source.slice(0, -1) : source;
  dialog.querySelector("[data-dialog-source]").textContent = `${bucket}/${source}`;
  formDialog(
    dialog,
    async (form) => {
      let wanted = destination.value.trim();
      if (folder) wanted = `${wanted.replace(/\/+$/, "")}/`;
      if (!wanted || wanted === "/") return fieldError(form, "destination", "Give the new path.");
      if (wanted === source) return fieldError(form, "destination", "This is where it is now: change the name or the folders.");
      const moved = await post(`${base}/move`, { source, destination: wanted });
      toast(`Moved to ${wanted}${folder ? ` (${plural(moved.count, "object")})` : ""}.`);
      await list(true);
      return true;
    },
    destination,
    $("folder-title"),
  );
  // Select the name only, the usual thing to change.
  const cut = destination.value.lastIndexOf("/") + 1;
  const dot = folder ? -1 : destination.value.lastIndexOf(".");
  destination.setSelectionRange(cut, dot > cut ? dot : destination.value.length);
}

function openShare(key) {
  const dialog = $("share-dialog");
  const expiry = $("share-expiry");
  dialog.querySelector("[data-dialog-source]").textContent = `${bucket}/${key}`;
  const result = dialog.querySelector("[data-share-result]");
  result.hidden = true;
  const covering = publicOf(key);
  const publicBox = dialog.querySelector("[data-public-result]");
  publicBox.hidden = covering === undefined;
  $("public-url").value = covering === undefined ? "" : publicUrl(key);
  formDialog(
    dialog,
    async () => {
      const seconds = Number(expiry.value);
      const link = await post(`${base}/presign`, { key, expires_in_seconds: seconds });
      const url = $("share-url");
      url.value = link.url;
      const until = new Date(link.expires_at);
      const shortened = until.getTime() < Date.now() + seconds * 1000 - 60000;
      dialog.querySelector("[data-share-expiry]").textContent =
        `Works until ${until.toLocaleString()}${shortened ? " (sooner than asked: a link cannot outlive the credentials that signed it)" : ""}.`;
      result.hidden = false;
      url.focus();
      url.select();
      return false; // stay open: the link is to be copied
    },
    expiry,
    $("folder-title"),
  );
}

let previewing = 0;

async function openPreview(key) {
  const asked = ++previewing;
  const dialog = $("preview-dialog");
  const body = $("preview-body");
  const about = dialog.querySelector("[data-preview-meta]");
  $("preview-title").textContent = leaf(key);
  about.textContent = "Loading…";
  body.replaceChildren();
  dialog.showModal();
  dialog.querySelector("[data-close]").focus();
  try {
    const found = await get(`${base}/preview?${query({ key, lines: 20 })}`);
    if (asked !== previewing) return; // another preview was opened meanwhile
    const { facts, content } = preview(found);
    body.replaceChildren(content);
    about.textContent = facts.join(" · ");
  } catch (error) {
    if (asked !== previewing) return;
    about.textContent = "";
    body.replaceChildren(element("p", { className: "error-summary", textContent: friendly(error) }));
  }
}

// -- deletions -------------------------------------------------------------------------------

/** Files and bytes under `prefix`: exactly what deleting the folder removes. */
async function countUnder(prefix) {
  const found = await get(`${base}/usage?${query({ prefix })}`);
  return { files: found.objects, bytes: found.bytes };
}

async function deleteFolder(prefix, button) {
  const name = leaf(prefix);
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  let found;
  try {
    found = await countUnder(prefix);
  } catch (error) {
    toast(friendly(error), "bad");
    return;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
  const holds = [];
  if (found.files) holds.push(`${plural(found.files, "file")} (${humanBytes(found.bytes)})`);
  const ok = await confirmDialog({
    title: `Delete the folder “${name}” and everything in it?`,
    message: holds.length ? `It holds ${holds.join(" in ")}. They cannot be recovered.` : "It is empty.",
    confirmLabel: found.files ? `Delete ${plural(found.files, "file")}` : "Delete the folder",
    danger: true,
  });
  if (!ok) return;
  try {
    await del(`${base}/prefix?${query({ prefix, confirm: prefix })}`);
    toast(`Folder “${name}” deleted${found.files ? ` with ${plural(found.files, "file")}` : ""}.`);
    await list(true);
    refreshSide();
    $("folder-title").focus();
  } catch (error) {
    toast(friendly(error), "bad");
  }
}

async function deleteObject(key) {
  const name = leaf(key);
  const ok = await confirmDialog({ title: `Delete “${name}”?`, message: "It cannot be recovered.", confirmLabel: "Delete", danger: true });
  if (!ok) return;
  try {
    await del(`${base}/object?${query({ key })}`);
    objectRows.querySelector(`tr[data-key="${CSS.escape(key)}"]`)?.remove();
    state.objects.delete(key);
    summarize();
    refreshSide();
    toast(`“${name}” deleted.`);
    $("folder-title").focus();
  } catch (error) {
    toast(friendly(error), "bad");
  }
}

table.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const row = button.closest("tr");
  const { key, prefix } = row.dataset;
  const actions = {
    public: () => setPublic(prefix, true, button),
    private: () => setPublic(prefix, false, button),
    move: () => openMove(prefix ?? key),
    "delete-folder": () => deleteFolder(prefix, button),
    delete: () => deleteObject(key),
    preview: () => openPreview(key),
    share: () => openShare(key),
  };
  actions[button.dataset.action]?.();
});

// -- start -----------------------------------------------------------------------------------

state.prefix = prefixOfUrl();
history.replaceState({ prefix: state.prefix }, "", location.href);
renderCrumbs();
list(true);
publicPrefixes();
usage();
