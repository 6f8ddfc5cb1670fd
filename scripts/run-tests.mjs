#!/usr/bin/env node
// Runs the whole vitest suite (arguments are passed through), then prints one
// closing line "tests: N passed, N failed, N skipped" read from vitest's JSON
// report (with "; N file(s) failed outside their tests" and their names when a
// hook or an import failed), and exits with vitest's exit code.
//
// Skipped tests are listed by name after the summary, always. In CI (the
// environment variable CI set to anything but "", "0" or "false"; `.ci/run`
// exports CI=true) a skipped test fails the run unless test/skips.json lists
// it with its reason:
//
//   [{ "file": "test/x/y.test.ts", "test": "<full test name>", "reason": "why it may be skipped in CI" }]
//
// `file` is relative to the repository root, `test` is vitest's full name (the
// describe titles and the test title, joined by spaces). Outside CI, skips are
// reported but do not change the exit code (PostgreSQL tests skip themselves
// without DISPATCH_TEST_POSTGRES_URL, the browser test without chromium).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALLOW_LIST = 'test/skips.json';
const require = createRequire(import.meta.url);
const vitest = join(dirname(require.resolve('vitest/package.json')), 'vitest.mjs');
const report = 'test-artifacts/vitest.json';
mkdirSync('test-artifacts', { recursive: true });
rmSync(report, { force: true });
const inCi = !['', '0', 'false'].includes((process.env.CI ?? '').trim().toLowerCase());

/** Reads and checks test/skips.json; throws with what is wrong and how to fix it. */
function readAllowList() {
  const path = join(ROOT, ALLOW_LIST);
  if (!existsSync(path)) return [];
  let entries;
  try {
    entries = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${ALLOW_LIST} is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(entries)) throw new Error(`${ALLOW_LIST} must hold an array of { "file", "test", "reason" } objects`);
  entries.forEach((e, i) => {
    const keys = e && typeof e === 'object' ? Object.keys(e).sort().join(',') : '';
    const valid = keys === 'file,reason,test' && ['file', 'test', 'reason'].every((k) => typeof e[k] === 'string' && e[k].trim() !== '');
    if (!valid) {
      throw new Error(`${ALLOW_LIST}, entry ${i}: expected { "file": "...", "test": "...", "reason": "..." } with non-empty strings, got ${JSON.stringify(e)}`);
    }
  });
  return entries;
}

let allowList;
try {
  allowList = readAllowList();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}

const result = spawnSync(
  process.execPath,
  [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
let status = result.status ?? 1;
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  const skippedTests = json.testResults.flatMap((file) =>
    file.assertionResults
      .filter((t) => t.status === 'pending' || t.status === 'skipped' || t.status === 'todo')
      .map((t) => ({ file: relative(ROOT, file.name).split('\\').join('/'), test: t.fullName })),
  );
  const skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
  // A file can fail outside its tests (a hook timing out, an import throwing): its tests may all have
  // passed, so the counts alone would read as green. Such files are counted and named.
  const brokenFiles = json.testResults.filter((file) => file.status === 'failed' && !file.assertionResults.some((t) => t.status === 'failed'));
  const broken = brokenFiles.length > 0 ? `; ${brokenFiles.length} file(s) failed outside their tests` : '';
  console.log(`\ntests: ${json.numPassedTests} passed, ${json.numFailedTests} failed, ${skipped} skipped${broken}`);
  for (const file of brokenFiles) {
    console.log(`  failed outside a test: ${relative(ROOT, file.name).split('\\').join('/')}: ${(file.message ?? '').split('\n')[0] || 'see the output above'}`);
  }
  if (brokenFiles.length > 0 || json.success === false) status = status || 1;
  const allowed = (s) => allowList.find((e) => e.file === s.file && e.test === s.test);
  for (const s of skippedTests) {
    const entry = allowed(s);
    console.log(`  skipped: ${s.file} > ${s.test}${entry ? ` (allowed: ${entry.reason})` : ''}`);
  }
  const unlisted = skippedTests.filter((s) => !allowed(s));
  if (inCi && unlisted.length > 0) {
    console.log(
      `\ntests: FAILED in CI: ${unlisted.length} skipped test(s) not listed in ${ALLOW_LIST}. In CI nothing is skipped silently: ` +
        'make the test run (install what it needs; .ci/run sets DISPATCH_TEST_POSTGRES_URL and installs chromium), ' +
        `or add { "file", "test", "reason" } for it to ${ALLOW_LIST}.`,
    );
    status = status || 1;
  } else if (!inCi && unlisted.length > 0) {
    console.log(`  (${unlisted.length} skipped outside CI; under CI=true these would fail the run unless listed in ${ALLOW_LIST})`);
  }
  // With arguments (a subset of the suite), entries for tests that did not run are expected.
  const stale = process.argv.length > 2 ? [] : allowList.filter((e) => !skippedTests.some((s) => s.file === e.file && s.test === e.test));
  for (const e of stale) console.log(`  note: ${ALLOW_LIST} allows skipping ${e.file} > ${e.test}, which ran or does not exist: remove the entry if it is no longer needed`);
} else {
  console.log('\ntests: no report written (vitest did not finish)');
}
process.exit(status);
