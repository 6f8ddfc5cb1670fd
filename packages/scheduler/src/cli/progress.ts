/**
 * What `dispatch run` shows: the command's output lines with a prefix, and
 * the progress of calls — a live status line on a terminal (running,
 * waiting, retrying, done, failed), plain lines otherwise.
 * @module
 */
import type { AttemptEvent, DispatchedEvent, FinishedEvent } from '../events.js';
import { displayValue, humanMs, shortJson } from './format.js';
import type { Scheduler } from '../scheduler.js';
import { runCountsText } from '../store/policy.js';
import type { CallState } from '../store/store.js';

type Stream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/**
 * Options of {@link RunOutput}.
 * @example
 * new RunOutput({ stdout: process.stdout, stderr: process.stderr, live: process.stderr.isTTY === true, color: true, quiet: false, appName: 'node' });
 */
export interface RunOutputOptions {
  stdout: Stream;
  stderr: Stream;
  /** Redraw one status line in place (a terminal); otherwise print one line per event. */
  live: boolean;
  color: boolean;
  /** Print no line per call (the live status line stays). */
  quiet: boolean;
  /** Prefix of the command's lines. */
  appName: string;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

interface Track {
  function: string;
  attempt: number;
  resumes: number;
  retrying: boolean;
  error?: { type: string; message: string };
  status?: string;
}

/**
 * Prefixed output and call progress for `dispatch run`.
 */
export class RunOutput {
  readonly #o: RunOutputOptions;
  readonly #width: number;
  readonly #tracks = new Map<string, Track>();
  readonly #topLevel = new Set<string>();
  #counts: Record<CallState, number> = { pending: 0, running: 0, suspended: 0, succeeded: 0, failed: 0, cancelled: 0 };
  #baseline: Record<CallState, number> | null = null;
  #statusShown = false;
  #frame = 0;
  #timer: NodeJS.Timeout | null = null;
  #detach: (() => void) | null = null;
  #refreshing = false;
  readonly #pending = new Set<Promise<void>>();

  constructor(options: RunOutputOptions) {
    this.#o = options;
    this.#width = Math.max('dispatch'.length, options.appName.length);
  }

  #paint(code: string, text: string): string {
    return this.#o.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  #prefix(name: string): string {
    return this.#paint(name === 'dispatch' ? '36' : '2', `${name.padEnd(this.#width)} |`);
  }

