#!/usr/bin/env node
// Runs the whole vitest suite (arguments are passed through), then prints one
// closing line "tests: N passed, N failed, N skipped" read from vitest's JSON
// report, and exits with vitest's exit code.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const vitest = join(dirname(require.resolve('vitest/package.json')), 'vitest.mjs');
const report = 'test-artifacts/vitest.json';
mkdirSync('test-artifacts', { recursive: true });
rmSync(report, { force: true });
const result = spawnSync(
  process.execPath,
  [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
  console.log(`\ntests: ${json.numPassedTests} passed, ${json.numFailedTests} failed, ${skipped} skipped`);
} else {
  console.log('\ntests: no report written (vitest did not finish)');
}
process.exit(result.status ?? 1);
