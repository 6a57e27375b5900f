// Reading and writing the launch form's inputs (rendered by web/templates/launcher_fields.html):
// each carries its path, JSON type, widget kind and default, so the page sends only what the
// user changed, as the values the chart expects.
import { YamlError, parseYaml } from "./yaml.js";

/** JSON with sorted keys, to compare values whatever their key order. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

export const pathOf = (input) => JSON.parse(input.dataset.path);
export const defaultOf = (input) => JSON.parse(input.dataset.default);

/** The value an input holds, typed as the schema says; YamlError for a broken YAML box. */
export function readInput(input) {
  const { kind, type } = input.dataset;
  switch (kind) {
    case "checkbox":
      return input.checked;
    case "select":
      return JSON.parse(input.value);
    case "slider": {
      const number = input.value;
      return type === "string" ? `${number}${input.dataset.unit || ""}` : Number(number);
    }
    case "number":
      return input.value.trim() === "" ? null : Number(input.value);
    case "yaml":
      return parseYaml(input.value);
    default:
      return input.value;
  }
}

/** True when the input differs from its default. */
export function changed(input) {
  const { kind } = input.dataset;
  if (["text", "password", "textarea"].includes(kind) && input.value === input.dataset.defaultText) {
    return false;
  }
  return canonical(readInput(input)) !== canonical(defaultOf(input));
}

/** Put an input back to its default. */
export function restore(input) {
  const { kind } = input.dataset;
  const value = defaultOf(input);
  if (kind === "checkbox") input.checked = value === true;
  else if (kind === "select") {
    const wanted = canonical(value);
    const option = [...input.options].find((o) => canonical(JSON.parse(o.value)) === wanted);
    if (option) input.value = option.value;
  } else if (kind === "slider") input.value = input.dataset.defaultNumber;
  else input.value = input.dataset.defaultText;
}

function setAt(target, path, value) {
  let node = target;
  path.slice(0, -1).forEach((key) => {
    if (!node[key] || typeof node[key] !== "object" || Array.isArray(node[key])) node[key] = {};
    node = node[key];
  });
  node[path[path.length - 1]] = value;
}

/** Only what differs between `value` and `base`, recursing into objects (for raw values). */
export function difference(value, base) {
  if (value && typeof value === "object" && !Array.isArray(value) && base && typeof base === "object" && !Array.isArray(base)) {
    const out = {};
    for (const [key, item] of Object.entries(value)) {
      if (!(key in base)) out[key] = item;
      else {
        const diff = difference(item, base[key]);
        if (diff !== undefined) out[key] = diff;
      }
    }
    return Object.keys(out).length ? out : undefined;
  }
  return canonical(value) === canonical(base) ? undefined : value;
}

/**
 * The values the user changed in `form`, and the YAML boxes that cannot be read:
 * { values, broken: [{input, message}] }.
 */
export function collect(form) {
  const values = {};
  const broken = [];
  const raw = form.querySelector("[data-raw-values]");
  if (raw) {
    try {
      const parsed = parseYaml(raw.value) ?? {};
      if (typeof parsed !== "object" || Array.isArray(parsed)) throw new YamlError("the values must be a mapping (key: value)");
      return { values: difference(parsed, JSON.parse(raw.dataset.default)) ?? {}, broken };
    } catch (error) {
      if (!(error instanceof YamlError)) throw error;
      return { values, broken: [{ input: raw, message: error.message }] };
    }
  }
  for (const input of form.querySelectorAll("[data-value-input]")) {
    try {
      if (changed(input)) setAt(values, pathOf(input), readInput(input));
    } catch (error) {
      if (!(error instanceof YamlError)) throw error;
      broken.push({ input, message: `not valid YAML: ${error.message}` });
    }
  }
  return { values, broken };
}
