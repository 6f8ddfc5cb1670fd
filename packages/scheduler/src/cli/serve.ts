/**
 * `dispatch serve`: the scheduler alone, for apps started separately (and,
 * with PostgreSQL, on several machines).
 * @module
 */
import { relative, resolve } from 'node:path';
import { redactKey } from '@dispatch/core/protocol';
import { CLI_DEFAULT_DB, CliError, type CliIO, parsePort, writeStateFile } from './common.js';
import type { LogLevel } from '../logger.js';
import { Scheduler } from '../scheduler.js';
import { DEFAULT_PORT, type SchedulerOptions } from '../options.js';

/** Flags of `dispatch serve`. */
export interface ServeFlags {
  db?: string;
  port?: string;
  host?: string;
  apiKey?: string[];
  logLevel?: string;
  synchronous?: string;
  maxAttempts?: string;
  leaseMs?: string;
  claimBatch?: string;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'silent'];

/**
 * Runs `dispatch serve` until SIGINT/SIGTERM (a second one exits at once);
 * resolves to the exit code.
 */
export async function serveCommand(flags: ServeFlags, io: CliIO): Promise<number> {
  const logLevel = (flags.logLevel ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(flags.logLevel)}`, 2);
  const port = flags.port === undefined ? DEFAULT_PORT : parsePort(flags.port, '--port');
  const host = flags.host ?? '127.0.0.1';
  const options: SchedulerOptions = { port, host, logLevel };
  const keys = flags.apiKey?.length ? flags.apiKey : io.env.DISPATCH_API_KEY?.trim() ? [io.env.DISPATCH_API_KEY.trim()] : [];
  if (keys.length) options.apiKeys = keys;
  if (io.env.DISPATCH_SIGNING_KEY?.trim()) options.signingKey = io.env.DISPATCH_SIGNING_KEY.trim();
  if (flags.synchronous) {
    const s = flags.synchronous.toUpperCase();
    if (s !== 'NORMAL' && s !== 'FULL') throw new CliError(`--synchronous must be NORMAL or FULL, got ${JSON.stringify(flags.synchronous)}`, 2);
    options.synchronous = s;
  }
  if (flags.maxAttempts !== undefined) {
    const n = Number(flags.maxAttempts);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--max-attempts must be an integer ≥ 1, got ${JSON.stringify(flags.maxAttempts)}`, 2);
    options.maxAttempts = n;
  }
  for (const [flag, value, key] of [
    ['--lease-ms', flags.leaseMs, 'leaseMs'],
    ['--claim-batch', flags.claimBatch, 'claimBatch'],
  ] as const) {
    if (value === undefined) continue;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag} must be an integer ≥ 1, got ${JSON.stringify(value)}`, 2);
    options[key] = n;
  }
  const dbFlag = flags.db ?? CLI_DEFAULT_DB;
  const postgres = /^postgres(ql)?:\/\//.test(dbFlag);
  let dbShown: string;
  let db = ':memory:';
  if (postgres) {
    // Scheduler.start opens the PostgreSQL store (PgStore) for a postgres:// URL.
    options.db = dbFlag;
    dbShown = dbFlag.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  } else {
    db = dbFlag === ':memory:' ? dbFlag : resolve(io.cwd, dbFlag);
    options.db = db;
    const rel = relative(io.cwd, db);
    dbShown = db === ':memory:' ? db : rel && !rel.startsWith('..') ? rel : db;
  }

  let scheduler: Scheduler;
  try {
    scheduler = await Scheduler.start(options);
  } catch (err) {
    const message = (err as Error).message;
    if (/already in use/.test(message)) throw new CliError(`${message}; with dispatch serve: --port N`);
    if (/in use by another scheduler/.test(message)) throw new CliError(`${message} (--db)`);
    if (options.signingKey && /signing key/i.test(message)) throw new CliError(`DISPATCH_SIGNING_KEY is not a usable Ed25519 private key: ${message}`);
    throw new CliError(`cannot start the scheduler on ${dbShown}: ${message}`);
  }
  const removeStateFile = postgres
    ? () => {}
    : writeStateFile(db, { apiUrl: scheduler.url, apiKey: scheduler.apiKey, pid: process.pid, db, verificationKey: scheduler.verificationKey });
  const shownKey = keys.length ? `${redactKey(scheduler.apiKey)} (given)` : scheduler.apiKey;
  const bound = host === '0.0.0.0' || host === '::' ? ` (listening on ${host}:${scheduler.url.split(':').pop()})` : '';
  io.stdout.write(
    [
      'Dispatch scheduler ready',
      `  API URL           ${scheduler.url}${bound}   DISPATCH_API_URL`,
      `  API key           ${shownKey}   DISPATCH_API_KEY`,
      `  verification key  ${scheduler.verificationKey}   DISPATCH_VERIFICATION_KEY (apps verify requests with it)`,
      `  database          ${dbShown}`,
      `  dashboard         ${scheduler.dashboardUrl}   sign in with the API key`,
      `  dashboard login   ${scheduler.dashboardLoginUrl()}   (a one-time link, valid for an hour)`,
      '',
      'Start an app with:',
      `  DISPATCH_API_URL=${scheduler.url} DISPATCH_API_KEY=${keys.length ? '<key>' : scheduler.apiKey} \\`,
      `  DISPATCH_VERIFICATION_KEY=${scheduler.verificationKey} \\`,
      '  DISPATCH_ENDPOINT_URL=http://127.0.0.1:8000 node app.js',
      '',
    ].join('\n'),
  );

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        io.stderr.write(`${signal} again: exiting at once\n`);
        removeStateFile();
        resolveExit(130);
        return;
      }
      stopping = true;
      io.stderr.write(`${signal}: finishing the runs in flight (send it again to exit at once)\n`);
      scheduler.close().then(
        async () => {
          removeStateFile();
          for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, handlers[s]);
          resolveExit(0);
        },
        (err) => {
          io.stderr.write(`error while stopping: ${(err as Error).message}\n`);
          removeStateFile();
          resolveExit(1);
        },
      );
    };
    const handlers = { SIGINT: () => stop('SIGINT'), SIGTERM: () => stop('SIGTERM') };
    process.on('SIGINT', handlers.SIGINT);
    process.on('SIGTERM', handlers.SIGTERM);
  });
}
