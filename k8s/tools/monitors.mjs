// ServiceMonitor and PodMonitor check for k8s/check.sh: validates each object with the schema
// that npm @kubernetes-models/prometheus-operator ships for its kind (types, patterns, required
// fields), then refuses fields that the package's type declarations do not know, because its
// validator, like a CRD without field validation, lets an unknown (misspelt) field through
// silently.
//
// usage: node monitors.mjs NODE_MODULES < [{"id": "...", "doc": {...}}, ...]
// prints: [{"id": "...", "field": "spec.endpoints[0].port", "message": "..."}, ...]
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const nodeModules = process.argv[2];
const pkg = path.join(nodeModules, "@kubernetes-models", "prometheus-operator");
const v1 = path.join(pkg, "monitoring.coreos.com", "v1");
const KINDS = ["ServiceMonitor", "PodMonitor"];

// --- the field names of each interface, read from the package's .d.ts files -----------------
const interfaces = new Map(); // "file#Name" -> Map(field -> type text) | null (not an interface)

function resolveImport(fromFile, spec) {
  if (spec.startsWith(".")) return path.join(path.dirname(fromFile), spec.replace(/\.js$/, ".d.ts"));
  return path.join(nodeModules, spec.replace(/\.js$/, "") + ".d.ts");
}

function parseFile(file) {
  const text = fs.readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    for (const name of m[1].split(",").map((s) => s.trim())) imports.set(name, resolveImport(file, m[2]));
  }
  return { text, imports };
}

function lookup(file, name) {
  const key = `${file}#${name}`;
  if (interfaces.has(key)) return interfaces.get(key);
  interfaces.set(key, null);
  if (!fs.existsSync(file)) return null;
  const { text, imports } = parseFile(file);
  // `IFoo` may be an alias exported under its long name: export type { IFoo as ILongName }.
  let local = name;
  const alias = text.match(new RegExp(`export type \\{ (\\w+) as ${name},`));
  if (alias) local = alias[1];
  const head = text.match(new RegExp(`^export interface ${local}(?: extends ([^{]+))? \\{$`, "m"));
  if (!head) return null; // a type alias (string, enum, union): a leaf
  const fields = new Map();
  const body = text.slice(head.index + head[0].length, text.indexOf("\n}", head.index));
  for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) fields.set(m[1], { type: m[2], file, imports });
  for (const parent of (head[1] || "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const pfile = imports.get(parent);
    const pfields = pfile ? lookup(pfile, parent) : null;
    if (pfields) for (const [k, v] of pfields) if (!fields.has(k)) fields.set(k, v);
  }
  interfaces.set(key, fields);
  return fields;
}

function typeOf(entry) {
  // -> {array: bool, iface: [file, name] | null}; maps ({ [key: string]: … }) and scalars are leaves
  let t = entry.type.replace(/;$/, "").trim();
  let array = false;
  const arr = t.match(/^Array<(.+)>$/);
  if (arr) { array = true; t = arr[1]; }
  if (/^I\w+$/.test(t) && entry.imports.has(t)) return { array, iface: [entry.imports.get(t), t] };
  return { array, iface: null };
}

function unknownFields(kind, value, fields, at, out) {
  if (!fields || value === null || typeof value !== "object" || Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const here = at ? `${at}.${k}` : k;
    const entry = fields.get(k);
    if (!entry) { out.push({ field: here, message: `unknown field '${k}' (not in the ${kind} schema)` }); continue; }
    const t = typeOf(entry);
    if (!t.iface) continue;
    const sub = lookup(t.iface[0], t.iface[1]);
    if (t.array && Array.isArray(v)) v.forEach((item, i) => unknownFields(kind, item, sub, `${here}[${i}]`, out));
    else if (!t.array) unknownFields(kind, v, sub, here, out);
  }
}

// kind -> {model: the package's class, root: the field names of its interface}
const models = new Map();
for (const kind of KINDS) {
  const root = lookup(path.join(v1, `${kind}.d.ts`), `I${kind}`);
  if (!root || !root.has("spec")) {
    console.error(`monitors.mjs: cannot read the ${kind} type declarations in ${pkg}`);
    process.exit(2);
  }
  root.set("apiVersion", { type: "string", imports: new Map() });
  root.set("kind", { type: "string", imports: new Map() });
  const model = (await import(pathToFileURL(path.join(v1, `${kind}.js`)).href))[kind];
  models.set(kind, { model, root });
}

// --- check every object -------------------------------------------------------------------------
function fieldOf(instancePath) {
  return instancePath.replace(/^\//, "").split("/").filter(Boolean)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "") || "(object)";
}

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const results = [];
for (const { id, doc } of input) {
  const { model, root } = models.get(doc.kind) || {};
  if (!model) {
    results.push({ id, field: "kind", message: `${doc.kind}: not one of ${KINDS.join(", ")}` });
    continue;
  }
  try {
    new model(doc).validate();
  } catch (e) {
    const errors = e.errors || e.details || [];
    if (errors.length === 0) results.push({ id, field: "(object)", message: String(e.message) });
    for (const err of errors) {
      let msg = err.message || err.keyword;
      if (err.keyword === "type") msg = `must be ${err.params.type}`;
      else if (err.keyword === "required") msg = `missing required field '${err.params.missingProperty}'`;
      else if (err.keyword === "pattern") msg = `must match pattern ${err.params.pattern}`;
      else if (err.keyword === "enum") msg = `must be one of ${JSON.stringify(err.params.allowedValues)}`;
      results.push({ id, field: fieldOf(err.instancePath), message: msg });
    }
  }
  const unknown = [];
  unknownFields(doc.kind, doc, root, "", unknown);
  for (const u of unknown) results.push({ id, ...u });
}
process.stdout.write(JSON.stringify(results));
