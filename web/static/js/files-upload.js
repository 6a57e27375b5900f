// Uploads of the Files page: one PUT per file through XMLHttpRequest (for its upload progress
// events), a few at a time, each with a labelled progress bar and a Cancel button. When the
// last one ends, one announcement says how the batch went (the bars are not a live region:
// their progress would be read out all along).
import { ProblemError, csrfHeaders, parseBody } from "./api.js";
import { element, humanBytes, plural, toast } from "./ui.js";

export class Uploads {
  /**
   * @param {object} options
   * @param {(key: string) => string} options.url where a key is PUT
   * @param {HTMLElement} options.list the <ul> of upload rows
   * @param {number} options.parallel uploads at once
   * @param {(prefix: string) => void} options.onStored after each upload ends (stored or not)
   * @param {() => void} options.onIdle when the last queued upload has ended
   */
  constructor({ url, list, parallel, onStored, onIdle }) {
    Object.assign(this, { url, list, parallel, onStored, onIdle });
    this.queue = [];
    this.running = 0;
    this.count = 0;
    this.batch = { done: 0, failed: 0 };
  }

  /** Whether an upload is running or waiting. */
  get busy() {
    return Boolean(this.running || this.queue.length);
  }

  /** Queue `files` for upload into the folder `prefix`. */
  add(files, prefix) {
    for (const file of files) {
      const job = { file, key: prefix + file.name, prefix };
      job.row = this.row(file, job.key);
      job.row.cancel.addEventListener("click", () => {
        const waiting = this.queue.indexOf(job);
        if (waiting >= 0) {
          this.queue.splice(waiting, 1);
          this.running += 1; // finish() counts it down
          this.finish(job, "failed", "Cancelled");
        }
      });
      this.queue.push(job);
    }
    this.pump();
  }

  row(file, key) {
    this.count += 1;
    const id = `upload-${this.count}`;
    const name = element("span", { className: "upload-name", id: `${id}-name`, textContent: key });
    const bar = element("progress", { max: 100, value: 0, textContent: "0%" });
    bar.setAttribute("aria-labelledby", `${id}-name`);
    const status = element("span", { className: "upload-status", textContent: `Waiting · ${humanBytes(file.size)}` });
    status.dataset.uploadStatus = "";
    const cancel = element("button", { type: "button", className: "btn btn-small btn-quiet" }, "Cancel");
    cancel.append(element("span", { className: "visually-hidden", textContent: ` the upload of ${file.name}` }));
    const item = element("li", { className: "upload" }, name, bar, status, cancel);
    item.dataset.upload = key;
    this.list.hidden = false;
    this.list.append(item);
    return { item, bar, status, cancel };
  }

  pump() {
    while (this.running < this.parallel && this.queue.length) this.start(this.queue.shift());
  }

  start(job) {
    this.running += 1;
    const { bar, status, cancel } = job.row;
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", this.url(job.key));
    for (const [name, value] of Object.entries(csrfHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Content-Type", job.file.type || "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json, application/problem+json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      // 99% at most until the server says the object is stored.
      const percent = Math.min(99, Math.floor((event.loaded / event.total) * 100));
      bar.value = percent;
      bar.textContent = `${percent}%`;
      status.textContent = `${humanBytes(event.loaded)} of ${humanBytes(event.total)}`;
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        bar.textContent = "100%";
        this.finish(job, "done", `Uploaded · ${humanBytes(job.file.size)}`);
        return;
      }
      const problem = new ProblemError(xhr.status, parseBody(xhr.responseText) || {});
      this.finish(job, "failed", `Failed: ${problem.friendly}`);
    });
    xhr.addEventListener("error", () => this.finish(job, "failed", `Failed: ${new ProblemError(0, {}).friendly}`));
    xhr.addEventListener("abort", () => this.finish(job, "failed", "Cancelled"));
    cancel.onclick = () => xhr.abort();
    status.textContent = `Starting · ${humanBytes(job.file.size)}`;
    xhr.send(job.file);
  }

  finish(job, tone, text) {
    job.row.status.textContent = text;
    job.row.item.classList.add(tone);
    job.row.cancel.hidden = true;
    this.batch[tone] += 1;
    this.running -= 1;
    this.pump();
    this.onStored(job.prefix);
    if (this.busy) return;
    this.onIdle();
    const { done, failed } = this.batch;
    const said = [done ? `${plural(done, "file")} uploaded` : "", failed ? `${failed} not uploaded (see the list)` : ""];
    toast(said.filter(Boolean).join(", ") + ".", failed ? "bad" : "ok");
    this.batch = { done: 0, failed: 0 };
  }
}
