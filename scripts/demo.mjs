#!/usr/bin/env node
// The README's demo: the seed checkout (examples/checkout-express) on the
// embedded scheduler, exactly as a user runs it:
//   dispatch run -- node examples/checkout-express/app.mjs --email-failures 2
// The email step fails twice and is retried; the card is charged once. The
// scheduler's database goes to a fresh temporary folder, so the demo starts
// clean every time. Run after `pnpm build` (the root `demo` script does both).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'packages/scheduler/bin/dispatch.cjs');
if (!existsSync(join(root, 'packages/scheduler/dist'))) {
  console.error('the packages are not built: run `pnpm build` first (or `pnpm demo`, which builds)');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'dispatch-demo-'));
const child = spawn(
  process.execPath,
  [cli, 'run', '--db', join(dir, 'dispatch.db'), '--', process.execPath, join(root, 'examples/checkout-express/app.mjs'), '--email-failures', '2'],
  { stdio: 'inherit', cwd: root },
);
const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.on('exit', (code, signal) => {
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
