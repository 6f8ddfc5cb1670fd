/**
 * Runs an example the way its README does: `dispatch run -- node <entry>`
 * with the real CLI, which starts the embedded scheduler (here on an
 * in-memory database and free ports) and the app with its DISPATCH_*
 * configuration. Examples run on the built packages (dist/), as a user's
 * app would; missing builds are made first.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../e2e/helpers/processes.js';

export const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'packages/scheduler/bin/dispatch.cjs');
const BUILD_ORDER = ['core', 'scheduler', 'express', 'fastify', 'nestjs'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` holding a lock shared by the test files running in parallel. */
async function withLock(name: string, fn: () => void): Promise<void> {
  const dir = join(ROOT, 'test-artifacts', `${name}.lock`);
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  for (let i = 0; ; i++) {
    try {
      mkdirSync(dir);
      break;
    } catch {
      if (i > 3000) throw new Error(`the lock ${dir} is held for too long: remove it if no test is running`);
      await sleep(100);
    }
  }
  try {
    fn();
  } finally {
    rmdirSync(dir);
  }
}

const built = (pkg: string) => existsSync(join(ROOT, 'packages', pkg, 'dist/cjs/package.json')) && existsSync(join(ROOT, 'packages', pkg, 'dist/esm/index.js'));

/** Builds the packages whose dist/ is missing (`pnpm build` at the root builds them all). */
export async function ensurePackagesBuilt(): Promise<void> {
  if (BUILD_ORDER.every(built)) return;
  await withLock('packages-build', () => {
    for (const pkg of BUILD_ORDER) {
      if (!built(pkg)) execFileSync(process.execPath, [join(ROOT, 'scripts/build-package.mjs')], { cwd: join(ROOT, 'packages', pkg), stdio: 'inherit' });
    }
  });
}

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

/** Compiles a TypeScript example (its `build` script) if its output is missing or older than its sources. */
export async function ensureExampleBuilt(example: string, output: string): Promise<void> {
  const dir = join(ROOT, 'examples', example);
  const target = join(dir, output);
  if (existsSync(target) && statSync(target).mtimeMs >= newest(join(dir, 'src'))) return;
  await withLock(`example-${example}-build`, () => {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
  });
}

/** What a run printed, split by who printed it. */
export interface ExampleRun {
  code: number | null;
  /** Lines of the app (the CLI's `node | ` prefix removed). */
  app: string[];
  /** Lines of the CLI itself: one per dispatched, retried, finished call. */
  cli: string[];
  /** The JSON of the app's `summary {...}` line. */
  summary: any;
  output: string;
}

/**
 * `dispatch run --db :memory: --port 0 --endpoint-addr 127.0.0.1:<free>
 * --plain -- node <entry> <args>`, from the example's folder (the examples
 * listen on DISPATCH_ENDPOINT_ADDR; a free port instead of the default 8000
 * lets the test files run in parallel); resolves when the CLI exits (the
 * examples stop by themselves in demo mode).
 */
export async function runExample(example: string, entry: string, args: string[] = [], timeoutMs = 90_000): Promise<ExampleRun> {
  const cwd = join(ROOT, 'examples', example);
  const addr = `127.0.0.1:${await freePort()}`;
  const cliArgs = [CLI, 'run', '--db', ':memory:', '--port', '0', '--endpoint-addr', addr, '--plain', '--', 'node', entry, ...args];
  const child = spawn(process.execPath, cliArgs, {
    cwd,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      reject(new Error(`${example} did not finish in ${timeoutMs} ms; output so far:\n${output}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = output.split('\n');
      const app = lines.filter((l) => /^node\s+\| /.test(l)).map((l) => l.replace(/^node\s+\| /, ''));
      const cli = lines.filter((l) => /^dispatch\s+\| /.test(l)).map((l) => l.replace(/^dispatch\s+\| /, ''));
      const summaryLine = app.find((l) => l.startsWith('summary '));
      resolvePromise({ code, app, cli, output, summary: summaryLine ? JSON.parse(summaryLine.slice('summary '.length)) : undefined });
    });
  });
}

