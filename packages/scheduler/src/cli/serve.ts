/**
 * `dispatch serve`: the scheduler alone, for apps started separately (and,
 * with PostgreSQL, on several machines). It is the scheduler's process
 * entry: tests and benchmarks start it with `--ready-json`.
 * @module
 */
import { relative, resolve } from 'node:path';
import { redactKey } from '@dispatch/core/protocol';
import { type Command, Option } from 'commander';
import {
  CliError,
  type CliContext,
  type CliIO,
  LOG_LEVELS,
  parseInteger,
  parseLogLevel,
  parsePort,
  readKeyFile,
  readKeyText,
  signingKeyFlagRefused,
  warnKeyFlag,
  writeStateFile,
} from './common.js';
import { observeFlagOptions, type SchedulerFlags, schedulerFlagOptions, withSchedulerFlags } from './scheduler-flags.js';
import { SCHEDULER_DEFAULTS, type SchedulerOptions } from '../options.js';
import { Scheduler } from '../scheduler.js';
import { isPgUrl } from '../store/pg/pg-store.js';
import { redactText } from '../redact.js';
import { jsonLogSink } from '../logger.js';

/** Flags of `dispatch serve`. */
export interface ServeFlags extends SchedulerFlags {
  db?: string;
  port?: string;
  host?: string;
  apiKey?: string[];
  apiKeyFile?: string;
  signingKey?: string;
  signingKeyFile?: string;
  logLevel?: string;
  synchronous?: string;
  leaseMs?: string;
  claimBatch?: string;
  readyJson?: boolean;
}

/**
 * The line `dispatch serve --ready-json` prints to stdout once it listens.
 * @example
 * const ready = JSON.parse(firstLine) as ServeReady;
 */
