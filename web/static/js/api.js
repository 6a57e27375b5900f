// Calls to the platform's JSON API from pages: same-origin fetch with the session cookie and
// the CSRF token (from the page's <meta name="csrf-token">) on every change.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";

/** The CSRF header every change carries (for requests not made with `call`). */
export const csrfHeaders = () => ({ [meta("csrf-header") || "X-CSRF-Token"]: meta("csrf-token") });

/** An answer's body: JSON, or the start of its text as a problem's detail. */
export function parseBody(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 300) };
  }
}

/** URL query text of `params`, leaving out null and undefined values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== null && value !== undefined) search.set(name, value);
  return search.toString();
}

export const project = () => meta("onyxia-project");

/** An error answer of the API (RFC 7807 problem), or a network failure. */
export class ProblemError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || "Error";
    this.detail = problem.detail || "";
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.reason = problem.reason || "";
    this.requestId = problem.request_id || "";
  }

  /** A sentence for people: what happened and, when it helps, what to do. */
  get friendly() {
    if (this.status === 401) return "Your session has ended: log in again to continue.";
    if (this.status === 403 && this.reason === "csrf") {
      return "This page is out of date with your session: reload it and try again.";
    }
    if (this.status === 0) return "The platform cannot be reached: check your connection and try again.";
    if (this.status >= 500 && this.requestId) return `${this.detail} (request id ${this.requestId})`;
    return this.detail || this.title;
  }
}

/** `method` `url` with a JSON `body`; the parsed answer (null when empty), or a ProblemError. */
export async function call(method, url, body) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (method !== "GET" && method !== "HEAD") Object.assign(headers, csrfHeaders());
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ProblemError(0, { detail: String(error) });
  }
  const data = parseBody(await response.text());
  if (!response.ok) throw new ProblemError(response.status, data || {});
  return data;
}

export const get = (url) => call("GET", url);
export const post = (url, body) => call("POST", url, body);
export const patch = (url, body) => call("PATCH", url, body);
export const put = (url, body) => call("PUT", url, body);
export const del = (url) => call("DELETE", url);

/**
 * Read a server-sent event stream with fetch (so errors keep their status and problem body).
 * Calls onEvent(name, data) per event; resolves when the stream ends, rejects with a
 * ProblemError when it cannot start. Abort it with `signal`.
 */
export async function readEvents(url, onEvent, signal) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "text/event-stream" }, credentials: "same-origin", signal });
  } catch (error) {
    if (signal?.aborted) return;
    throw new ProblemError(0, { detail: String(error) });
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      /* not JSON: keep the status */
    }
    throw new ProblemError(response.status, problem);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) {
          let parsed = data.join("\n");
          try {
            parsed = JSON.parse(parsed);
          } catch {
            /* plain text data */
          }
          onEvent(name, parsed);
        }
      }
    }
  } catch (error) {
    if (!signal?.aborted) throw new ProblemError(0, { detail: String(error) });
  }
}
