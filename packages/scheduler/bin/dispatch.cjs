#!/usr/bin/env node
// The `dispatch` command: runs the compiled CLI (dist/cjs/cli/program.js).
// From a checkout: `pnpm install && pnpm build`, then `pnpm exec dispatch`
// in a package that depends on @dispatch/scheduler, or from anywhere:
// `node packages/scheduler/bin/dispatch.cjs`.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const entry = join(__dirname, '..', 'dist', 'cjs', 'cli', 'program.js');
if (!existsSync(entry)) {
  process.stderr.write(
    `dispatch: the CLI is not built (${entry} is missing): run \`pnpm build\` at the root of the repository, or \`pnpm --filter @dispatch/scheduler build\`\n`,
  );
  process.exit(1);
}
require(entry)
  .main(process.argv)
  .then(
    (code) => {
      process.exitCode = code;
      // Exit even if a handle (a socket, a timer) is still open.
      setImmediate(() => process.exit(code));
    },
    (err) => {
      process.stderr.write(`dispatch: ${err && err.stack ? err.stack : err}\n`);
      process.exit(1);
    },
  );
