/**
 * The SQLite schema, as numbered migrations. `schema_version` holds the
 * number of the last migration applied; opening a database applies the
 * missing ones, each in its own transaction.
 * @module
 */
import type Database from 'better-sqlite3';

/**
 * The migrations, in order: migration `i` (0-based) brings the schema to version `i + 1`.
 * Never edit a released migration; append a new one.
 * @example
 * const latest = SQLITE_MIGRATIONS.length;
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  -- Every (endpoint, function) pair that ever had a call: the run loop claims
  -- per pair, so that a pair at its concurrency limit costs nothing.
  CREATE TABLE queues (
    endpoint TEXT NOT NULL,
    function TEXT NOT NULL,
    PRIMARY KEY (endpoint, function)
  ) WITHOUT ROWID;
  CREATE TABLE calls (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    input BLOB,
    original_function TEXT NOT NULL,
    original_endpoint TEXT NOT NULL,
    original_input BLOB,
    idempotency_key TEXT UNIQUE,
    parent_id TEXT,
    parent_generation INTEGER NOT NULL DEFAULT 0,
    root_id TEXT NOT NULL,
    correlation_id TEXT,
    state TEXT NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    -- When the call may run next; while running, the lease expiry; NULL once finished.
    due_at INTEGER,
    lease_owner TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    -- Grows on tail calls and restarts: children of older generations are never delivered.
    generation INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    expires_at INTEGER NOT NULL,
    expiration_ms INTEGER NOT NULL,
    -- 0: the next run starts from input; 1: it resumes the Poll.
    mode INTEGER NOT NULL DEFAULT 0,
    -- 0: no state; 1: coroutine_state bytes; 2: typed_coroutine_state.
    state_kind INTEGER NOT NULL DEFAULT 0,
    state_type_url TEXT,
    state_value BLOB,
    state_delta INTEGER NOT NULL DEFAULT 0,
    poll_min INTEGER NOT NULL DEFAULT 0,
    poll_max INTEGER NOT NULL DEFAULT 0,
    poll_deadline INTEGER,
    poll_wake_on_error INTEGER NOT NULL DEFAULT 0,
    poll_error BLOB,
    -- Results of children ready and not yet delivered (and how many are errors).
    ready INTEGER NOT NULL DEFAULT 0,
    ready_errors INTEGER NOT NULL DEFAULT 0,
    -- 1 while this finished child's result waits for delivery to its parent.
    deliver INTEGER,
    has_error INTEGER NOT NULL DEFAULT 0,
    output BLOB,
    error BLOB
  );
  CREATE INDEX calls_due ON calls (endpoint, function, due_at) WHERE due_at IS NOT NULL;
  CREATE INDEX calls_parent ON calls (parent_id) WHERE parent_id IS NOT NULL;
  CREATE INDEX calls_state ON calls (state, seq);
  CREATE TABLE attempts (
    call_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    resume INTEGER NOT NULL,
    error BLOB,
    PRIMARY KEY (call_id, number)
  );
  `,
  // 2: per-parent lookups without scanning every child of the parent (a long
  // sequential function has one child per step): results waiting for
  // delivery, and children by correlation ID.
  `
  CREATE INDEX calls_deliver ON calls (parent_id, parent_generation, finished_at, seq) WHERE deliver = 1;
  CREATE INDEX calls_child_correlation ON calls (parent_id, parent_generation, correlation_id) WHERE parent_id IS NOT NULL;
  `,
  // 3: the coroutine state out of the hot row. A Poll's state (or each delta
  // of it, Poll.state_is_delta) is a chunk appended to call_state_chunks; the
  // state is the concatenation of a call's chunks of its current generation
  // in seq order (seq is the chunk's byte offset in the state). The row keeps
  // state_kind, state_type_url and state_length, so a step costs the same
  // whatever the journal's length; the bytes are read only when they are sent.
  // calls.state_value is no longer written: existing states move here.
  `
  CREATE TABLE call_state_chunks (
    call_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (call_id, generation, seq)
  ) WITHOUT ROWID;
  ALTER TABLE calls ADD COLUMN state_length INTEGER NOT NULL DEFAULT 0;
  INSERT INTO call_state_chunks (call_id, generation, seq, bytes)
    SELECT id, generation, 0, state_value FROM calls WHERE state_kind <> 0 AND length(state_value) > 0;
  UPDATE calls SET state_length = CASE WHEN state_kind <> 0 THEN length(state_value) ELSE 0 END, state_value = NULL
    WHERE state_value IS NOT NULL;
  `,
  // 4: dashboard sessions ended before their expiry (logout), kept until
  // then, so that a session cookie stays refused after a restart.
  `
  CREATE TABLE revoked_sessions (
    id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 5: attempts and resumes counted apart. A run that continues a call after
  // a suspension is a resume; the first run and each retry are attempts
  // (calls.attempts counted every run before). attempts.resume now marks
  // resumes: a retry that carried the Poll's results becomes an attempt.
  `
  ALTER TABLE calls ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
  UPDATE attempts SET resume = 0 WHERE resume = 1 AND EXISTS (
    SELECT 1 FROM attempts p WHERE p.call_id = attempts.call_id AND p.number = attempts.number - 1 AND p.outcome = 'retry');
  UPDATE calls SET resumes = (SELECT count(*) FROM attempts a WHERE a.call_id = calls.id AND a.resume = 1);
  UPDATE calls SET attempts = MAX(0, attempts - resumes);
  `,
  // 6 (issue 15): signals. A signal is kept (state 0) until its call waits
  // for its name; then it is consumed by one wait of the call's Poll (state
  // 1, with the wait's correlation ID and the call's generation) and its
  // payload is delivered like a child's result (state 2 once delivered).
  // calls.poll_signals holds the waits of the current Poll as JSON
  // ([{"c": correlation ID, "n": name}]). Failed calls now keep their state
  // chunks (dispatch resume runs them again from it).
  `
  CREATE TABLE signals (
    seq INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload BLOB,
    idempotency_key TEXT UNIQUE,
    sent_at INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    generation INTEGER,
    correlation_id TEXT,
    consumed_at INTEGER
  );
  CREATE INDEX signals_call ON signals (call_id, state, name, seq);
  ALTER TABLE calls ADD COLUMN poll_signals TEXT;
  `,
  // 7 (issue 15): schedules, the cron schedules apps declare, one row per name
  // (the function it calls). An instance runs a tick by advancing next_tick_at
  // with a compare-and-set and inserting the tick's call (idempotency key
  // schedule:<name>:<tick time>) in the same transaction: once per tick,
  // however many instances share the store. IF NOT EXISTS: a schema taken
  // back to an older version by hand (tests do) may still have the table.
  `
  CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    cron TEXT NOT NULL,
    time_zone TEXT NOT NULL DEFAULT '',
    missed TEXT NOT NULL DEFAULT 'run-once',
    expiration_ms INTEGER,
    paused INTEGER NOT NULL DEFAULT 0,
    -- The next tick to run (NULL when the expression has no later date).
    next_tick_at INTEGER,
    last_tick_at INTEGER,
    last_dispatch_id TEXT,
    ticks INTEGER NOT NULL DEFAULT 0,
    skipped_ticks INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS schedules_endpoint ON schedules (endpoint);
  CREATE INDEX IF NOT EXISTS schedules_next ON schedules (next_tick_at) WHERE paused = 0;
  `,
  // 8: declared limits (issue 16). function_limits holds the limits each
  // (endpoint, function) declares (carried on its calls); calls.limit_key the
  // key of a call's per-key limit ('' without); limit_windows counts the starts
  // of rate-limited functions per key in buckets of a twentieth of the period.
  `
  CREATE TABLE function_limits (
    endpoint TEXT NOT NULL,
    function TEXT NOT NULL,
    concurrency INTEGER NOT NULL DEFAULT 0,
    concurrency_per_key INTEGER NOT NULL DEFAULT 0,
    rate_count INTEGER NOT NULL DEFAULT 0,
    rate_period_ms INTEGER NOT NULL DEFAULT 0,
    rate_per_key INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (endpoint, function)
  );
  ALTER TABLE calls ADD COLUMN limit_key TEXT NOT NULL DEFAULT '';
  CREATE INDEX calls_limit_running ON calls (endpoint, function, limit_key) WHERE state = 'running';
  CREATE INDEX calls_limit_due ON calls (endpoint, function, limit_key, due_at) WHERE due_at IS NOT NULL AND limit_key <> '';
  CREATE TABLE limit_windows (
    endpoint TEXT NOT NULL,
    function TEXT NOT NULL,
    limit_key TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    starts INTEGER NOT NULL,
    PRIMARY KEY (endpoint, function, limit_key, bucket)
  );
  `,
  // 9 (issue 16): the W3C trace context of a call (its Call.traceparent,
  // a newline, its Call.tracestate), sent with each of its runs so that they
  // join the caller's trace. NULL when the caller traced nothing.
  `
  ALTER TABLE calls ADD COLUMN trace_context TEXT;
  `,
  // 10 (issue 12): the input stored once. original_input was a second copy
  // of every input; it is now written only when a tail call replaces the
  // input (input_replaced = 1), so that a restart finds the first one.
  // Copies of existing rows are dropped.
  `
  ALTER TABLE calls ADD COLUMN input_replaced INTEGER NOT NULL DEFAULT 0;
  UPDATE calls SET input_replaced = 1 WHERE original_input IS NOT input;
  UPDATE calls SET original_input = NULL WHERE input_replaced = 0 AND original_input IS NOT NULL;
  `,
  // 11 (issue 14): fewer b-trees written per step. Each b-tree a transaction
  // touches is at least one more page in the WAL at its commit (~25 pages
  // per awaited call before this). attempts becomes a WITHOUT ROWID table
  // (its primary key was a second b-tree beside the table's); calls_parent
  // goes: calls_child_correlation starts with parent_id and serves the same
  // lookups (only the dashboard's list of children sorts them, by seq).
  `
  DROP INDEX IF EXISTS calls_parent;
  CREATE TABLE attempts_v11 (
    call_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    resume INTEGER NOT NULL,
    error BLOB,
    PRIMARY KEY (call_id, number)
  ) WITHOUT ROWID;
  INSERT INTO attempts_v11 (call_id, number, started_at, duration_ms, status, outcome, resume, error)
    SELECT call_id, number, started_at, duration_ms, status, outcome, resume, error FROM attempts;
  DROP TABLE attempts;
  ALTER TABLE attempts_v11 RENAME TO attempts;
  `,
  // 12 (issue 14): fewer index pages written per transition. A partial
  // index is written only when its WHERE holds for the row before or after
  // the change, so:
  // - calls_state (state, seq) — every call, ~4 WAL pages per awaited call —
  //   becomes calls_live (state, seq) for unfinished calls only (a small
  //   b-tree: the moves of a step share a page or two) and calls_unsucceeded
  //   (state, seq) for calls finished otherwise than succeeded (written once;
  //   successes, most calls, are counted as all calls less the others;
  //   finished_at, the column of their WHERE, is in both so that SQLite
  //   counts from the index alone);
  // - calls_limit_running goes: written at every lease and its end (~2 WAL
  //   pages per awaited call), it was never read — SQLite counts a limited
  //   pair's running calls with calls_due (due_at > now: the live leases).
  // finished_at is made to agree with the state first (it always did).
  `
  UPDATE calls SET finished_at = updated_at WHERE finished_at IS NULL AND state NOT IN ('pending', 'running', 'suspended');
  UPDATE calls SET finished_at = NULL WHERE finished_at IS NOT NULL AND state IN ('pending', 'running', 'suspended');
  DROP INDEX IF EXISTS calls_state;
  CREATE INDEX IF NOT EXISTS calls_live ON calls (state, seq, finished_at) WHERE finished_at IS NULL;
  CREATE INDEX IF NOT EXISTS calls_unsucceeded ON calls (state, seq, finished_at) WHERE finished_at IS NOT NULL AND state <> 'succeeded';
  DROP INDEX IF EXISTS calls_limit_running;
  `,
  // 13 (issue 14): idempotency keys indexed only where a call has one. The
  // column's UNIQUE constraint indexed every call, most of them with a NULL
  // key (one more b-tree written per call created); SQLite cannot drop a
  // column constraint, so calls is rebuilt (same columns, same seqs; the
  // columns added by ALTER TABLE since migration 1 are written in place),
  // with a partial unique index instead, and its indexes made again.
  `
  CREATE TABLE calls_v13 (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    input BLOB,
    original_function TEXT NOT NULL,
    original_endpoint TEXT NOT NULL,
    original_input BLOB,
    idempotency_key TEXT,
    parent_id TEXT,
    parent_generation INTEGER NOT NULL DEFAULT 0,
    root_id TEXT NOT NULL,
    correlation_id TEXT,
    state TEXT NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    -- When the call may run next; while running, the lease expiry; NULL once finished.
    due_at INTEGER,
    lease_owner TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    -- Grows on tail calls and restarts: children of older generations are never delivered.
    generation INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    expires_at INTEGER NOT NULL,
    expiration_ms INTEGER NOT NULL,
    -- 0: the next run starts from input; 1: it resumes the Poll.
    mode INTEGER NOT NULL DEFAULT 0,
    -- 0: no state; 1: coroutine_state bytes; 2: typed_coroutine_state.
    state_kind INTEGER NOT NULL DEFAULT 0,
    state_type_url TEXT,
    -- Legacy (schema < 3): NULL once migrated; the bytes live in call_state_chunks.
    state_value BLOB,
    state_delta INTEGER NOT NULL DEFAULT 0,
    poll_min INTEGER NOT NULL DEFAULT 0,
    poll_max INTEGER NOT NULL DEFAULT 0,
    poll_deadline INTEGER,
    poll_wake_on_error INTEGER NOT NULL DEFAULT 0,
    poll_error BLOB,
    -- Results of children ready and not yet delivered (and how many are errors).
    ready INTEGER NOT NULL DEFAULT 0,
    ready_errors INTEGER NOT NULL DEFAULT 0,
    -- 1 while this finished child's result waits for delivery to its parent.
    deliver INTEGER,
    has_error INTEGER NOT NULL DEFAULT 0,
    output BLOB,
    error BLOB,
    state_length INTEGER NOT NULL DEFAULT 0,
    resumes INTEGER NOT NULL DEFAULT 0,
    poll_signals TEXT,
    limit_key TEXT NOT NULL DEFAULT '',
    trace_context TEXT,
    -- 1 once a tail call replaced the input: original_input then holds the first one.
    input_replaced INTEGER NOT NULL DEFAULT 0
  );
  INSERT INTO calls_v13 (seq, id, function, endpoint, version, input, original_function, original_endpoint, original_input,
    idempotency_key, parent_id, parent_generation, root_id, correlation_id, state, status, due_at, lease_owner, lease_token,
    attempts, failures, generation, created_at, updated_at, finished_at, expires_at, expiration_ms, mode, state_kind,
    state_type_url, state_value, state_delta, poll_min, poll_max, poll_deadline, poll_wake_on_error, poll_error, ready,
    ready_errors, deliver, has_error, output, error, state_length, resumes, poll_signals, limit_key, trace_context, input_replaced)
  SELECT seq, id, function, endpoint, version, input, original_function, original_endpoint, original_input,
    idempotency_key, parent_id, parent_generation, root_id, correlation_id, state, status, due_at, lease_owner, lease_token,
    attempts, failures, generation, created_at, updated_at, finished_at, expires_at, expiration_ms, mode, state_kind,
    state_type_url, state_value, state_delta, poll_min, poll_max, poll_deadline, poll_wake_on_error, poll_error, ready,
    ready_errors, deliver, has_error, output, error, state_length, resumes, poll_signals, limit_key, trace_context, input_replaced
  FROM calls;
  DROP TABLE calls;
  ALTER TABLE calls_v13 RENAME TO calls;
  CREATE UNIQUE INDEX calls_idempotency_key ON calls (idempotency_key) WHERE idempotency_key IS NOT NULL;
  CREATE INDEX calls_due ON calls (endpoint, function, due_at) WHERE due_at IS NOT NULL;
  CREATE INDEX calls_deliver ON calls (parent_id, parent_generation, finished_at, seq) WHERE deliver = 1;
  CREATE INDEX calls_child_correlation ON calls (parent_id, parent_generation, correlation_id) WHERE parent_id IS NOT NULL;
  CREATE INDEX calls_limit_due ON calls (endpoint, function, limit_key, due_at) WHERE due_at IS NOT NULL AND limit_key <> '';
  CREATE INDEX calls_live ON calls (state, seq, finished_at) WHERE finished_at IS NULL;
  CREATE INDEX calls_unsucceeded ON calls (state, seq, finished_at) WHERE finished_at IS NOT NULL AND state <> 'succeeded';
  `,
  // 14 (issue 14): a call's only run, when it ended the call without an
  // error (every no-op call, most children of a fan-out), is kept in the
  // call's row — its start and duration; its status is the call's — instead
  // of a row of \`attempts\`: one b-tree insert fewer per such call, ~1.4 WAL
  // pages fewer per commit. getAttempts lists it as before; a restart
  // writes it to \`attempts\` first.
  `
  ALTER TABLE calls ADD COLUMN run_started_at INTEGER;
  ALTER TABLE calls ADD COLUMN run_duration_ms INTEGER;
  `,
];

/**
 * Applies the missing migrations; returns the schema version reached.
 * Refuses a database written by a newer version of this package.
 * @example
 * const version = migrateSqlite(db);
 */
export function migrateSqlite(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  let version = row?.version ?? 0;
  if (!row) db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
  if (version > SQLITE_MIGRATIONS.length) {
    throw new Error(
      `the database has schema version ${version}, newer than this scheduler knows (${SQLITE_MIGRATIONS.length}): upgrade @dispatch/scheduler or use another database file`,
    );
  }
  for (; version < SQLITE_MIGRATIONS.length; version++) {
    const sql = SQLITE_MIGRATIONS[version] ?? '';
    db.transaction(() => {
      db.exec(sql);
      db.prepare('UPDATE schema_version SET version = ?').run(version + 1);
    })();
  }
  return version;
}
