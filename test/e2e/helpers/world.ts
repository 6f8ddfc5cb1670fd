/**
 * The processes of the issue-15 e2e tests: `dispatch run` (a real scheduler
 * on SQLite or PostgreSQL) running fixtures/world-app.mjs, the app's control
 * server (start calls, await results as an app would) and the CLI in the
 * same directory (it finds the scheduler through .dispatch/api.json).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropPgSchema, randomPgSchema } from '../../../packages/scheduler/test/support/pg-cluster.js';
import { dispatchCli, DISPATCH_BIN, freePort, type Proc, start, tempDir } from './processes.js';

const APP = fileURLToPath(new URL('../fixtures/world-app.mjs', import.meta.url));

/** The stores the tests run on: SQLite always, PostgreSQL when DISPATCH_TEST_POSTGRES_URL is set. */
export const STORES: Array<'sqlite' | 'postgres'> = process.env.DISPATCH_TEST_POSTGRES_URL ? ['sqlite', 'postgres'] : ['sqlite'];

const cleanEnv: NodeJS.ProcessEnv = {};
for (const k of Object.keys(process.env)) if (k.startsWith('DISPATCH_')) cleanEnv[k] = undefined;

/** A running world: the app under `dispatch run`, and how to talk to it. */
export interface World {
  proc: Proc;
  /** GET on the app's control server, JSON answer. */
  control<T = Record<string, unknown>>(path: string): Promise<T>;
  /** Starts `fn` with `args` through `fn.start` (options: delay, startAt, key). */
  start(fn: string, args?: unknown[], options?: Record<string, string>): Promise<{ dispatchId: string; startedAt: number }>;
  /** Awaits a result through the handle (or dispatch.result for IDs the app did not start). */
  result(id: string, timeout?: string): Promise<{ value?: unknown; error?: { class: string; name: string; message: string; status: number | null }; via: string }>;
  /** Runs the CLI in the world's directory. */
  cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The app's endpoint URL (for `dispatch call --endpoint`). */
  endpoint: string;
  /** `dispatch get ID --json`. */
  get(id: string): Promise<Record<string, any>>;
  stop(): Promise<void>;
}

/** Starts `dispatch run` with the world app on `store`. */
export async function startWorld(store: 'sqlite' | 'postgres', env: NodeJS.ProcessEnv = {}, app = APP): Promise<World> {
  const tmp = tempDir('world');
  const controlPort = await freePort();
  const flags = ['run', '--port', '0', '--endpoint-addr', `127.0.0.1:${await freePort()}`, '--log-level', 'info'];
  let schema: string | undefined;
  const url = process.env.DISPATCH_TEST_POSTGRES_URL;
  if (store === 'postgres' && url) {
    schema = randomPgSchema('world_signals');
    const db = new URL(url);
    db.searchParams.set('schema', schema);
    flags.push('--db', db.toString());
  }
  const proc = start(process.execPath, [DISPATCH_BIN, ...flags, '--', process.execPath, app], {
    cwd: tmp.dir,
    env: { ...cleanEnv, CONTROL_PORT: String(controlPort), ...env },
  });
  await proc.waitFor(/world-app ready/, 60_000);
  // The CLI reaches the scheduler through the URL and key the app was given (the app writes them).
  const { url: apiUrl, key: apiKey, endpoint } = JSON.parse(readFileSync(join(tmp.dir, 'world-api.json'), 'utf8')) as {
    url: string;
    key: string;
    endpoint: string;
  };
  const control = async <T>(path: string): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${controlPort}${path}`);
    const body = (await res.json()) as T;
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(body)}\n${proc.text()}`);
    return body;
  };
  const cli = (...args: string[]) => dispatchCli(args, { cwd: tmp.dir, env: { ...cleanEnv, DISPATCH_API_URL: apiUrl, DISPATCH_API_KEY: apiKey } });
  return {
    proc,
    control,
    start(fn, args = [], options = {}) {
      const q = new URLSearchParams({ args: JSON.stringify(args), ...options });
      return control(`/start/${fn}?${q}`);
    },
    result(id, timeout = '60s') {
      return control(`/result/${id}?timeout=${timeout}`);
    },
    cli,
    endpoint,
    async get(id) {
      const r = await cli('get', id, '--json');
      if (r.code !== 0) throw new Error(`dispatch get ${id} failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, any>;
    },
    async stop() {
      proc.kill('SIGTERM');
      const done = await Promise.race([proc.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 8000))]);
      if (!done) {
        proc.kill('SIGKILL');
        await proc.exited;
      }
      if (schema && url) await dropPgSchema(url, schema);
      tmp.remove();
    },
  };
}

