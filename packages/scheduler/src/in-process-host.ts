/**
 * In-process mode, the scheduler's side: starts a scheduler inside the app's
 * process before the app's code loads (the package's `in-process.mjs`,
 * loaded with `node --import`; `dispatch run --in-process` does it), with
 * the same store, API port and dashboard as `dispatch run`, and its
 * in-process transport: the app's `Dispatch` instance (which registers
 * itself because this sets `DISPATCH_IN_PROCESS=1`) gets its RunRequests as
 * objects. The API stays on its port, for `dispatch ls/get/call`, the
 * dashboard and other apps.
 * @module
 */
import net from 'node:net';
import { resolve } from 'node:path';
import { DEFAULT_ENDPOINT_ADDR, IN_PROCESS_ENV, inProcessRegistry, parseAddress } from '@dispatch/core/protocol';
import { formatHostPort, probePort, writeStateFile } from './cli/common.js';
import { type LogLevel } from './logger.js';
import { SCHEDULER_DEFAULTS, type SchedulerOptions } from './options.js';
import { Scheduler } from './scheduler.js';

/** The variable through which `dispatch run --in-process` passes its scheduler's options (JSON); removed once read. */
export const IN_PROCESS_SCHEDULER_ENV = 'DISPATCH_IN_PROCESS_SCHEDULER';

/** Meta key under which a database remembers the endpoint address of its first `dispatch run` (as cli/run.ts). */
const ENDPOINT_ADDR_META = 'cli.endpoint_addr';

/** What `dispatch run --in-process` passes (JSON). */
export interface InProcessHostOptions extends Omit<SchedulerOptions, 'store' | 'logger' | 'signingKey' | 'transport'> {
  /** The address the app's endpoint listens on; default the one the database recorded, else the SDK's default. */
  endpointAddr?: string;
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/**
 * Starts the in-process scheduler of this process (once; null if one runs
 * already), sets the `DISPATCH_*` variables the app's configuration reads,
 * and starts running calls once the app listens on its endpoint address
 * (its functions are registered by then).
 * @example
 * await startInProcessScheduler();
 */
export async function startInProcessScheduler(env: NodeJS.ProcessEnv = process.env): Promise<Scheduler | null> {
  const registry = inProcessRegistry();
  if (registry.host) return null;
  const raw = env[IN_PROCESS_SCHEDULER_ENV];
  delete env[IN_PROCESS_SCHEDULER_ENV];
  let options: InProcessHostOptions = {};
  if (raw) {
    try {
      options = JSON.parse(raw) as InProcessHostOptions;
    } catch (err) {
      throw new Error(`${IN_PROCESS_SCHEDULER_ENV} is not valid JSON (${(err as Error).message}); it is set by dispatch run --in-process`);
    }
  }
  const { endpointAddr: givenAddr, ...schedulerOptions } = options;
  const db = schedulerOptions.db === ':memory:' ? ':memory:' : resolve(schedulerOptions.db ?? SCHEDULER_DEFAULTS.db);
  const port = schedulerOptions.port ?? (await probePort('127.0.0.1', SCHEDULER_DEFAULTS.port).then(() => SCHEDULER_DEFAULTS.port, () => 0));
  const logLevel: LogLevel = schedulerOptions.logLevel ?? 'warn';
  const scheduler = await Scheduler.start({
    ...schedulerOptions,
    db,
    port,
    host: schedulerOptions.host ?? '127.0.0.1',
    logLevel,
    logger: (level, line) => process.stderr.write(`[dispatch] ${level === 'error' || level === 'warn' ? `${level}: ` : ''}${line}\n`),
    transport: 'in-process',
    startPaused: true,
    keepProcessAlive: false,
  });
  const recorded = await scheduler.store.getMeta(ENDPOINT_ADDR_META);
  const addr = givenAddr ?? recorded ?? env.DISPATCH_ENDPOINT_ADDR ?? DEFAULT_ENDPOINT_ADDR;
  const { host, port: endpointPort } = parseAddress(addr, '--endpoint-addr');
  await scheduler.store.initMeta(ENDPOINT_ADDR_META, addr);
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const endpointUrl = `http://${formatHostPort(urlHost, endpointPort)}`;

  // What the app's configuration reads; no signing key: in process, nothing is signed.
  env.DISPATCH_API_URL = scheduler.url;
  env.DISPATCH_API_KEY = scheduler.apiKey;
  env.DISPATCH_ENDPOINT_URL = endpointUrl;
  env.DISPATCH_ENDPOINT_ADDR = addr;
  env.DISPATCH_VERIFICATION_KEY = scheduler.verificationKey;
  env[IN_PROCESS_ENV] = '1';
  registry.host = { name: scheduler.instanceId };

  const removeStateFile = writeStateFile(db, {
    apiUrl: scheduler.url,
    apiKey: scheduler.apiKey,
    pid: process.pid,
    db,
    verificationKey: scheduler.verificationKey,
    endpointUrl,
  });
  process.once('exit', removeStateFile);
  const { counts } = await scheduler.list({ limit: 1 });
  const unfinished = counts.pending + counts.running + counts.suspended;
  process.stderr.write(
    `[dispatch] in-process scheduler ${scheduler.url} · database ${db} · app endpoint ${endpointUrl} (runs in this process)` +
      `${unfinished > 0 ? ` · resuming ${unfinished} unfinished call(s) once the app listens on ${addr}` : ''}\n` +
      `[dispatch] dashboard ${scheduler.dashboardLoginUrl()} (a one-time login link; then ${scheduler.dashboardUrl} with the API key)\n`,
  );

  // Calls run once the app listens on its endpoint address: its functions are registered by then.
  let stopped = false;
  const poll = () => {
    if (stopped) return;
    accepts(urlHost, endpointPort).then((yes) => {
      if (yes) scheduler.startRunning();
      else setTimeout(poll, 20).unref();
    });
  };
  poll();

  for (const signal of Object.keys(SIGNALS) as NodeJS.Signals[]) {
    const onSignal = () => {
      process.off(signal, onSignal);
      stopped = true;
      const appHandles = process.listenerCount(signal) > 0;
      void scheduler.close().finally(() => {
        removeStateFile();
        // Without a handler of the app's, the signal ends the process as it would have.
        if (!appHandles) process.exit(128 + (SIGNALS[signal] ?? 0));
      });
    };
    process.on(signal, onSignal);
  }
  return scheduler;
}

/** Whether a TCP connection to `host:port` is accepted now (it is closed at once). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = net.connect({ host, port });
    socket.unref();
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => {
      socket.destroy();
      done(false);
    });
  });
}
