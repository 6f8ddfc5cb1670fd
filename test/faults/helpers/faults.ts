/**
 * What the storage-fault tests share: the scheduler started by the CLI
 * (`dispatch serve`), the app of fixtures/work-app.mjs in its own process,
 * dispatches through the SDK's client, the side-effect log, and a private
 * PostgreSQL cluster (initdb + pg_ctl as user postgres) that a test may stop
 * and start without touching the shared server.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DispatchClient } from '@dispatch/core';
import { encodeArgs } from '@dispatch/core/protocol';
import { DISPATCH_BIN, freePort, type Proc, start } from '../../e2e/helpers/processes.js';

const APP = fileURLToPath(new URL('../fixtures/work-app.mjs', import.meta.url));

/** What `dispatch serve --ready-json` prints. */
export interface Ready {
  url: string;
  apiKey: string;
  verificationKey: string;
  pid: number;
}

/** Starts `dispatch serve` on `db` and waits for its ready line. */
export async function startScheduler(db: string, port: number, cwd: string, extra: string[] = []): Promise<{ proc: Proc; ready: Ready }> {
  const proc = start(
    process.execPath,
    [DISPATCH_BIN, 'serve', '--ready-json', '--db', db, '--port', String(port), '--log-level', 'info', '--concurrency-initial', '64', ...extra],
    { cwd },
  );
  return { proc, ready: JSON.parse(await proc.waitFor(/^\{/, 60_000)) as Ready };
}

/** Starts the app (fixtures/work-app.mjs): `work(key)` appends key to `counter`, takes `workMs`. */
export async function startApp(ready: Ready, counter: string, cwd: string, workMs = 50): Promise<{ proc: Proc; endpoint: string }> {
  writeFileSync(counter, '');
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = start(process.execPath, [APP], {
    cwd,
    env: {
      DISPATCH_API_URL: ready.url,
      DISPATCH_API_KEY: ready.apiKey,
      DISPATCH_ENDPOINT_URL: endpoint,
      DISPATCH_ENDPOINT_ADDR: `127.0.0.1:${port}`,
      DISPATCH_VERIFICATION_KEY: ready.verificationKey,
      COUNTER_FILE: counter,
      WORK_MS: String(workMs),
    },
  });
  await proc.waitFor(/app ready/);
  return { proc, endpoint };
}

/**
 * Dispatches `total` calls of `work` through the SDK's client, in batches of
 * `batch`, one batch every `everyMs` (the client generates the idempotency
 * keys and retries by itself). Answers the dispatch IDs in key order.
 */
export async function dispatchPaced(
  client: DispatchClient,
  endpoint: string,
  o: { total: number; batch: number; everyMs: number; prefix: string },
): Promise<string[]> {
  const batches: Array<Promise<string[]>> = [];
  for (let i = 0; i < o.total; i += o.batch) {
    const calls = Array.from({ length: Math.min(o.batch, o.total - i) }, (_, j) => ({
      function: 'work',
      endpoint,
      input: encodeArgs([`${o.prefix}${i + j}`]),
    }));
    const sent = client.dispatch(calls);
    sent.catch(() => {}); // awaited below, with the others
    batches.push(sent);
    await new Promise((r) => setTimeout(r, o.everyMs));
  }
  return (await Promise.all(batches)).flat();
}

/** Lines of the side-effect log, counted. */
export function countLines(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) if (line) counts.set(line, (counts.get(line) ?? 0) + 1);
  return counts;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** True when this machine can run a private PostgreSQL cluster (PostgreSQL 15's binaries, root to run them as postgres). */
export function canRunPrivatePg(): boolean {
  return existsSync(join(PG_BIN, 'pg_ctl')) && process.getuid?.() === 0;
}

/** A private PostgreSQL cluster: its URL, and stop/start of the server (as user postgres). */
export interface PrivatePg {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it (if running) and removes its files. */
  remove(): Promise<void>;
}

/** initdb + pg_ctl start of a fresh cluster on a free port, in a temp dir owned by postgres. */
export async function startPrivatePg(): Promise<PrivatePg> {
  const dir = mkdtempSync(join(tmpdir(), 'dispatch-faults-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const asPostgres = async (bin: string, args: string[]) => {
    await promisify(execFile)('runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args], { timeout: 120_000 });
  };
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  let running = false;
  const pg: PrivatePg = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      await asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
      running = true;
    },
    async stop() {
      await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      running = false;
    },
    async remove() {
      try {
        if (running) await pg.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  await pg.start();
  return pg;
}

/** What the SDK's client sent to the Dispatch route, counted by {@link watchDispatches}. */
export interface DispatchTraffic {
  /** HTTP requests sent (first tries and retries). */
  requests: number;
  /** Answered 503 `unavailable`. */
  unavailable: number;
  /** Failed without an answer (connection refused or lost). */
  noAnswer: number;
}

/** Counts the requests of this process to the Dispatch route (the client's retries show as extra requests); `stop` restores fetch. */
export function watchDispatches(): { traffic: DispatchTraffic; stop: () => void } {
  const original = globalThis.fetch;
  const traffic: DispatchTraffic = { requests: 0, unavailable: 0, noAnswer: 0 };
  globalThis.fetch = async (input, init) => {
    const target = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!target.endsWith('/dispatch.sdk.v1.DispatchService/Dispatch')) return original(input, init);
    traffic.requests++;
    try {
      const res = await original(input, init);
      if (res.status === 503) traffic.unavailable++;
      return res;
    } catch (err) {
      traffic.noAnswer++;
      throw err;
    }
  };
  return { traffic, stop: () => void (globalThis.fetch = original) };
}
