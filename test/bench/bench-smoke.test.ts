/**
 * CI smoke test of the benchmarks: `node bench/run.mjs --quick --no-write`
 * must exit 0 — every measurement runs on small sizes and checks its results
 * (sums, counts, statuses). No timing is asserted.
 *
 * Needs the built packages (the bench runs the scheduler's `dispatch serve`
 * and the SDK's dist as separate processes); `pnpm check` builds first.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const built = ['packages/core/dist/esm/index.js', 'packages/scheduler/dist/cjs/cli/program.js'].every((p) => existsSync(`${root}${p}`));
if (!built) console.warn('bench smoke test SKIPPED: the packages are not built (run pnpm build)');

it.skipIf(!built)(
  'node bench/run.mjs --quick --no-write exits 0',
  async () => {
    const env = { ...process.env };
    if (env.DISPATCH_TEST_POSTGRES_URL && !env.BENCH_PG_URL) env.BENCH_PG_URL = env.DISPATCH_TEST_POSTGRES_URL;
    const child = spawn(process.execPath, ['bench/run.mjs', '--quick', '--no-write'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), 280_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(code, `bench/run.mjs --quick exited ${code}:\n${output.slice(-6000)}`).toBe(0);
    expect(output).toContain('bench OK (quick mode');
  },
  300_000,
);
