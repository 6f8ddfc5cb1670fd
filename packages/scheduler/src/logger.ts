/**
 * Log lines of the scheduler, filtered by a level, without secrets.
 * @module
 */
import pino from 'pino';
import { Redactor } from './redact.js';

/**
 * Verbosity: `debug` shows everything, `silent` nothing. Run attempts are
 * logged at `info` (retried failures at `warn`, final failures at `error`).
 * @example
 * const level: LogLevel = 'warn';
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';

/**
 * Where log lines go: `(level, line, fields)`, the line and its fields
 * already redacted. The default writes to stderr, as text or JSON
 * ({@link LogFormat}).
 * @example
 * const sink: LogSink = (level, line, fields) => myLogger[level](fields ?? {}, line);
 */
export type LogSink = (level: Exclude<LogLevel, 'silent'>, line: string, fields?: LogFields) => void;

/**
 * Structured fields of a log line (an attempt's dispatch ID, function,
 * status...): in the JSON format, fields of the line's object; in the text
 * format, already written in the line.
 * @example
 * const fields: LogFields = { event: 'attempt', dispatch_id: 'A1', function: 'charge', status: 'OK' };
 */
export type LogFields = Record<string, string | number | boolean | undefined>;

/**
 * How the default sink writes: `text` (a time, the level, the line) or
 * `json` (one JSON object per line, through pino) with the stable fields
 * `level` (error, warn, info, debug), `time` (ISO 8601), `pid`, `name`
 * (`dispatch-scheduler`), `msg`, and the line's {@link LogFields}.
 * @example
 * const format: LogFormat = 'json';
 */
export type LogFormat = 'text' | 'json';

/**
 * The log formats, for flags and their errors.
 * @example
 * if (!LOG_FORMATS.includes(value as LogFormat)) throw new Error(`--log-format must be ${LOG_FORMATS.join(' or ')}`);
 */
export const LOG_FORMATS: readonly LogFormat[] = Object.freeze(['text', 'json']);

const textSink: LogSink = (lvl, line) => process.stderr.write(`${new Date().toISOString()} ${lvl.padEnd(5)} ${line}\n`);

/**
 * A sink writing one JSON object per line through pino (synchronously, so
 * that no line is lost at exit), to stderr by default.
 * @example
 * const log = new Logger('info', jsonLogSink());
 */
export function jsonLogSink(destination: number | NodeJS.WritableStream = 2): LogSink {
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination;
  const logger = pino(
    {
      name: 'dispatch-scheduler',
      level: 'debug',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  return (level, line, fields) => {
    if (fields) logger[level](fields, line);
    else logger[level](line);
  };
}

const RANK: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

/**
 * A logger that drops lines above `level` and redacts passwords and keys in
 * the others (see `redact.ts`; its redactor learns the scheduler's keys once
 * they are known).
 * @example
 * const log = new Logger('info');
 * log.info('listening on http://127.0.0.1:4450');
 */
export class Logger {
  readonly #rank: number;
  /** Hides secrets in every line; add a secret to it as soon as it is known. */
  readonly redactor: Redactor;

  readonly #sink: LogSink;
  constructor(
    readonly level: LogLevel = 'info',
    sink?: LogSink,
    redactor: Redactor = new Redactor(),
    format: LogFormat = 'text',
  ) {
    if (!LOG_FORMATS.includes(format)) throw new RangeError(`logFormat must be text or json; got ${JSON.stringify(format)}`);
    this.#sink = sink ?? (format === 'json' ? jsonLogSink() : textSink);
    this.redactor = redactor;
    if (!(level in RANK)) throw new RangeError(`logLevel must be one of error, warn, info, debug, silent; got ${JSON.stringify(level)}`);
    this.#rank = RANK[level];
  }

  /** Whether lines of `level` are written. */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return RANK[level] <= this.#rank;
  }

  /** Writes `line` (and its structured `fields`) at `level`, secrets redacted in both. */
  log(level: Exclude<LogLevel, 'silent'>, line: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    if (!fields) {
      this.#sink(level, this.redactor.redact(line));
      return;
    }
    const clean: LogFields = {};
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) clean[k] = typeof v === 'string' ? this.redactor.redact(v) : v;
    this.#sink(level, this.redactor.redact(line), clean);
  }

  error(line: string, fields?: LogFields): void {
    this.log('error', line, fields);
  }
  warn(line: string, fields?: LogFields): void {
    this.log('warn', line, fields);
  }
  info(line: string, fields?: LogFields): void {
    this.log('info', line, fields);
  }
  debug(line: string, fields?: LogFields): void {
    this.log('debug', line, fields);
  }
}
