/**
 * Log lines of the scheduler, filtered by a level, without secrets.
 * @module
 */
import { Redactor } from './redact.js';

/**
 * Verbosity: `debug` shows everything, `silent` nothing. Run attempts are
 * logged at `info` (retried failures at `warn`, final failures at `error`).
 * @example
 * const level: LogLevel = 'warn';
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';

/**
 * Where log lines go: `(level, line)`. The default writes to stderr.
 * @example
 * const sink: LogSink = (level, line) => myLogger[level](line);
 */
export type LogSink = (level: Exclude<LogLevel, 'silent'>, line: string) => void;

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
    sink: LogSink = (lvl, line) => process.stderr.write(`${new Date().toISOString()} ${lvl.padEnd(5)} ${line}\n`),
    redactor: Redactor = new Redactor(),
  ) {
    this.#sink = sink;
    this.redactor = redactor;
    if (!(level in RANK)) throw new RangeError(`logLevel must be one of error, warn, info, debug, silent; got ${JSON.stringify(level)}`);
    this.#rank = RANK[level];
  }

  /** Whether lines of `level` are written. */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return RANK[level] <= this.#rank;
  }

  log(level: Exclude<LogLevel, 'silent'>, line: string): void {
    if (this.enabled(level)) this.#sink(level, this.redactor.redact(line));
  }

  error(line: string): void {
    this.log('error', line);
  }
  warn(line: string): void {
    this.log('warn', line);
  }
  info(line: string): void {
    this.log('info', line);
  }
  debug(line: string): void {
    this.log('debug', line);
  }
}
