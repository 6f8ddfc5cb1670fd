/**
 * Options of the scheduler process entry (`main.ts`), from argv and the
 * environment. The `dispatch` CLI wraps the same entry; tests start it as a
 * child process (for kill -9 crash tests).
 * @module
 */
import { parseArgs } from 'node:util';
import type { LogLevel } from '../logger.js';
import type { SchedulerOptions } from '../options.js';

/**
 * Usage text of `main.js`.
 * @example
 * process.stdout.write(MAIN_USAGE);
 */
export const MAIN_USAGE = `Usage: node main.js [options]

Runs the Dispatch scheduler until SIGINT or SIGTERM. On start it prints one
line of JSON to stdout: {"url","apiKey","verificationKey","pid"}.

Options (environment variable in brackets):
  --db PATH|URL             SQLite file, :memory:, or postgres://user@host/db[?schema=S&pool_size=N]
                            [DISPATCH_SCHEDULER_DB] (default .dispatch/scheduler.db)
  --port N                  API port, 0 for a free one [DISPATCH_SCHEDULER_PORT] (default 4450)
  --host HOST               interface to bind [DISPATCH_SCHEDULER_HOST] (default 127.0.0.1)
  --api-key KEY             accepted API key, repeatable [DISPATCH_API_KEY] (default: generated and kept)
  --signing-key KEY         Ed25519 private key, PEM or base64 [DISPATCH_SIGNING_KEY] (default: generated and kept)
  --log-level LEVEL         error, warn, info, debug or silent [DISPATCH_LOG_LEVEL] (default info)
  --synchronous MODE        NORMAL or FULL [DISPATCH_SCHEDULER_SYNCHRONOUS] (default NORMAL)
  --request-timeout-ms N    timeout of one run request (default 300000)
  --max-attempts N          attempt cap per call (default none)
  --lease-ms N              lease of a claimed call, renewed while it runs (default 30000)
  --claim-batch N           most calls claimed at once (default 256)
  --concurrency-initial N, --concurrency-min N, --concurrency-max N
  -h, --help                show this text
`;

/**
 * Parses argv (without `node main.js`) and the environment; flags win over
 * the environment. Throws an Error naming a bad value.
 * @example
 * const { options } = parseMainArgs(['--db', ':memory:', '--port', '0'], process.env);
 */
export function parseMainArgs(argv: string[], env: NodeJS.ProcessEnv): { options: SchedulerOptions; help: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      db: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'api-key': { type: 'string', multiple: true },
      'signing-key': { type: 'string' },
      'log-level': { type: 'string' },
      synchronous: { type: 'string' },
      'request-timeout-ms': { type: 'string' },
      'max-attempts': { type: 'string' },
      'lease-ms': { type: 'string' },
      'claim-batch': { type: 'string' },
      'concurrency-initial': { type: 'string' },
      'concurrency-min': { type: 'string' },
      'concurrency-max': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  const int = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined || text === '') return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
    return n;
  };
  const options: SchedulerOptions = {};
  const db = values.db ?? env.DISPATCH_SCHEDULER_DB;
  if (db) options.db = db;
  const port = int('port', values.port ?? env.DISPATCH_SCHEDULER_PORT);
  if (port !== undefined) options.port = port;
  const host = values.host ?? env.DISPATCH_SCHEDULER_HOST;
  if (host) options.host = host;
  const keys = values['api-key'] ?? (env.DISPATCH_API_KEY ? [env.DISPATCH_API_KEY] : []);
  if (keys.length > 0) options.apiKeys = keys;
  const signingKey = values['signing-key'] ?? env.DISPATCH_SIGNING_KEY;
  if (signingKey) options.signingKey = signingKey;
  const level = values['log-level'] ?? env.DISPATCH_LOG_LEVEL;
  if (level) {
    if (!['error', 'warn', 'info', 'debug', 'silent'].includes(level)) {
      throw new Error(`--log-level must be error, warn, info, debug or silent, got ${JSON.stringify(level)}`);
    }
    options.logLevel = level as LogLevel;
  }
  const sync = (values.synchronous ?? env.DISPATCH_SCHEDULER_SYNCHRONOUS)?.toUpperCase();
  if (sync) {
    if (sync !== 'NORMAL' && sync !== 'FULL') throw new Error(`--synchronous must be NORMAL or FULL, got ${JSON.stringify(sync)}`);
    options.synchronous = sync;
  }
  const timeout = int('request-timeout-ms', values['request-timeout-ms']);
  if (timeout !== undefined) options.requestTimeoutMs = timeout;
  const attempts = int('max-attempts', values['max-attempts']);
  if (attempts !== undefined) options.maxAttempts = attempts;
  const leaseMs = int('lease-ms', values['lease-ms']);
  if (leaseMs !== undefined) options.leaseMs = leaseMs;
  const claimBatch = int('claim-batch', values['claim-batch']);
  if (claimBatch !== undefined) options.claimBatch = claimBatch;
  const initial = int('concurrency-initial', values['concurrency-initial']);
  const min = int('concurrency-min', values['concurrency-min']);
  const max = int('concurrency-max', values['concurrency-max']);
  if (initial !== undefined || min !== undefined || max !== undefined) {
    options.concurrency = {};
    if (initial !== undefined) options.concurrency.initial = initial;
    if (min !== undefined) options.concurrency.min = min;
    if (max !== undefined) options.concurrency.max = max;
  }
  return { options, help: !!values.help };
}
