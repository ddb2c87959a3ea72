// Dashboard schema check for k8s/check.sh: each Grafana dashboard JSON file is type-checked by
// tsc (npm typescript, --strict) against the dashboard types Grafana publishes in npm
// @grafana/schema, assembled in dashboard-types.ts. The JSON text itself is the initialiser of a
// typed constant, so tsc's excess-property check refuses any key the schema does not know, at any
// depth, and each error points at a line of the JSON file.
//
// usage: node dashboards.mjs NODE_MODULES < [{"id": "...", "text": "<the JSON file>"}, ...]
// prints: [{"id": "...", "line": 12, "field": "panels[3].fieldConfig.defaults.unitt",
//           "panel": "Latency", "message": "..."}, ...]
// exits 2 when the check itself cannot run (tsc missing, the types do not compile on their own).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.resolve(process.argv[2]);
const tsc = path.join(nodeModules, "typescript", "lib", "tsc.js");
// The JSON starts on the second line of each generated file, after this prefix.
const HEADER = 'import type { CheckedDashboard } from "./dashboard-types";\n';
const PREFIX = "export const dashboard: CheckedDashboard = ";

function fail(message) {
  console.error(`dashboards.mjs: ${message}`);
  process.exit(2);
}

// --- where each key of a JSON text is: [[offset, "panels[3].fieldConfig"], ...] -------------------
function pathsOf(text) {
  const out = [];
  let i = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  const str = () => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = (at) => {
    ws();
    out.push([i, at]);
    if (text[i] === "{") {
      i++;
      ws();
      if (text[i] === "}") { i++; return; }
      for (;;) {
        ws();
        const start = i;
        const key = str();
        const p = at ? `${at}.${key}` : key;
        out.push([start, p]);
        ws();
        i++; // ':'
        value(p);
        ws();
        if (text[i++] === "}") return;
      }
    } else if (text[i] === "[") {
      i++;
      ws();
      if (text[i] === "]") { i++; return; }
      for (let n = 0; ; n++) {
        value(`${at}[${n}]`);
        ws();
        if (text[i++] === "]") return;
      }
    } else if (text[i] === '"') {
      str();
    } else {
      while (i < text.length && /[^,\]}\s]/.test(text[i])) i++;
    }
  };
  value("");
  return out;
}

function offsetOf(text, line, col) {
  let offset = 0;
  for (let l = 1; l < line; l++) offset = text.indexOf("\n", offset) + 1;
  return offset + col - 1;
}

function locate(text, doc, line, col) {
  const offset = offsetOf(text, line, col);
  let field = "(dashboard)";
  for (const [at, p] of pathsOf(text)) {
    if (at > offset) break;
    if (p) field = p;
  }
  const m = field.match(/^panels\[(\d+)\](?:\.panels\[(\d+)\])?/);
  let panel;
  if (m) {
    const outer = (doc.panels || [])[Number(m[1])] || {};
    panel = m[2] === undefined ? outer.title : ((outer.panels || [])[Number(m[2])] || {}).title;
  }
  return { line, field, panel };
}

// --- one tsc run over every dashboard ----------------------------------------------------------
const input = JSON.parse(fs.readFileSync(0, "utf8"));
if (!fs.existsSync(tsc)) fail(`no TypeScript compiler at ${tsc}`);
const results = [];
const work = fs.mkdtempSync(path.join(path.dirname(nodeModules), ".dashboards-"));
try {
  fs.copyFileSync(path.join(here, "dashboard-types.ts"), path.join(work, "dashboard-types.ts"));
  const files = new Map(); // generated file name -> {id, text, doc}
  input.forEach(({ id, text }, n) => {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      const at = Number((String(e.message).match(/position (\d+)/) || [])[1] || 0);
      const line = text.slice(0, at).split("\n").length;
      results.push({ id, line, field: "(file)", message: `not JSON: ${e.message}` });
      return;
    }
    const name = `dashboard${n}.ts`;
    fs.writeFileSync(path.join(work, name), HEADER + PREFIX + text.trimEnd() + ";\n");
    files.set(name, { id, text, doc });
  });
  fs.writeFileSync(path.join(work, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: "es2022", module: "esnext",
      moduleResolution: "bundler", skipLibCheck: true, types: [],
    },
    files: ["dashboard-types.ts", ...files.keys()],
  }));
  const run = spawnSync(process.execPath, [tsc, "-p", work, "--pretty", "false"],
    { encoding: "utf8", timeout: 120000 });
  if (run.error) fail(`tsc: ${run.error.message}`);
  // `file(line,col): error TSnnnn: message`, then indented lines that elaborate on it.
  const diags = [];
  for (const l of (run.stdout + run.stderr).split("\n")) {
    const m = l.match(/^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/);
    if (m) diags.push({ file: path.basename(m[1]), line: +m[2], col: +m[3], code: m[4], text: [m[5]] });
    else if (l.trim() && diags.length) diags[diags.length - 1].text.push(l.trim());
  }
  if (run.status !== 0 && diags.length === 0) fail(`tsc exited ${run.status}: ${run.stdout}${run.stderr}`);
  for (const d of diags) {
    const f = files.get(d.file);
    if (!f) fail(`the dashboard types do not compile: ${d.file}(${d.line},${d.col}): ${d.text.join(" ")}`);
    // Line 2 of the generated file is line 1 of the JSON, shifted by the prefix.
    const line = d.line - 1;
    const col = line === 1 ? d.col - PREFIX.length : d.col;
    const where = locate(f.text, f.doc, line, col);
    // The first line says what is wrong; the innermost elaboration, where.
    let message = d.text[0];
    if (d.text.length > 1) message += ` … ${d.text[d.text.length - 1]}`;
    if (message.length > 400) message = message.slice(0, 397) + "...";
    results.push({ id: f.id, ...where, message: `${d.code}: ${message}` });
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(results));
