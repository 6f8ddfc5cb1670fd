/**
 * Group commit: writes from many concurrent operations are run in one
 * transaction per event-loop turn, so the cost of a commit (and its fsync at
 * `synchronous=FULL`) is shared by all of them.
 * @module
 */

interface Pending {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs synchronous database operations in batches. Each operation runs in
 * its own savepoint inside the batch's transaction, so one that throws is
 * rolled back alone and rejects only its own promise; the others commit
 * together. Promises resolve after the commit.
 * @example
 * const inTransaction = db.transaction((fn: () => unknown) => fn());
 * const tx = new GroupCommit((fn) => inTransaction(fn));
 * const id = await tx.run(() => db.prepare('INSERT INTO t VALUES (1)').run().lastInsertRowid);
 */
export class GroupCommit {
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;

  /**
   * @param transaction runs `fn` in a transaction (or a savepoint when already in one) and returns its result.
   * @param maxBatch most operations per transaction.
   */
  readonly #transaction: <T>(fn: () => T) => T;
  readonly #maxBatch: number;
  constructor(
    transaction: <T>(fn: () => T) => T,
    maxBatch = 2000,
  ) {
    this.#maxBatch = maxBatch;
    this.#transaction = transaction;
  }

  /** Queues `fn`; resolves with its result once the batch holding it has committed. */
  run<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs everything queued now (also called by `close`). */
  flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      const outcomes: Array<{ ok: boolean; value: unknown }> = [];
      try {
        this.#transaction(() => {
          for (const op of batch) {
            try {
              outcomes.push({ ok: true, value: this.#transaction(op.fn) });
            } catch (error) {
              outcomes.push({ ok: false, value: error });
            }
          }
        });
      } catch (error) {
        for (const op of batch) op.reject(error);
        continue;
      }
      batch.forEach((op, i) => {
        const o = outcomes[i];
        if (o?.ok) op.resolve(o.value);
        else op.reject(o?.value);
      });
    }
  }

  /** Flushes and refuses further work. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}
