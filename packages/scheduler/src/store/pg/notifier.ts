/**
 * Wake-ups between scheduler instances sharing a PostgreSQL schema, through
 * LISTEN/NOTIFY on one channel per schema.
 *
 * - Outgoing: changes are coalesced for a few milliseconds and sent after the
 *   transactions that made them have committed, as a handful of
 *   `pg_notify` calls in one statement (finished dispatch IDs are packed,
 *   many per notification). Notifying outside the writing transactions keeps
 *   PostgreSQL's commit-time notification lock off the hot path.
 * - Incoming: one dedicated connection LISTENs; when it breaks it reconnects
 *   with backoff and reports a wake-up (notifications may have been missed
 *   meanwhile). Each instance ignores its own notifications.
 *
 * Notifications are hints: the run loop also polls (at least once a second)
 * and Wait re-reads the store every second, so a lost notification costs
 * latency, never correctness.
 * @module
 */
import pg from 'pg';
import type { StoreChange } from '../store.js';

/** Largest payload sent (PostgreSQL's limit is 8000 bytes). */
const MAX_PAYLOAD = 7000;

/**
 * How to build a {@link PgNotifier}.
 * @example
 * const n = new PgNotifier({ clientConfig, channel: 'dispatch_dispatch', source: 'abc', publish: (p) => pool.query(...) });
 */
export interface PgNotifierOptions {
  /** Connection settings of the LISTEN connection. */
  clientConfig: pg.ClientConfig;
  /** Channel name (case-sensitive; quoted in LISTEN). */
  channel: string;
  /** This store's ID: notifications it sent itself are ignored. */
  source: string;
  /** Sends payloads with `pg_notify` (through the store's pool). */
  publish: (channel: string, payloads: string[]) => Promise<void>;
  /** Coalescing window of outgoing notifications, ms (default 2). */
  delayMs?: number;
  /** Reports a broken connection or a failed publish (default: silent). */
  onError?: (message: string) => void;
  /** Called when another instance added an (endpoint, function) pair, and after a reconnect. */
  onQueues?: () => void;
}

/**
 * LISTEN/NOTIFY between instances.
 * @example
 * const off = notifier.subscribe((c) => console.log(c));
 * notifier.finished(['id1']); // others hear { kind: 'finished', id: 'id1' }
 */
export class PgNotifier {
  readonly #listeners = new Set<(change: StoreChange) => void>();
  #client: pg.Client | null = null;
  #connecting = false;
  #reconnectDelay = 100;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #flushTimer: NodeJS.Timeout | null = null;
  #pendingDue = false;
  #pendingQueues = false;
  #pendingFinished: string[] = [];
  #closed = false;
  #flushing: Promise<void> = Promise.resolve();

  readonly #o: PgNotifierOptions;
  constructor(o: PgNotifierOptions) {
    this.#o = o;
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== null;
  }

  /** Work became due now. */
  due(): void {
    this.#pendingDue = true;
    this.#schedule();
  }

  /** A new (endpoint, function) pair exists (implies due). */
  queues(): void {
    this.#pendingQueues = true;
    this.#schedule();
  }

  /** Calls finished (Wait on other instances returns at once). */
  finished(ids: readonly string[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.#pendingFinished.push(id);
    this.#schedule();
  }

  /** Listens (connecting on the first subscriber); returns an unsubscribe function. */
  subscribe(listener: (change: StoreChange) => void): () => void {
    this.#listeners.add(listener);
    if (!this.#client && !this.#connecting && !this.#closed) void this.#connect();
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Sends what is pending now. */
  flush(): Promise<void> {
    if (this.#flushTimer) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    const payloads: string[] = [];
    const src = this.#o.source;
    if (this.#pendingQueues) payloads.push(`${src} q`);
    else if (this.#pendingDue) payloads.push(`${src} d`);
    this.#pendingQueues = false;
    this.#pendingDue = false;
    let chunk = '';
    for (const id of this.#pendingFinished) {
      if (chunk.length + id.length + 1 > MAX_PAYLOAD) {
        payloads.push(`${src} f ${chunk}`);
        chunk = '';
      }
      chunk = chunk ? `${chunk},${id}` : id;
    }
    if (chunk) payloads.push(`${src} f ${chunk}`);
    this.#pendingFinished = [];
    if (payloads.length === 0) return this.#flushing;
    this.#flushing = this.#flushing.then(() =>
      this.#o.publish(this.#o.channel, payloads).catch((err) => {
        if (!this.#closed) this.#o.onError?.(`could not notify other scheduler instances: ${(err as Error).message}`);
      }),
    );
    return this.#flushing;
  }

  #schedule(): void {
    if (this.#flushTimer || this.#closed) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      void this.flush();
    }, this.#o.delayMs ?? 2);
  }

  #emit(change: StoreChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  #onNotification(msg: pg.Notification): void {
    if (msg.channel !== this.#o.channel || !msg.payload) return;
    const payload = msg.payload;
    const sp = payload.indexOf(' ');
    if (sp < 0 || payload.slice(0, sp) === this.#o.source) return;
    const kind = payload[sp + 1];
    if (kind === 'q') {
      this.#o.onQueues?.();
      this.#emit({ kind: 'due' });
    } else if (kind === 'd') {
      this.#emit({ kind: 'due' });
    } else if (kind === 'f') {
      for (const id of payload.slice(sp + 3).split(',')) if (id) this.#emit({ kind: 'finished', id });
    }
  }

  async #connect(): Promise<void> {
    this.#connecting = true;
    const client = new pg.Client(this.#o.clientConfig);
    let failed = false;
    const lost = (why: string) => {
      if (failed) return;
      failed = true;
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      if (this.#client === client) this.#client = null;
      if (this.#closed) return;
      this.#o.onError?.(`the LISTEN connection to PostgreSQL was lost (${why}); reconnecting in ${this.#reconnectDelay} ms, polling meanwhile`);
      this.#scheduleReconnect();
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', (msg) => this.#onNotification(msg));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.#o.channel.replaceAll('"', '""')}"`);
    } catch (err) {
      this.#connecting = false;
      lost((err as Error).message);
      return;
    }
    this.#connecting = false;
    if (this.#closed) {
      failed = true;
      await client.end().catch(() => {});
      return;
    }
    const wasReconnect = this.#reconnectDelay > 100;
    this.#client = client;
    this.#reconnectDelay = 100;
    if (wasReconnect) {
      // Notifications sent while we were away are lost: look again.
      this.#o.onQueues?.();
      this.#emit({ kind: 'due' });
    }
  }

  #scheduleReconnect(): void {
    if (this.#reconnectTimer || this.#closed) return;
    const delay = this.#reconnectDelay;
    this.#reconnectDelay = Math.min(5000, this.#reconnectDelay * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (!this.#closed && this.#listeners.size > 0) void this.#connect();
    }, delay);
    this.#reconnectTimer.unref();
  }

  /** Sends what is pending, stops listening. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#listeners.clear();
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners('end');
      client.removeAllListeners('error');
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
