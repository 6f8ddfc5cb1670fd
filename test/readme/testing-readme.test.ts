/**
 * The @dispatch/testing README works as written: its app module and its
 * two tests (TypeScript and JavaScript) are copied into a project and run
 * by vitest, on the built packages, as an app's own test suite would.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt, ROOT } from '../e2e/helpers/processes.js';

const readme = readFileSync(join(ROOT, 'packages/testing/README.md'), 'utf8');
const blocks = [...readme.matchAll(/```(ts|js)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, code: m[2]! }));
// Under test/ so that the README's imports resolve as in an app that depends on the packages.
const project = join(ROOT, 'test', 'test-artifacts', `testing-readme-${process.pid}`);

beforeAll(() => requireBuilt());
afterAll(() => rmSync(project, { recursive: true, force: true }));

describe('the @dispatch/testing README', () => {
  it('runs as written: the app module, the TypeScript test and the JavaScript test pass', () => {
    const [functions, tsTest, jsTest] = blocks;
    expect(functions?.code).toMatch(/^\/\/ src\/functions\.ts/);
    expect([tsTest?.lang, jsTest?.lang]).toEqual(['ts', 'js']);
    for (const [file, code] of [
      ['src/functions.ts', functions!.code],
      ['test/checkout.test.ts', tsTest!.code],
      ['test/checkout-js.test.js', jsTest!.code],
    ] as const) {
      mkdirSync(dirname(join(project, file)), { recursive: true });
      writeFileSync(join(project, file), code);
    }
    writeFileSync(join(project, 'vitest.config.mjs'), "export default { test: { include: ['test/**/*.test.{ts,js}'] } };\n");
    const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
    const result = spawnSync(process.execPath, [vitest, 'run', '--root', project, '--config', join(project, 'vitest.config.mjs')], {
      cwd: project,
      encoding: 'utf8',
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISPATCH_') && !k.startsWith('VITEST'))),
      timeout: 120_000,
    });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/Tests\s+.*2 passed/);
  }, 150_000);
});
