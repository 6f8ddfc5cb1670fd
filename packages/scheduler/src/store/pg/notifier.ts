/**
 * Wake-ups between scheduler instances sharing a PostgreSQL schema, through
 * LISTEN/NOTIFY on one channel per schema.
 *
 * - Outgoing: changes are coalesced for a few milliseconds and sent after the
 *   transactions that made them have committed, as a handful of
 *   `pg_notify` calls in one statement (finished dispatch IDs are packed,
 *   many per notification). Notifying outside the writing transactions keeps
 *   PostgreSQL's commit-time notification lock off the hot path.
 * - Finished dispatch IDs serve only Wait calls blocked on other instances,
 *   so they are sent only while another instance says it has some
 *   ({@link PgNotifier.waiting}, renewed every second while it has, heard for
 *   {@link INTEREST_TTL_MS}). Meanwhile they are kept for
 *   {@link RECENT_MS}: an instance that starts waiting is sent those, so a
 *   call that finished between its read and its announcement is not missed.
 *   Without waiters anywhere (a busy cluster driven by `dispatch()` alone),
 *   no statement is spent on them. An instance that does not listen (or
 *   while its LISTEN connection is down) cannot hear who waits: it sends
 *   them all, as before.
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

/** How long another instance's announcement that it waits for calls is heard (ms). */
export const INTEREST_TTL_MS = 3000;

/** An instance with waiters announces it at most this often (ms). */
const INTEREST_EVERY_MS = 1000;

/** How long finished dispatch IDs that nobody waited for are kept, to send to an instance that starts waiting (ms). */
export const RECENT_MS = 2000;

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
  #pendingInterest = false;
  /** When this instance last announced its waiters. */
  #interestSentAt = Number.NEGATIVE_INFINITY;
  /** Until when another instance is known to wait for calls. */
  #othersWaitUntil = Number.NEGATIVE_INFINITY;
  /** Finished IDs nobody waited for, in batches by time, oldest first (kept {@link RECENT_MS}). */
  #recent: Array<{ at: number; ids: readonly string[] }> = [];
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

  /**
   * Calls finished: sent while another instance waits for calls (its Wait
   * returns at once), else kept {@link RECENT_MS} for one that starts to.
   */
  finished(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const now = Date.now();
    // Not listening (listen: false, or the connection is down): it cannot hear who waits, so it always sends.
    if (now < this.#othersWaitUntil || this.#client === null) {
      for (const id of ids) this.#pendingFinished.push(id);
      this.#schedule();
      return;
    }
    this.#recent.push({ at: now, ids });
    while (this.#recent.length > 0 && this.#recent[0]!.at < now - RECENT_MS) this.#recent.shift();
  }

  /**
   * This instance has Wait calls blocked on calls that may finish
   * elsewhere: the others send finished IDs for {@link INTEREST_TTL_MS}
   * (and those of the last {@link RECENT_MS}). Call it when a waiter starts
   * and then every second or so while any remain; announced at most once a
   * second.
   */
  waiting(): void {
    const now = Date.now();
    if (now - this.#interestSentAt < INTEREST_EVERY_MS || this.#closed) return;
    this.#interestSentAt = now;
    this.#pendingInterest = true;
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
    if (this.#pendingInterest) payloads.push(`${src} w`);
    this.#pendingQueues = false;
    this.#pendingDue = false;
    this.#pendingInterest = false;
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
    } else if (kind === 'w') {
      // Another instance waits for calls: send finished IDs from now on, and those nobody was told about lately.
      const now = Date.now();
      this.#othersWaitUntil = now + INTEREST_TTL_MS;
      const recent = this.#recent;
      this.#recent = [];
      for (const r of recent) if (r.at >= now - RECENT_MS) for (const id of r.ids) this.#pendingFinished.push(id);
      if (this.#pendingFinished.length > 0) this.#schedule();
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
      // Notifications sent while we were away are lost: look again, and assume another instance waits.
      this.#othersWaitUntil = Date.now() + INTEREST_TTL_MS;
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
