// Starts the pieces of an end-to-end run as separate processes: the scheduler
// (`dispatch serve` of the built CLI, packages/scheduler/bin/dispatch.cjs) and
// the SDK app (dispatch-app.mjs), and talks to them through the core's API
// client.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DispatchClient } from '@dispatch/core';
import { check, memoryOf, startProcess } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
/** The `dispatch` CLI, whose `serve` command is the scheduler's process entry. */
export const dispatchBin = join(dirname(fileURLToPath(import.meta.resolve('@dispatch/scheduler/package.json'))), 'bin', 'dispatch.cjs');

const tempDirs = new Set();
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed by `cleanup()` (or when this process exits). */
export function tempDir(prefix = 'dispatch-bench-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return {
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}

/**
 * Starts a scheduler process: `dispatch serve --ready-json` of the built
 * CLI, which prints one JSON line when ready. SQLite: `db` is
 * a path or ':memory:'. PostgreSQL: `pg` is { url (postgres://…?schema=…),
 * apiKey, signingKey } — instances of one cluster share the key pair.
 * `profileDir`: write a V8 CPU profile there when it exits.
 */
export async function startScheduler({ db, pg, synchronous, args = [], env = {}, profileDir, profileName = 'scheduler', nodeArgs = [] }) {
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${profileName}.cpuprofile`] : [];
  const store = pg ? ['--db', pg.url] : ['--db', db, ...(synchronous ? ['--synchronous', synchronous] : [])];
  const argv = [...nodeArgs, ...prof, dispatchBin, 'serve', '--ready-json', ...store, '--port', '0', '--log-level', 'warn', ...args];
  const proc = startProcess(process.execPath, argv, {
    // Keys go through the environment: an argument shows in ps (the scheduler warns about --api-key).
    env: pg ? { ...env, DISPATCH_API_KEY: pg.apiKey, DISPATCH_SIGNING_KEY: pg.signingKey } : env,
    label: 'scheduler',
    readyLine: (line) => line.startsWith('{') && line.includes('"url"'),
  });
  const info = JSON.parse(await proc.ready);
  const client = new DispatchClient({ apiUrl: info.url, apiKey: info.apiKey, timeoutMs: 120_000 });
  return {
    ...info,
    pid: proc.pid,
    client,
    memory: () => memoryOf(proc.pid),
    output: proc.output,
    stop: () => proc.stop(15_000),
    kill: () => proc.kill(),
  };
}

/** `in-process.mjs` of @dispatch/scheduler: `node --import` it to run the scheduler inside the app's process. */
export const inProcessPreload = pathToFileURL(join(dirname(fileURLToPath(import.meta.resolve('@dispatch/scheduler/package.json'))), 'in-process.mjs')).href;

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * In-process mode: the SDK app with the scheduler inside its process (what
 * `dispatch run --in-process` runs: `node --import @dispatch/scheduler/in-process`),
 * on SQLite. Returns { scheduler, app } shaped like startScheduler's and
 * startApp's, both backed by the one process.
 */
export async function startInProcessStack({ db, synchronous = 'NORMAL', cache = true, profileDir, concurrency } = {}) {
  const port = await freePort();
  const options = { db, synchronous, port: 0, logLevel: 'warn', endpointAddr: `127.0.0.1:${port}`, ...(concurrency ? { concurrency } : {}) };
  const app = await startApp({
    cache,
    profileDir,
    nodeArgs: ['--import', inProcessPreload],
    env: { BENCH_IN_PROCESS: '1', DISPATCH_IN_PROCESS_SCHEDULER: JSON.stringify(options) },
  });
  const client = new DispatchClient({ apiUrl: app.api.url, apiKey: app.api.apiKey, timeoutMs: 120_000 });
  const scheduler = {
    url: app.api.url,
    apiKey: app.api.apiKey,
    verificationKey: app.api.verificationKey,
    pid: app.pid,
    client,
    memory: () => memoryOf(app.pid),
    stop: async () => {},
  };
  return { scheduler, app };
}

/** Starts the SDK app (dispatch-app.mjs) as a process with an IPC channel. */
export async function startApp({ verificationKey, cache = true, profileDir, nodeArgs = [], env = {} }) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISPATCH_')));
  const child = fork(join(here, 'dispatch-app.mjs'), [], {
    env: { ...clean, BENCH_VERIFICATION_KEY: verificationKey ?? '', BENCH_CACHE: cache ? 'on' : 'off', ...env },
    execArgv: [...nodeArgs, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-name=app.cpuprofile'] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const replies = [];
  const waiting = [];
  child.on('message', (msg) => {
    const w = waiting.shift();
    if (w) w(msg);
    else replies.push(msg);
  });
  const next = () =>
    new Promise((resolve, reject) => {
      const r = replies.shift();
      if (r) return resolve(r);
      const timer = setTimeout(() => reject(new Error('the app did not answer within 60 s')), 60_000);
      waiting.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
      exited.then(({ code, signal }) => reject(new Error(`the app exited (code ${code}, signal ${signal})`)));
    });
  const ready = await next();
  check(ready.cmd === 'ready', `the app said ${JSON.stringify(ready)} instead of ready`);
  return {
    url: ready.url,
    api: ready.api,
    pid: child.pid,
    memory: () => memoryOf(child.pid),
    async stats(options = {}) {
      child.send({ cmd: 'stats', ...options });
      return next();
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.send({ cmd: 'exit' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const r = await exited;
      clearTimeout(timer);
      process.off('exit', killOnExit);
      return r;
    },
  };
}

/**
 * Polls the scheduler's List counts until `expected` calls have finished
 * (succeeded or failed); returns the counts. Every call must succeed.
 */
export async function waitForFinished(client, expected, { timeoutMs = 300_000, everyMs = 20 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { counts } = await client.list({ limit: 1 });
    if (counts.succeeded + counts.failed + counts.cancelled >= expected) {
      check(counts.failed === 0 && counts.cancelled === 0, `calls failed: ${JSON.stringify(counts)}`);
      return counts;
    }
    if (Date.now() > deadline) throw new Error(`only ${counts.succeeded} of ${expected} calls finished within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
