// A small YAML reader for the form's free-form editors: block mappings and sequences, plain,
// quoted and block (| >) scalars, flow [..] {..} collections, comments. JSON is YAML too and is
// read as such. Anchors, tags and multiple documents are refused with a clear message.

export class YamlError extends Error {
  constructor(message, line) {
    super(line ? `line ${line}: ${message}` : message);
  }
}

function scalar(text, line) {
  const t = text.trim();
  if (t === "" || t === "~" || t === "null" || t === "Null" || t === "NULL") return null;
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^[-+]?(0|[1-9][0-9]*)$/.test(t)) return Number(t);
  if (/^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(t) || /^[-+]?[0-9]+[eE][-+]?[0-9]+$/.test(t)) {
    return Number(t);
  }
  if (t.startsWith('"')) {
    try {
      // YAML's \xHH escape is JSON's \u00HH.
      return JSON.parse(t.replace(/\\x([0-9a-fA-F]{2})/g, "\\u00$1"));
    } catch {
      throw new YamlError(`bad double-quoted string ${t}`, line);
    }
  }
  if (t.startsWith("'")) {
    if (!t.endsWith("'") || t.length < 2) throw new YamlError(`unterminated string ${t}`, line);
    return t.slice(1, -1).replaceAll("''", "'");
  }
  if (t.startsWith("[") || t.startsWith("{")) return flow(t, line);
  if (/^[&*!|>%@`]/.test(t)) throw new YamlError(`unsupported YAML feature at "${t}"`, line);
  return t;
}

// Flow collections: [a, "b", {c: 1}].
function flow(text, line) {
  let i = 0;
  const skip = () => {
    while (i < text.length && /\s/.test(text[i])) i += 1;
  };
  const value = () => {
    skip();
    const c = text[i];
    if (c === "[") {
      i += 1;
      const out = [];
      skip();
      if (text[i] === "]") {
        i += 1;
        return out;
      }
      for (;;) {
        out.push(value());
        skip();
        if (text[i] === ",") i += 1;
        else if (text[i] === "]") {
          i += 1;
          return out;
        } else throw new YamlError(`expected , or ] in ${text}`, line);
      }
    }
    if (c === "{") {
      i += 1;
      const out = {};
      skip();
      if (text[i] === "}") {
        i += 1;
        return out;
      }
      for (;;) {
        const key = atom(":");
        skip();
        if (text[i] !== ":") throw new YamlError(`expected : in ${text}`, line);
        i += 1;
        out[String(key)] = value();
        skip();
        if (text[i] === ",") i += 1;
        else if (text[i] === "}") {
          i += 1;
          return out;
        } else throw new YamlError(`expected , or } in ${text}`, line);
      }
    }
    return atom("");
  };
  const atom = (stopExtra) => {
    skip();
    const start = i;
    if (text[i] === '"' || text[i] === "'") {
      const quote = text[i];
      i += 1;
      while (i < text.length && text[i] !== quote) i += text[i] === "\\" && quote === '"' ? 2 : 1;
      i += 1;
      return scalar(text.slice(start, i), line);
    }
    while (i < text.length && !",]}".includes(text[i]) && !(stopExtra && text[i] === stopExtra)) i += 1;
    return scalar(text.slice(start, i), line);
  };
  const result = value();
  skip();
  if (i !== text.length) throw new YamlError(`unexpected text after ${text.slice(0, i)}`, line);
  return result;
}

function stripComment(text) {
  let quote = null;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[{,-]/.test(text[i - 1])) quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

// "key: rest" -> [key, rest], or null when the line is not a mapping entry.
function splitKey(text, line) {
  let key;
  let rest;
  if (text.startsWith('"') || text.startsWith("'")) {
    const quote = text[0];
    let i = 1;
    while (i < text.length && text[i] !== quote) i += text[i] === "\\" && quote === '"' ? 2 : 1;
    key = scalar(text.slice(0, i + 1), line);
    rest = text.slice(i + 1);
    if (!/^\s*:(\s|$)/.test(rest)) return null;
    rest = rest.replace(/^\s*:/, "");
  } else {
    const match = /^([^#{[\]},][^#]*?)\s*:(\s|$)/.exec(text);
    if (!match) return null;
    key = match[1];
    rest = text.slice(match[0].length - match[2].length);
  }
  return [String(key), rest.trim()];
}

export function parseYaml(source) {
  const trimmed = source.trim();
  if (trimmed === "") return null;
  if (/^[[{"]/.test(trimmed)) {
    try {
      return JSON.parse(trimmed);
    } catch {
      /* YAML flow style, read below */
    }
  }
  const lines = [];
  source.split(/\r?\n/).forEach((raw, index) => {
    if (/^\s*(---|\.\.\.)\s*$/.test(raw)) {
      if (lines.length) throw new YamlError("only one document is allowed", index + 1);
      return;
    }
    if (/\t/.test(raw.match(/^\s*/)[0])) throw new YamlError("indent with spaces, not tabs", index + 1);
    lines.push({ raw, number: index + 1 });
  });
  let pos = 0;
  const content = (entry) => stripComment(entry.raw);
  const indentOf = (entry) => entry.raw.length - entry.raw.trimStart().length;
  const nextMeaningful = () => {
    while (pos < lines.length && content(lines[pos]).trim() === "") pos += 1;
    return pos < lines.length ? lines[pos] : null;
  };

  function blockScalar(style, parentIndent) {
    const collected = [];
    let indent = null;
    while (pos < lines.length) {
      const entry = lines[pos];
      if (entry.raw.trim() === "") {
        collected.push("");
        pos += 1;
        continue;
      }
      const own = indentOf(entry);
      if (own <= parentIndent) break;
      indent ??= own;
      collected.push(entry.raw.slice(indent));
      pos += 1;
    }
    while (collected.length && collected[collected.length - 1] === "") collected.pop();
    const keep = style[0] === "|" ? collected.join("\n") : collected.join(" ").replace(/ ?\n ?/g, "\n");
    return style.includes("-") ? keep : `${keep}\n`;
  }

  function valueAfter(rest, indent, entry) {
    if (rest === "|" || rest === ">" || rest === "|-" || rest === ">-") return blockScalar(rest, indent);
    if (rest !== "") return scalar(rest, entry.number);
    const next = nextMeaningful();
    if (!next) return null;
    const nextIndent = indentOf(next);
    const isItem = content(next).trimStart().startsWith("- ") || content(next).trim() === "-";
    if (nextIndent > indent || (nextIndent === indent && isItem)) return block(nextIndent);
    return null;
  }

  function block(indent) {
    const first = nextMeaningful();
    if (!first) return null;
    const text = content(first).trimStart();
    if (text.startsWith("- ") || text === "-") return sequence(indent);
    if (splitKey(text, first.number)) return mapping(indent);
    pos += 1;
    return scalar(text, first.number);
  }

  function sequence(indent) {
    const out = [];
    for (;;) {
      const entry = nextMeaningful();
      if (!entry || indentOf(entry) !== indent) break;
      const text = content(entry).trimStart();
      if (!(text.startsWith("- ") || text === "-")) break;
      const rest = text === "-" ? "" : text.slice(2).trim();
      const childIndent = indent + (text.length - text.slice(1).trimStart().length);
      if (rest === "") {
        pos += 1;
        out.push(valueAfter("", indent, entry));
      } else if (rest.startsWith("- ") || rest === "-") {
        // "- - x": a sequence inside a sequence, its other items under the inner dash.
        lines[pos] = { raw: " ".repeat(childIndent) + rest, number: entry.number };
        out.push(sequence(childIndent));
      } else if (splitKey(rest, entry.number) && !/^[[{]/.test(rest)) {
        // "- key: value" opens a mapping whose other keys sit under "key".
        lines[pos] = { raw: " ".repeat(childIndent) + rest, number: entry.number };
        out.push(mapping(childIndent));
      } else {
        pos += 1;
        out.push(valueAfter(rest, indent, entry));
      }
    }
    return out;
  }

  function mapping(indent) {
    const out = {};
    for (;;) {
      const entry = nextMeaningful();
      if (!entry) break;
      const own = indentOf(entry);
      if (own < indent) break;
      if (own > indent) throw new YamlError("unexpected indentation", entry.number);
      const text = content(entry).trimStart();
      if (text.startsWith("- ")) break;
      const pair = splitKey(text, entry.number);
      if (!pair) throw new YamlError(`expected "key: value", found "${text}"`, entry.number);
      pos += 1;
      const [key, rest] = pair;
      if (Object.hasOwn(out, key)) throw new YamlError(`duplicate key "${key}"`, entry.number);
      out[key] = valueAfter(rest, indent, entry);
    }
    return out;
  }

  const start = nextMeaningful();
  const result = block(start ? indentOf(start) : 0);
  const left = nextMeaningful();
  if (left) throw new YamlError(`unexpected "${content(left).trim()}"`, left.number);
  return result;
}
