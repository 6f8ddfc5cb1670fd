/**
 * Group commit: writes from many concurrent operations are run in one
 * transaction per event-loop turn, so the cost of a commit (and its fsync at
 * `synchronous=FULL`) is shared by all of them.
 * @module
 */

/**
 * What a batch tells a redo log (`redo-log.ts`): where it starts, where
 * each operation starts (to take back one that is rolled back), and its
 * end, which makes the batch durable (or throws, and the batch is undone).
 * A journaled batch runs without a savepoint of its own: the journal holds
 * every acknowledged write since the database's last commit, so a batch
 * that fails is undone by {@link BatchJournal.undo} instead (rare: a
 * storage error or a bug), and the savepoint's two statements are saved on
 * every batch.
 */
export interface BatchJournal<M> {
  /** Before the batch; `ops`: how many operations it runs. */
  begin(ops: number): void;
  mark(): M;
  rewind(mark: M): void;
  /** Last thing of the batch (throws: the batch is undone). */
  seal(): void;
  /** After the batch is sealed (throws: the batch failed, and the journal undid it). */
  settle(): void;
  /**
   * The batch failed (an operation outside a savepoint threw, or the seal
   * did): the database is brought back to what the journal acknowledged,
   * and the batch's record is dropped.
   */
  undo(): void;
  /** Whether the database still holds the open transaction (SQLite may roll it back by itself after a storage error). */
  readonly intact: boolean;
  /** After the batch, committed or undone. */
  end(): void;
}

/**
 * What the owner of a group commit is told: once per batch that commits,
 * and for each operation that fails (answering the error it rejects with).
 * Told here, its writes need no `then` of their own.
 * @example
 * const hooks: GroupCommitHooks = { committed: () => health.ok(), failed: (err) => asStoreError(err) };
 */
export interface GroupCommitHooks {
  /** A batch committed (before its promises resolve). */
  committed?(): void;
  /** An operation failed (its batch, or it alone): the error its promise rejects with. */
  failed?(error: unknown): unknown;
}

interface Pending {
  fn: () => unknown;
  /** Runs without a savepoint from the batch: atomic by itself (see {@link GroupCommit.run}). */
  atomic: boolean;
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
  #alone = false;

  /**
   * @param transaction runs `fn` in a transaction (or a savepoint when already in one) and returns its result.
   * @param maxBatch most operations per transaction.
   */
  readonly #transaction: <T>(fn: () => T) => T;
  readonly #maxBatch: number;
  readonly #hooks: GroupCommitHooks;
  /** While set (and journaling), each batch is a record of this journal, written before the batch's promises resolve. */
  journal: (BatchJournal<unknown> & { readonly journaling: boolean }) | null = null;
  constructor(transaction: <T>(fn: () => T) => T, maxBatch = 2000, hooks: GroupCommitHooks = {}) {
    this.#maxBatch = maxBatch;
    this.#transaction = transaction;
    this.#hooks = hooks;
  }

  #reject(op: Pending, error: unknown): void {
    op.reject(this.#hooks.failed ? this.#hooks.failed(error) : error);
  }

  /**
   * Queues `fn`; resolves with its result once the batch holding it has
   * committed. `atomic`: `fn` is atomic by itself, so the batch runs it
   * without a savepoint (two statements fewer): it writes with one
   * statement at most (SQLite undoes a statement that fails, and the
   * others of the batch stay), or opens its own savepoint when it will
   * write more and is not {@link alone} in its batch (`SqliteStore.complete`:
   * one write for a no-op call's finish, a savepoint otherwise).
   */
  run<T>(fn: () => T, atomic = false): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, atomic, resolve: resolve as (v: unknown) => void, reject });
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
      const journal = this.journal?.journaling ? this.journal : null;
      if (this.#queue.length === 1) {
        this.#flushOne(this.#queue.pop()!, journal);
        continue;
      }
      const batch = this.#queue.splice(0, this.#maxBatch);
      const outcomes: Array<{ ok: boolean; value: unknown }> = [];
      // Each operation in a savepoint (of the journal's open transaction, or of the batch's), so that one that throws
      // is rolled back alone; an atomic one (a single write statement) is rolled back alone by SQLite.
      const ran = this.#batch(journal, batch.length, () => {
        for (const op of batch) {
          const mark = journal?.mark();
          try {
            outcomes.push({ ok: true, value: op.atomic ? op.fn() : this.#transaction(op.fn) });
          } catch (error) {
            // SQLite rolled the whole transaction back (a storage error): the batch fails with it.
            if (journal && !journal.intact) throw error;
            if (journal) journal.rewind(mark);
            outcomes.push({ ok: false, value: error });
          }
        }
      });
      if (!ran.ok) {
        for (const op of batch) this.#reject(op, ran.error);
        continue;
      }
      batch.forEach((op, i) => {
        const o = outcomes[i];
        if (o?.ok) op.resolve(o.value);
        else this.#reject(op, o?.value);
      });
    }
  }

  /**
   * Whether the operation running now is its batch's only one ({@link #flushOne}): the batch is then undone whole
   * if it throws (by the journal, or by the batch's transaction), so an operation of several writes needs no
   * savepoint of its own. False outside an operation and in a batch of several.
   * @example
   * const id = await tx.run(() => (tx.alone ? writeBoth() : inTransaction(writeBoth)), true);
   */
  get alone(): boolean {
    return this.#alone;
  }

  /** A batch of one operation (an awaited call's steps come one at a time): the batch is the operation. */
  #flushOne(op: Pending, journal: BatchJournal<unknown> | null): void {
    this.#alone = true;
    let ran: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      ran = this.#batch(journal, 1, op.fn);
    } finally {
      this.#alone = false;
    }
    if (ran.ok) op.resolve(ran.value);
    else this.#reject(op, ran.error);
  }

  /**
   * Runs `body` as one batch of `ops` operations, committed (or, with a
   * journal, sealed in its record: durable) when it answers ok; the owner
   * is told of the commit first. With a journal, the batch runs in no
   * savepoint of its own (the journal undoes it if it fails); without, in a
   * transaction.
   */
  #batch<T>(journal: BatchJournal<unknown> | null, ops: number, body: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
    let value: T;
    try {
      if (journal) {
        // Before the batch: the journal may have to reopen the transaction it keeps (see redo-log.ts).
        journal.begin(ops);
        try {
          value = body();
          // Durable once this returns; if it throws, the whole batch is undone.
          journal.seal();
        } catch (error) {
          journal.undo();
          throw error;
        }
        journal.settle();
      } else {
        value = this.#transaction(body);
      }
    } catch (error) {
      return { ok: false, error };
    } finally {
      try {
        journal?.end();
      } catch {
        // Told to every later batch (begin throws it); this one is answered by the caller.
      }
    }
    this.#hooks.committed?.();
    return { ok: true, value };
  }

  /** Flushes and refuses further work. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}
