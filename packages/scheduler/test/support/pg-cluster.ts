/**
 * Several scheduler instances on one PostgreSQL schema, for benchmarks,
 * failover tests and trying a cluster on one machine: start N instances
 * (in this process, or as child processes of the scheduler's process
 * entry), find their URLs and keys, stop them, drop the schema.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { generateSigningKeyPair, privateKeyToPem, publicKeyToBase64 } from '@dispatch/core/protocol';
import pg from 'pg';
import { parsePgUrl, PgStore, type PgStoreOptions } from '../../src/store/pg/pg-store.js';
import { PG_SCHEMA_PATTERN, quoteIdent } from '../../src/store/pg/schema.js';
import { Scheduler } from '../../src/scheduler.js';
import type { SchedulerOptions } from '../../src/options.js';

/**
 * A fresh schema name, `<prefix>_<12 hex digits>`.
 * @example
 * const schema = randomPgSchema('bench'); // 'bench_3f9a0c12d4e5'
 */
export function randomPgSchema(prefix = 'dispatch_test'): string {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  if (!PG_SCHEMA_PATTERN.test(name)) throw new RangeError(`invalid schema prefix ${JSON.stringify(prefix)}`);
  return name;
}

/**
 * Drops a schema and everything in it (`DROP SCHEMA ... CASCADE`).
 * @example
 * await dropPgSchema('postgres://postgres@127.0.0.1:5432/test', 'bench_3f9a0c12d4e5');
 */