  #clearStatus(): void {
    if (this.#statusShown) {
      this.#o.stderr.write('\r\x1b[2K');
      this.#statusShown = false;
    }
  }

  #write(stream: Stream, line: string): void {
    this.#clearStatus();
    stream.write(`${line}\n`);
    this.#drawStatus();
  }

  /** A line of the command's output. */
  appLine(which: 'stdout' | 'stderr', line: string): void {
    this.#write(which === 'stdout' ? this.#o.stdout : this.#o.stderr, `${this.#prefix(this.#o.appName)} ${line}`);
  }

  /** A line of the CLI itself. */
  note(line: string): void {
    this.#write(this.#o.stderr, `${this.#prefix('dispatch')} ${line}`);
  }

  /** Follows a scheduler's events until {@link stop}. */
  async attach(scheduler: Scheduler): Promise<void> {
    const onDispatched = (e: DispatchedEvent) => this.#dispatched(e);
    const onAttempt = (e: AttemptEvent) => this.#attempt(e);
    const onFinished = (e: FinishedEvent) => this.#finished(scheduler, e);
    scheduler.on('dispatched', onDispatched);
    scheduler.on('attempt', onAttempt);
    scheduler.on('finished', onFinished);
    this.#detach = () => {
      scheduler.off('dispatched', onDispatched);
      scheduler.off('attempt', onAttempt);
      scheduler.off('finished', onFinished);
    };
    await this.#refresh(scheduler);
    if (this.#o.live) {
      this.#timer = setInterval(() => {
        this.#frame++;
        void this.#refresh(scheduler);
      }, 120);
      this.#timer.unref();
    }
  }

  async #refresh(scheduler: Scheduler): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      const { counts } = await scheduler.list({ limit: 1 });
      this.#baseline ??= { ...counts };
      this.#counts = counts;
      this.#drawStatus();
    } catch {
      // the store is closing
    } finally {
      this.#refreshing = false;
    }
  }

  /** Unfinished calls when last counted (pending, running or suspended). */
  get unfinished(): number {
    return this.#counts.pending + this.#counts.running + this.#counts.suspended;
  }

  /** The status line text (without colors). */
  statusText(): string {
    const c = this.#counts;
    const b = this.#baseline ?? c;
    const retrying = [...this.#tracks.values()].filter((t) => t.retrying).length;
    const running = Math.max(0, c.pending + c.running - retrying);
    const parts = [`${running} running`, `${c.suspended} waiting`, `${retrying} retrying`, `${Math.max(0, c.succeeded - b.succeeded)} done`];
    const failed = Math.max(0, c.failed - b.failed) + Math.max(0, c.cancelled - b.cancelled);
    parts.push(`${failed} failed`);
    return parts.join(' · ');
  }

  #drawStatus(): void {
    if (!this.#o.live || !this.#timer) return;
    const active = this.unfinished > 0;
    const icon = active ? (SPINNER[this.#frame % SPINNER.length] as string) : '•';
    let text = `${icon} calls: ${this.statusText()}`;
    const columns = this.#o.stderr.columns || 100;
    if (text.length + this.#width + 3 > columns) text = text.slice(0, Math.max(10, columns - this.#width - 4));
    this.#o.stderr.write(`\r\x1b[2K${this.#prefix('dispatch')} ${this.#paint('1', text)}`);
    this.#statusShown = true;
  }

  #dispatched(e: DispatchedEvent): void {
    e.dispatchIds.forEach((id, i) => {
      this.#topLevel.add(id);
      this.#tracks.set(id, { function: e.functions[i] ?? '', attempt: 0, resumes: 0, retrying: false });
      if (!this.#o.live && !this.#o.quiet) this.note(`${this.#paint('2', 'dispatched')} ${e.functions[i]} ${id}`);
    });
  }

  #attempt(e: AttemptEvent): void {
    const t = this.#tracks.get(e.dispatchId) ?? { function: e.function, attempt: 0, resumes: 0, retrying: false };
    t.function = e.function;
    t.attempt = e.attempt;
    t.resumes = e.resumes;
    t.retrying = e.outcome === 'retry';
    t.status = e.statusName;
    if (e.error) t.error = e.error;
    else delete t.error;
    this.#tracks.set(e.dispatchId, t);
    if (e.outcome === 'retry' && !this.#o.live && !this.#o.quiet) {
      const wait = e.nextRunAt === undefined ? '' : `; retry in ${humanMs(Math.max(0, e.nextRunAt - Date.now()))}`;
      const why = e.error ? ` (${e.error.type}: ${oneLine(e.error.message)})` : '';
      const run = e.resume ? `resume ${e.resumes}` : `attempt ${e.attempt}`;
      this.note(`${this.#paint('33', 'retrying')} ${e.function} ${e.dispatchId}: ${run} ended with ${e.statusName}${why}${wait}`);
    }
  }

  #finished(scheduler: Scheduler, e: FinishedEvent): void {
    const t = this.#tracks.get(e.dispatchId);
    this.#tracks.delete(e.dispatchId);
    const dispatched = this.#topLevel.delete(e.dispatchId);
    if (this.#o.quiet) return;
    const runs = t?.attempt ? ` after ${runCountsText({ attempts: t.attempt, resumes: t.resumes })}` : '';
    const label = e.state === 'succeeded' ? this.#paint('32', 'done') : this.#paint('31', e.state === 'cancelled' ? 'cancelled' : 'failed');
    const note = scheduler.store.getCall(e.dispatchId).then(
      (rec) => {
        // Root calls (what the app dispatched) show their result; on a terminal, children only when they fail.
        const root = dispatched || (rec !== null && rec.parentId === null);
        if (e.state === 'succeeded') {
          if (this.#o.live && !root) return;
          const value = root ? displayValue(rec?.output) : undefined;
          this.note(`${label} ${e.function} ${e.dispatchId}${runs}${value === undefined ? '' : ` → ${shortJson(value, 100)}`}`);
          return;
        }
        const err = rec?.error ?? (t?.error ? { type: t.error.type, message: t.error.message } : null);
        const expired = e.statusName === 'TIMEOUT' && !!err?.message?.includes('expired');
        this.note(`${label} ${e.function} ${e.dispatchId}${runs}: ${expired ? 'expired' : e.statusName}${err ? ` ${err.type}: ${oneLine(err.message ?? '')}` : ''}`);
      },
      () => this.note(`${label} ${e.function} ${e.dispatchId}${runs}: ${e.statusName}`),
    );
    this.#pending.add(note);
    void note.finally(() => this.#pending.delete(note));
  }

  /** Resolves once the lines of calls that finished so far are printed. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Stops following events and removes the status line. */
  stop(): void {
    this.#detach?.();
    this.#detach = null;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#clearStatus();
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > 160 ? `${line.slice(0, 159)}…` : line;
}

/**
 * Splits a stream into lines (the last partial line is flushed at its end).
 * @example
 * splitLines(child.stdout, (line) => console.log(`app | ${line}`));
 */
export function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      let i = rest.indexOf('\n');
      while (i >= 0) {
        onLine(rest.slice(0, i).replace(/\r$/, ''));
        rest = rest.slice(i + 1);
        i = rest.indexOf('\n');
      }
    });
    const end = () => {
      if (rest) onLine(rest);
      rest = '';
      resolve();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  });
}