export interface ServeReady {
  url: string;
  apiKey: string;
  verificationKey: string;
  pid: number;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const d = SCHEDULER_DEFAULTS;

/**
 * Declares `dispatch serve` on the program.
 * @example
 * addServeCommand(program, cli);
 */
export function addServeCommand(program: Command, cli: CliContext): void {
  const serve = program
    .command('serve')
    .description('run the scheduler alone until SIGINT/SIGTERM')
    .option('--db <path|url>', 'SQLite file, :memory:, or postgres://user@host/db[?schema=S&pool_size=N&vacuum_every=N]', d.db)
    .option('--port <n>', 'API port, 0 for a free one', String(d.port))
    .option('--host <host>', 'interface to bind', d.host)
    .option('--api-key-file <path>', 'file of accepted API keys, one per line (default: DISPATCH_API_KEY, else one generated and kept in the database)')
    .option('--api-key <key>', 'accepted API key, repeatable; shows in ps: prefer DISPATCH_API_KEY or --api-key-file', collect)
    .option('--signing-key-file <path>', 'file holding the Ed25519 private key that signs requests (default: DISPATCH_SIGNING_KEY, else one generated and kept in the database)')
    .addOption(new Option('--signing-key <key>').hideHelp())
    .option('--log-level <level>', `${LOG_LEVELS.join(', ')} (info: one line per attempt)`, d.logLevel)
    .option('--synchronous <mode>', `SQLite durability: NORMAL (survives a process crash) or FULL (also a power loss) (default: ${d.synchronous})`)
    .option('--lease-ms <n>', `lease of a claimed call, renewed while it runs; another instance takes it over once it expires (default ${d.leaseMs})`)
    .option('--claim-batch <n>', `most calls claimed from the database at once (default ${d.claimBatch})`);
  withSchedulerFlags(serve)
    .option('--ready-json', 'once listening, print one line of JSON to stdout instead of the banner: {"url","apiKey","verificationKey","pid"}')
    .addHelpText(
      'after',
      `
The signing key pair and the API key are created on first start and kept in the
database (a file of mode 0600 in a 0700 directory). To give your own, use the
environment or a file, not a flag: a flag shows in ps to every user.
  DISPATCH_API_KEY or --api-key-file          API keys, 16 characters or more
  DISPATCH_SIGNING_KEY or --signing-key-file  Ed25519 private key, PEM or base64
  PGPASSWORD                                  PostgreSQL password (not in --db)
--api-key works, with a warning; --signing-key is refused. Passwords and keys
are shown as *** in the banner, errors and logs.
`,
    )
    .action((flags: ServeFlags) => cli.done(serveCommand(flags, cli.io)));
}

/** The scheduler options of the flags (exit 2 on a bad value). */
function optionsOf(flags: ServeFlags, io: CliIO): SchedulerOptions {
  const options: SchedulerOptions = {
    ...schedulerFlagOptions(flags),
    port: flags.port === undefined ? d.port : parsePort(flags.port, '--port'),
    host: flags.host ?? d.host,
    logLevel: parseLogLevel(flags.logLevel ?? d.logLevel),
    ...observeFlagOptions(flags, io),
  };
  if (flags.signingKey !== undefined) throw signingKeyFlagRefused();
  if (flags.apiKey?.length) warnKeyFlag(io, '--api-key', 'DISPATCH_API_KEY or --api-key-file');
  const keys = [
    ...(flags.apiKeyFile === undefined ? [] : readKeyFile(flags.apiKeyFile, '--api-key-file', io)),
    ...(flags.apiKey ?? []),
  ];
  if (keys.length === 0 && io.env.DISPATCH_API_KEY?.trim()) keys.push(io.env.DISPATCH_API_KEY.trim());
  if (keys.length) options.apiKeys = keys;
  if (flags.signingKeyFile !== undefined) options.signingKey = readKeyText(flags.signingKeyFile, '--signing-key-file', io);
  else if (io.env.DISPATCH_SIGNING_KEY?.trim()) options.signingKey = io.env.DISPATCH_SIGNING_KEY.trim();
  if (flags.synchronous) {
    const s = flags.synchronous.toUpperCase();
    if (s !== 'NORMAL' && s !== 'FULL') throw new CliError(`--synchronous must be NORMAL or FULL, got ${JSON.stringify(flags.synchronous)}`, 2);
    options.synchronous = s;
  }
  if (flags.leaseMs !== undefined) options.leaseMs = parseInteger(flags.leaseMs, '--lease-ms');
  if (flags.claimBatch !== undefined) options.claimBatch = parseInteger(flags.claimBatch, '--claim-batch');
  return options;
}

/**
 * Runs `dispatch serve` until SIGINT/SIGTERM (a second one exits at once);
 * resolves to the exit code.
 * @example
 * process.exitCode = await serveCommand({ port: '0' }, io);
 */
export async function serveCommand(flags: ServeFlags, io: CliIO): Promise<number> {
  const options = optionsOf(flags, io);
  const dbFlag = flags.db ?? d.db;
  const postgres = isPgUrl(dbFlag);
  let dbShown: string;
  let db = ':memory:';
  if (postgres) {
    // Scheduler.start opens the PostgreSQL store (PgStore) for a postgres:// URL.
    options.db = dbFlag;
    dbShown = redactText(dbFlag);
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
    if (options.signingKey && /signing key/i.test(message)) {
      const from = flags.signingKeyFile === undefined ? 'DISPATCH_SIGNING_KEY' : `--signing-key-file ${flags.signingKeyFile}`;
      throw new CliError(`${from} is not a usable Ed25519 private key: ${message}`);
    }
    if (/metrics token/.test(message) && err instanceof RangeError) {
      throw new CliError(`${message} (from ${flags.metricsToken !== undefined ? '--metrics-token' : 'DISPATCH_METRICS_TOKEN'})`, 2);
    }
    if (/API key/.test(message) && err instanceof RangeError) {
      const from = flags.apiKeyFile !== undefined ? '--api-key-file' : flags.apiKey?.length ? '--api-key' : 'DISPATCH_API_KEY';
      throw new CliError(`${message} (from ${from})`, 2);
    }
    throw new CliError(`cannot start the scheduler on ${dbShown}: ${message}`);
  }
  const removeStateFile = postgres
    ? () => {}
    : writeStateFile(db, { apiUrl: scheduler.url, apiKey: scheduler.apiKey, pid: process.pid, db, verificationKey: scheduler.verificationKey });
  if (flags.readyJson) {
    const ready: ServeReady = { url: scheduler.url, apiKey: scheduler.apiKey, verificationKey: scheduler.verificationKey, pid: process.pid };
    io.stdout.write(`${JSON.stringify(ready)}\n`);
  } else {
    io.stdout.write(banner(scheduler, dbShown, !!options.apiKeys, options.host ?? d.host));
  }

  // What serve itself says once running: a log line like the scheduler's (JSON in the JSON format).
  const json = options.logFormat === 'json' ? jsonLogSink(io.stderr) : undefined;
  const say = (level: 'info' | 'error', line: string) => {
    if (json) json(level, redactText(line), { event: 'shutdown' });
    else io.stderr.write(`${line}\n`);
  };
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        say('info', `${signal} again: exiting at once`);
        removeStateFile();
        resolveExit(130);
        return;
      }
      stopping = true;
      say('info', `${signal}: finishing the runs in flight (send it again to exit at once)`);
      scheduler.close().then(
        async () => {
          removeStateFile();
          for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, handlers[s]);
          resolveExit(0);
        },
        (err) => {
          say('error', `error while stopping: ${(err as Error).message}`);
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

/** What `dispatch serve` prints for a person once it listens. */
function banner(scheduler: Scheduler, dbShown: string, keyGiven: boolean, host: string): string {
  const shownKey = keyGiven ? `${redactKey(scheduler.apiKey)} (given)` : scheduler.apiKey;
  const bound = host === '0.0.0.0' || host === '::' ? ` (listening on ${host}:${scheduler.url.split(':').pop()})` : '';
  return [
    'Dispatch scheduler ready',
    `  API URL           ${scheduler.url}${bound}   DISPATCH_API_URL`,
    `  API key           ${shownKey}   DISPATCH_API_KEY`,
    `  verification key  ${scheduler.verificationKey}   DISPATCH_VERIFICATION_KEY (apps verify requests with it)`,
    `  database          ${dbShown}`,
    `  dashboard         ${scheduler.dashboardUrl}   sign in with the API key`,
    `  dashboard login   ${scheduler.dashboardLoginUrl()}   (a one-time link, valid for an hour)`,
    `  metrics           ${scheduler.url}/metrics   Prometheus text; Authorization: Bearer <API key> (or DISPATCH_METRICS_TOKEN)`,
    '',
    'Start an app with:',
    `  DISPATCH_API_URL=${scheduler.url} DISPATCH_API_KEY=${keyGiven ? '<key>' : scheduler.apiKey} \\`,
    `  DISPATCH_VERIFICATION_KEY=${scheduler.verificationKey} \\`,
    '  DISPATCH_ENDPOINT_URL=http://127.0.0.1:8000 node app.js',
    '',
  ].join('\n');
}
