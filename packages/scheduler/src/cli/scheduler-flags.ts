/**
 * The flags `dispatch run` and `dispatch serve` share: how calls are
 * retried, when they expire, how long one run may take, and the bounds of
 * adaptive concurrency. Declared and parsed once; each help text shows the
 * default from `SCHEDULER_DEFAULTS`.
 * @module
 */
import type { Command } from 'commander';
import { type CliIO, CliError, parseDurationFlag, parseInteger, warnKeyFlag } from './common.js';
import { LOG_FORMATS, type LogFormat } from '../logger.js';
import { durationText } from './format.js';
import { SCHEDULER_DEFAULTS, type SchedulerOptions } from '../options.js';

/** Values of the shared scheduler flags, as commander gives them. */
export interface SchedulerFlags {
  maxAttempts?: string;
  defaultExpiration?: string;
  maxExpiration?: string;
  backoffInitial?: string;
  backoffMax?: string;
  requestTimeoutMs?: string;
  concurrencyInitial?: string;
  concurrencyMin?: string;
  concurrencyMax?: string;
  maxCallsPerRequest?: string;
  logFormat?: string;
  metricsToken?: string;
  quarantineAfter?: string;
  probeMax?: string;
  /** False with `--no-local-resume`. */
  localResume?: boolean;
}

const d = SCHEDULER_DEFAULTS;

/**
 * Declares the shared scheduler flags on a command.
 * @example
 * withSchedulerFlags(program.command('serve'));
 */
export function withSchedulerFlags(cmd: Command): Command {
  return cmd
    .option('--max-attempts <n>', 'most consecutive failed attempts of a call before it fails for good (default: no cap, the expiration bounds retries)')
    .option('--default-expiration <duration>', `expiration of a call that sets none, from its creation (default ${durationText(d.defaultExpirationMs)})`)
    .option('--max-expiration <duration>', `cap of any call's expiration (default ${durationText(d.maxExpirationMs)})`)
    .option('--backoff-initial <duration>', `delay scale of the first retry; each next one doubles, with jitter (default ${durationText(d.backoff.initialMs)})`)
    .option('--backoff-max <duration>', `longest delay between two attempts (default ${durationText(d.backoff.maxMs)})`)
    .option('--request-timeout-ms <n>', `timeout of one run request; past it the attempt fails with TIMEOUT (default ${d.requestTimeoutMs})`)
    .option('--concurrency-initial <n>', `concurrency limit of an (endpoint, function) never seen before (default ${d.concurrency.initial})`)
    .option('--concurrency-min <n>', `lowest adaptive concurrency limit (default ${d.concurrency.min})`)
    .option('--concurrency-max <n>', `highest adaptive concurrency limit (default ${d.concurrency.max})`)
    .option('--max-calls-per-request <n>', `most calls in one DispatchRequest (default ${d.maxCallsPerRequest})`)
    .option('--log-format <format>', `scheduler log lines: text, or json (one JSON object per line, through pino) (default: DISPATCH_LOG_FORMAT, else ${d.logFormat})`)
    .option('--metrics-token <token>', 'a read-only bearer token for GET /metrics, beside the API keys; shows in ps: prefer DISPATCH_METRICS_TOKEN')
    .option('--quarantine-after <n>', `a call whose attempts crash the app (connection dropped mid-request) this many times in a row fails for good (default ${d.quarantineAfter})`)
    .option('--probe-max <duration>', `longest delay between two probes of an endpoint that refuses connections (default ${durationText(d.circuit.maxProbeMs)})`)
    .option('--no-local-resume', "resume every waiting parent with a request of its own, instead of letting this SDK's endpoints resume it with its child's answer in the same round trip (RunRequest.local_resume)");
}

/**
 * The log format and metrics token of the flags and the environment
 * (`DISPATCH_LOG_FORMAT`, `DISPATCH_METRICS_TOKEN`); exit 2 on a bad format.
 * @example
 * const { logFormat } = observeFlagOptions(flags, io);
 */
export function observeFlagOptions(flags: SchedulerFlags, io: CliIO): { logFormat: LogFormat; metricsToken?: string } {
  const fromEnv = io.env.DISPATCH_LOG_FORMAT?.trim();
  const value = flags.logFormat ?? (fromEnv || d.logFormat);
  if (!LOG_FORMATS.includes(value as LogFormat)) {
    const from = flags.logFormat !== undefined ? '--log-format' : 'DISPATCH_LOG_FORMAT';
    throw new CliError(`${from} must be ${LOG_FORMATS.join(' or ')}, got ${JSON.stringify(value)}`, 2);
  }
  const out: { logFormat: LogFormat; metricsToken?: string } = { logFormat: value as LogFormat };
  if (flags.metricsToken !== undefined) {
    warnKeyFlag(io, '--metrics-token', 'DISPATCH_METRICS_TOKEN');
    out.metricsToken = flags.metricsToken;
  } else if (io.env.DISPATCH_METRICS_TOKEN?.trim()) {
    out.metricsToken = io.env.DISPATCH_METRICS_TOKEN.trim();
  }
  return out;
}

/**
 * The scheduler options the shared flags set (nothing for flags not given).
 * @example
 * const options = { ...schedulerFlagOptions(flags), port: 0 };
 */
export function schedulerFlagOptions(flags: SchedulerFlags): SchedulerOptions {
  const options: SchedulerOptions = {};
  if (flags.maxAttempts !== undefined) options.maxAttempts = parseInteger(flags.maxAttempts, '--max-attempts');
  if (flags.defaultExpiration !== undefined) options.defaultExpirationMs = parseDurationFlag(flags.defaultExpiration, '--default-expiration');
  if (flags.maxExpiration !== undefined) options.maxExpirationMs = parseDurationFlag(flags.maxExpiration, '--max-expiration');
  if (flags.backoffInitial !== undefined) options.backoff = { ...options.backoff, initialMs: parseDurationFlag(flags.backoffInitial, '--backoff-initial') };
  if (flags.backoffMax !== undefined) options.backoff = { ...options.backoff, maxMs: parseDurationFlag(flags.backoffMax, '--backoff-max') };
  if (flags.requestTimeoutMs !== undefined) options.requestTimeoutMs = parseInteger(flags.requestTimeoutMs, '--request-timeout-ms');
  if (flags.maxCallsPerRequest !== undefined) options.maxCallsPerRequest = parseInteger(flags.maxCallsPerRequest, '--max-calls-per-request');
  if (flags.quarantineAfter !== undefined) options.quarantineAfter = parseInteger(flags.quarantineAfter, '--quarantine-after');
  if (flags.localResume === false) options.localResume = false;
  if (flags.probeMax !== undefined) {
    const maxProbeMs = parseDurationFlag(flags.probeMax, '--probe-max');
    options.circuit = { maxProbeMs, initialProbeMs: Math.min(maxProbeMs, d.circuit.initialProbeMs) };
  }
  for (const [flag, value, key] of [
    ['--concurrency-initial', flags.concurrencyInitial, 'initial'],
    ['--concurrency-min', flags.concurrencyMin, 'min'],
    ['--concurrency-max', flags.concurrencyMax, 'max'],
  ] as const) {
    if (value !== undefined) options.concurrency = { ...options.concurrency, [key]: parseInteger(value, flag) };
  }
  return options;
}