export async function dropPgSchema(url: string, schema: string): Promise<void> {
  if (!PG_SCHEMA_PATTERN.test(schema)) throw new RangeError(`invalid schema name ${JSON.stringify(schema)}`);
  const client = new pg.Client({ connectionString: parsePgUrl(url).connectionString });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * Options of {@link startPgCluster}.
 * @example
 * const options: PgClusterOptions = { url, schema: randomPgSchema('bench'), instances: 3, processes: true };
 */
export interface PgClusterOptions {
  /** PostgreSQL URL (without `schema`; use the option). */
  url: string;
  /** Schema shared by the instances. Default: a fresh random one (see `schema` of the result). */
  schema?: string;
  /** Number of instances (default 3). */
  instances?: number;
  /**
   * Run each instance as a child process, `dispatch serve` of the built CLI
   * (`pnpm build` first), as in production, instead of in this process.
   * Default false.
   */
  processes?: boolean;
  /** With `processes`: the CLI to run (default {@link dispatchBinPath}). */
  entry?: string;
  /** Pool size of each instance (default 10). */
  poolSize?: number;
  /** Lease length, ms (default: the scheduler's, 30 s). */
  leaseMs?: number;
  /** Most calls claimed at once per instance (default: the scheduler's, 256). */
  claimBatch?: number;
  /** Scheduler log level (default `warn`). */
  logLevel?: SchedulerOptions['logLevel'];
  /** Other scheduler options, for in-process instances only. */
  scheduler?: Omit<SchedulerOptions, 'store' | 'db' | 'port' | 'apiKeys' | 'signingKey'>;
  /** Other store options, for in-process instances only. */
  store?: Omit<PgStoreOptions, 'url' | 'schema' | 'poolSize'>;
}

/**
 * A running cluster.
 * @example
 * const cluster = await startPgCluster({ url, instances: 3 });
 * const client = new DispatchClient({ apiUrl: cluster.urls[0]!, apiKey: cluster.apiKey }); // @dispatch/core
 */
export interface PgCluster {
  schema: string;
  /** API base URL of each instance. */
  urls: string[];
  apiKey: string;
  /** Public key endpoints verify with (`DISPATCH_VERIFICATION_KEY`). */
  verificationKey: string;
  /** In-process instances (empty with `processes`). */
  schedulers: Scheduler[];
  /** Child processes (empty without `processes`). */
  children: ChildProcess[];
  /** Stops every instance (gracefully); with `dropSchema`, drops the schema too. */
  stop(options?: { dropSchema?: boolean }): Promise<void>;
}

/**
 * The `dispatch` CLI (`bin/dispatch.cjs` of this package), whose `serve`
 * command child-process instances run; throws when it is not built.
 * @example
 * spawn(process.execPath, [dispatchBinPath(), 'serve', '--db', url]);
 */
export function dispatchBinPath(): string {
  const bin = fileURLToPath(new URL('../../bin/dispatch.cjs', import.meta.url));
  const built = join(dirname(bin), '..', 'dist', 'cjs', 'cli', 'program.js');
  if (!existsSync(built)) throw new Error(`the dispatch CLI is not built (${built} is missing): run \`pnpm build\` first`);
  return bin;
}

/** A free TCP port of 127.0.0.1 (free when asked; bind it soon). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `instances` schedulers sharing one schema, with one API key and one
 * signing key. Instances listen on free ports of 127.0.0.1.
 * @example
 * const cluster = await startPgCluster({ url: 'postgres://postgres@127.0.0.1:5432/test', instances: 3, processes: true });
 * try { ... } finally { await cluster.stop({ dropSchema: true }); }
 */
export async function startPgCluster(options: PgClusterOptions): Promise<PgCluster> {
  const count = options.instances ?? 3;
  const schema = options.schema ?? randomPgSchema('dispatch_cluster');
  const apiKey = `dsk_${randomBytes(24).toString('base64url')}`;
  const keys = generateSigningKeyPair();
  const signingKey = privateKeyToPem(keys.privateKey);
  const verificationKey = publicKeyToBase64(keys.publicKey);
  const schedulers: Scheduler[] = [];
  const stores: PgStore[] = [];
  const children: ChildProcess[] = [];
  const urls: string[] = [];
  const u = new URL(options.url);
  u.searchParams.set('schema', schema);
  if (options.poolSize) u.searchParams.set('pool_size', String(options.poolSize));
  const db = u.toString();
  // Migrate once before starting instances (they would also agree among themselves).
  await (await PgStore.open({ url: db })).close();
  const stop = async (stopOptions: { dropSchema?: boolean } = {}) => {
    await Promise.all(schedulers.map((s) => s.close()));
    await Promise.all(stores.map((s) => s.close()));
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    if (stopOptions.dropSchema) await dropPgSchema(options.url, schema);
  };
  try {
    if (options.processes) {
      const entry = options.entry ?? dispatchBinPath();
      const started = await Promise.all(
        Array.from({ length: count }, async () => {
          const port = await freePort();
          const args = ['serve', '--db', db, '--port', String(port), '--log-level', options.logLevel ?? 'warn'];
          if (options.leaseMs) args.push('--lease-ms', String(options.leaseMs));
          if (options.claimBatch) args.push('--claim-batch', String(options.claimBatch));
          // Keys through the environment, as a deployment gives them (a flag shows in ps).
          return startInstanceProcess(entry, args, `http://127.0.0.1:${port}`, { ...process.env, DISPATCH_API_KEY: apiKey, DISPATCH_SIGNING_KEY: signingKey });
        }),
      );
      for (const s of started) {
        children.push(s.child);
        urls.push(s.url);
      }
    } else {
      for (let i = 0; i < count; i++) {
        const store = await PgStore.open({ ...options.store, url: db, ...(options.poolSize ? { poolSize: options.poolSize } : {}) });
        stores.push(store);
        const s = await Scheduler.start({
          logLevel: options.logLevel ?? 'warn',
          ...options.scheduler,
          store,
          port: 0,
          apiKeys: [apiKey],
          signingKey,
          ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
          ...(options.claimBatch ? { claimBatch: options.claimBatch } : {}),
        });
        schedulers.push(s);
        urls.push(s.url);
      }
    }
  } catch (err) {
    await stop({ dropSchema: !options.schema });
    throw err;
  }
  return { schema, urls, apiKey, verificationKey, schedulers, children, stop };
}

/**
 * Starts a scheduler process (`node entry ...args`) and resolves once
 * `url/healthz` answers; its stderr is kept for the error message if it
 * exits first. The child's stdout and stderr are drained.
 * @example
 * const { child } = await startInstanceProcess(dispatchBinPath(), ['serve', '--db', db, '--port', '4451'], 'http://127.0.0.1:4451');
 */
export function startInstanceProcess(
  entry: string,
  args: string[],
  url: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [entry, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (e: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) {
        child.kill('SIGKILL');
        reject(e);
      } else resolve({ child, url });
    };
    const timer = setTimeout(() => finish(new Error(`the scheduler process did not answer ${url}/healthz within ${timeoutMs} ms: ${err.slice(-2000)}`)), timeoutMs);
    child.once('exit', (code, signal) => finish(new Error(`the scheduler process exited (${signal ?? code}) before it was ready: ${err.slice(-2000)}`)));
    const poll = async () => {
      while (!done) {
        try {
          const res = await fetch(`${url}/healthz`);
          if (res.ok) return finish(null);
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    void poll();
  });
}
