// The preview of a file on the Files page: what the API's `/preview` answered, as a table
// (CSV, Parquet), indented JSON, plain text, or a note that there is nothing to show.
import { element, humanBytes, plural } from "./ui.js";

function table(columns, rows) {
  const cell = (value) => (value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value));
  const head = element("tr", {}, ...columns.map((name) => element("th", { scope: "col", textContent: name })));
  const body = rows.map((row) => element("tr", {}, ...row.map((value) => element("td", { textContent: cell(value) }))));
  return element("div", { className: "preview-scroll" }, element("table", { className: "table preview-table" }, element("thead", {}, head), element("tbody", {}, ...body)));
}

/** The facts line ("CSV · 3.1 kB · first 20 rows of 1,000 · 4 columns") and the content. */
export function preview(found) {
  const facts = [found.kind.toUpperCase(), humanBytes(found.size)];
  let content;
  if (found.kind === "csv" || found.kind === "parquet") {
    const total = found.total_rows ?? null;
    facts.push(`first ${plural(found.rows.length, "row")}${total !== null ? ` of ${total.toLocaleString("en")}` : ""}`);
    facts.push(plural(found.columns.length, "column"));
    content = table(found.columns, found.rows);
  } else if (found.kind === "json" && found.data !== null && found.data !== undefined) {
    content = element("pre", { className: "code-block", textContent: JSON.stringify(found.data, null, 2) });
  } else if (found.text !== null && found.text !== undefined) {
    content = element("pre", { className: "code-block", textContent: found.text });
  } else {
    content = element("p", { textContent: "No preview: this looks like a binary file. Download it to open it." });
  }
  if (found.truncated) facts.push("the beginning only");
  return { facts, content };
}
