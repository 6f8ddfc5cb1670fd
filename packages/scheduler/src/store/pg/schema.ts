/**
 * The PostgreSQL schema, as numbered migrations, applied once when several
 * scheduler instances start together: every instance runs
 * {@link migratePg}, which takes a transaction-level advisory lock
 * (`pg_advisory_xact_lock`) keyed on the schema name, so the first one
 * migrates and the others wait, then find nothing left to do. DDL is
 * transactional in PostgreSQL: a migration that fails leaves nothing behind.
 *
 * Every object lives in one schema (default `dispatch`), chosen per store, so
 * one database can hold several independent schedulers (and each test its
 * own schema).
 * @module
 */
import type { ClientBase } from 'pg';

/** Default schema of the PostgreSQL store. */
export const DEFAULT_PG_SCHEMA = 'dispatch';

/** Schema names this store accepts: a plain lower-case SQL identifier. */
export const PG_SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,47}$/;

/**
 * The migrations, in order: migration `i` (0-based) brings the schema to
 * version `i + 1`. They run with `search_path` set to the store's schema.
 * Never edit a released migration; append a new one.
 */
export const PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  -- Every (endpoint, function) pair that ever had a call: instances claim per
  -- pair, so a pair at its concurrency limit costs nothing.
  CREATE TABLE queues (
    endpoint TEXT NOT NULL,
    function TEXT NOT NULL,
    PRIMARY KEY (endpoint, function)
  );
  CREATE TABLE calls (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    input BYTEA,
    original_function TEXT NOT NULL,
    original_endpoint TEXT NOT NULL,
    original_input BYTEA,
    -- Unique: two instances accepting the same key race on this index; the
    -- loser answers the winner's dispatch ID.
    idempotency_key TEXT UNIQUE,
    parent_id TEXT,
    parent_generation INTEGER NOT NULL DEFAULT 0,
    root_id TEXT NOT NULL,
    -- uint64, exact, as decimal text.
    correlation_id TEXT,
    state TEXT NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    -- When the call may run next; while running, the lease expiry; NULL once finished.
    due_at BIGINT,
    lease_owner TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    -- Grows on tail calls and restarts: children of older generations are never delivered.
    generation INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT,
    expires_at BIGINT NOT NULL,
    expiration_ms BIGINT NOT NULL,
    -- 0: the next run starts from input; 1: it resumes the Poll.
    mode SMALLINT NOT NULL DEFAULT 0,
    -- 0: no state; 1: coroutine_state bytes; 2: typed_coroutine_state.
    state_kind SMALLINT NOT NULL DEFAULT 0,
    state_type_url TEXT,
    state_value BYTEA,
    state_delta SMALLINT NOT NULL DEFAULT 0,
    poll_min INTEGER NOT NULL DEFAULT 0,
    poll_max INTEGER NOT NULL DEFAULT 0,
    poll_deadline BIGINT,
    poll_wake_on_error SMALLINT NOT NULL DEFAULT 0,
    poll_error BYTEA,
    -- Results of children ready and not yet delivered (and how many are errors).
    ready INTEGER NOT NULL DEFAULT 0,
    ready_errors INTEGER NOT NULL DEFAULT 0,
    -- 1 while this finished child's result waits for delivery to its parent.
    deliver SMALLINT,
    has_error SMALLINT NOT NULL DEFAULT 0,
    output BYTEA,
    error BYTEA
  ) WITH (fillfactor = 80);
  CREATE INDEX calls_due ON calls (endpoint, function, due_at) WHERE due_at IS NOT NULL;
  CREATE INDEX calls_parent ON calls (parent_id, parent_generation) WHERE parent_id IS NOT NULL;
  CREATE INDEX calls_deliver ON calls (parent_id, parent_generation, finished_at, seq) WHERE deliver = 1;
  CREATE INDEX calls_state ON calls (state, seq);
  CREATE TABLE attempts (
    call_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    resume BOOLEAN NOT NULL,
    error BYTEA,
    PRIMARY KEY (call_id, number)
  );
  -- Scheduler instances sharing this schema, with their last heartbeat: the
  -- live count divides the adaptive concurrency bounds among them.
  CREATE TABLE instances (
    owner TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
  );
  `,
  // 2: the check for repeated correlation IDs (PROTOCOL.md 8.17) at each
  // Poll finds a parent's children by correlation ID through the index,
  // instead of reading every child of the execution (quadratic in long
  // sequential functions). It serves the parent_id lookups of calls_parent too.
  `
  CREATE INDEX calls_parent_corr ON calls (parent_id, parent_generation, correlation_id) WHERE parent_id IS NOT NULL;
  DROP INDEX calls_parent;
  `,
  // 3: the coroutine state out of the hot row. A Poll's state (or each delta
  // of it, Poll.state_is_delta) is a chunk appended to call_state_chunks; the
  // state is the concatenation of a call's chunks of its current generation
  // in seq order (seq is the chunk's byte offset in the state). The row keeps
  // state_kind, state_type_url and state_length, so a step costs the same
  // whatever the journal's length (no TOAST rewrite of a growing value); the
  // bytes are read only when they are sent. calls.state_value is no longer
  // written: existing states move here.
  `
  CREATE TABLE call_state_chunks (
    call_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (call_id, generation, seq)
  );
  ALTER TABLE calls ADD COLUMN state_length BIGINT NOT NULL DEFAULT 0;
  INSERT INTO call_state_chunks (call_id, generation, seq, bytes)
    SELECT id, generation, 0, state_value FROM calls WHERE state_kind <> 0 AND length(state_value) > 0;
  UPDATE calls SET state_length = CASE WHEN state_kind <> 0 THEN length(state_value) ELSE 0 END, state_value = NULL
    WHERE state_value IS NOT NULL;
  `,
  // 4: dashboard sessions ended before their expiry (logout), kept until
  // then, so that a session cookie stays refused after a restart and on
  // every instance.
  `
  CREATE TABLE revoked_sessions (
    id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
  );
  `,
  // 5: attempts and resumes counted apart. A run that continues a call after
  // a suspension is a resume; the first run and each retry are attempts
  // (calls.attempts counted every run before). attempts.resume now marks
  // resumes: a retry that carried the Poll's results becomes an attempt.
  `
  ALTER TABLE calls ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
  UPDATE attempts SET resume = false WHERE resume AND EXISTS (
    SELECT 1 FROM attempts p WHERE p.call_id = attempts.call_id AND p.number = attempts.number - 1 AND p.outcome = 'retry');
  UPDATE calls SET resumes = (SELECT count(*) FROM attempts a WHERE a.call_id = calls.id AND a.resume);
  UPDATE calls SET attempts = GREATEST(0, attempts - resumes);
  `,
  // 6 (issue 15): signals, as in the SQLite store's migration 6: kept
  // (state 0) until a wait of the call's Poll consumes one (state 1, with the
  // wait's correlation ID and the call's generation), delivered like a
  // child's result (state 2). calls.poll_signals: the waits of the current
  // Poll as JSON. Failed calls keep their state chunks (resume).
  `
  CREATE TABLE IF NOT EXISTS signals (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload BYTEA,
    idempotency_key TEXT UNIQUE,
    sent_at BIGINT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    generation INTEGER,
    correlation_id TEXT,
    consumed_at BIGINT
  );
  CREATE INDEX IF NOT EXISTS signals_call ON signals (call_id, state, name, seq);
  ALTER TABLE calls ADD COLUMN IF NOT EXISTS poll_signals TEXT;
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
    expiration_ms BIGINT,
    paused BOOLEAN NOT NULL DEFAULT false,
    -- The next tick to run (NULL when the expression has no later date).
    next_tick_at BIGINT,
    last_tick_at BIGINT,
    last_dispatch_id TEXT,
    ticks BIGINT NOT NULL DEFAULT 0,
    skipped_ticks BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS schedules_endpoint ON schedules (endpoint);
  CREATE INDEX IF NOT EXISTS schedules_next ON schedules (next_tick_at) WHERE paused = false;
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
    concurrency_per_key BOOLEAN NOT NULL DEFAULT false,
    rate_count INTEGER NOT NULL DEFAULT 0,
    rate_period_ms BIGINT NOT NULL DEFAULT 0,
    rate_per_key BOOLEAN NOT NULL DEFAULT false,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (endpoint, function)
  );
  ALTER TABLE calls ADD COLUMN limit_key TEXT NOT NULL DEFAULT '';
  CREATE INDEX calls_limit_running ON calls (endpoint, function, limit_key) WHERE state = 'running';
  CREATE INDEX calls_limit_due ON calls (endpoint, function, limit_key, due_at) WHERE due_at IS NOT NULL AND limit_key <> '';
  CREATE TABLE limit_windows (
    endpoint TEXT NOT NULL,
    function TEXT NOT NULL,
    limit_key TEXT NOT NULL,
    bucket BIGINT NOT NULL,
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
  ALTER TABLE calls ADD COLUMN input_replaced SMALLINT NOT NULL DEFAULT 0;
  UPDATE calls SET input_replaced = 1 WHERE original_input IS DISTINCT FROM input;
  UPDATE calls SET original_input = NULL WHERE input_replaced = 0 AND original_input IS NOT NULL;
  `,
  // 11 (issue 16): the claim of a function with limits that are not per
  // key in one statement (limits.ts, claimLimitedAtOnce) instead of a
  // transaction of six round trips. limit_allowance is its first part: it
  // locks the function's function_limits row, then counts the calls running
  // and the starts of the rate window. It is VOLATILE, so each of its
  // statements takes a fresh snapshot: the counts see every claim committed
  // before the lock was granted, whatever the snapshot of the statement that
  // calls it. The caller passes the limits it expects (its cache); when the
  // row says otherwise, `stale` is true and nothing is allowed. It takes no
  // lock when no call of the function is due. The rate window's geometry
  // comes from the caller (../limits.ts, rateWindow), only dated here: at
  // the claim's time, plus the time spent waiting for the lock.
  // OR REPLACE: a schema taken back to an older version by hand (tests do)
  // may still have it.
  `
  CREATE OR REPLACE FUNCTION limit_allowance(p_endpoint TEXT, p_function TEXT, p_cap INTEGER, p_now BIGINT, p_sent BIGINT,
    p_concurrency INTEGER, p_rate_count INTEGER, p_period_ms BIGINT, p_bucket_ms BIGINT, p_margin_ms DOUBLE PRECISION)
  RETURNS TABLE (allowed INTEGER, bound TEXT, win_bucket BIGINT, win_oldest BIGINT, first_bucket BIGINT, stale BOOLEAN)
  LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
  DECLARE
    l function_limits%ROWTYPE;
    v_now BIGINT;
    v_running BIGINT := 0;
    v_used BIGINT := 0;
  BEGIN
    allowed := 0;
    stale := false;
    IF NOT EXISTS (SELECT 1 FROM calls k WHERE k.endpoint = p_endpoint AND k.function = p_function AND k.due_at <= p_now) THEN
      RETURN NEXT;
      RETURN;
    END IF;
    SELECT * INTO l FROM function_limits f WHERE f.endpoint = p_endpoint AND f.function = p_function FOR UPDATE;
    IF NOT FOUND OR l.concurrency <> p_concurrency OR l.concurrency_per_key OR l.rate_count <> p_rate_count
      OR (p_rate_count > 0 AND l.rate_period_ms <> p_period_ms) OR l.rate_per_key THEN
      stale := true;
      RETURN NEXT;
      RETURN;
    END IF;
    allowed := GREATEST(0, p_cap);
    IF p_concurrency > 0 THEN
      SELECT count(*) INTO v_running FROM calls k
        WHERE k.endpoint = p_endpoint AND k.function = p_function AND k.state = 'running' AND k.due_at > p_now;
      IF GREATEST(0, p_concurrency - v_running) < allowed THEN
        allowed := GREATEST(0, p_concurrency - v_running);
        bound := 'concurrency';
      END IF;
    END IF;
    IF p_rate_count > 0 THEN
      v_now := GREATEST(p_now, p_sent + floor(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::BIGINT);
      win_bucket := floor(v_now::DOUBLE PRECISION / p_bucket_ms)::BIGINT;
      win_oldest := floor((v_now::DOUBLE PRECISION - p_period_ms - p_margin_ms - p_bucket_ms) / p_bucket_ms)::BIGINT + 1;
      SELECT COALESCE(sum(w.starts), 0), min(w.bucket) INTO v_used, first_bucket FROM limit_windows w
        WHERE w.endpoint = p_endpoint AND w.function = p_function AND w.bucket >= win_oldest;
      IF GREATEST(0, p_rate_count - v_used) < allowed THEN
        allowed := GREATEST(0, p_rate_count - v_used);
        bound := 'rate';
      END IF;
    END IF;
    RETURN NEXT;
  END
  $fn$;
  `,
  // 12 (issue 14): idempotency keys indexed only where there is one. The
  // column's UNIQUE constraint indexed every row, NULLs included, and
  // PostgreSQL writes an entry in every index of the table at each update
  // that changes an indexed column (each claim and each result): three
  // entries per call for nothing. The partial unique index keeps the same
  // guarantee for the keys there are (ON CONFLICT names its predicate).
  `
  DO $m$
  DECLARE c TEXT;
  BEGIN
    SELECT conname INTO c FROM pg_constraint
      WHERE conrelid = 'calls'::regclass AND contype = 'u'
        AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = 'calls'::regclass AND attname = 'idempotency_key')]::int2[];
    IF c IS NOT NULL THEN
      EXECUTE format('ALTER TABLE calls DROP CONSTRAINT %I', c);
    END IF;
  END
  $m$;
  CREATE UNIQUE INDEX IF NOT EXISTS calls_idempotency_key ON calls (idempotency_key) WHERE idempotency_key IS NOT NULL;
  `,
];

/**
 * The advisory lock key of a schema's migrations: two int4 halves, the first
 * a constant for this project ("DSPT"), the second from the schema name.
 */
function lockKeys(schema: string): [number, number] {
  let h = 0;
  for (let i = 0; i < schema.length; i++) h = (Math.imul(h, 31) + schema.charCodeAt(i)) | 0;
  return [0x44535054, h];
}

/** Quotes a SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Creates the schema if needed and applies the missing migrations, all in one
 * transaction under an advisory lock: safe when several instances start at
 * once. Returns the schema version reached. Refuses a schema written by a
 * newer version of this package.
 * @example
 * const version = await migratePg(client, 'dispatch');
 */
export async function migratePg(client: ClientBase, schema: string): Promise<number> {
  if (!PG_SCHEMA_PATTERN.test(schema)) {
    throw new RangeError(
      `the PostgreSQL schema name must match ${PG_SCHEMA_PATTERN} (lower-case letters, digits, underscores), got ${JSON.stringify(schema)}`,
    );
  }
  const [k1, k2] = lockKeys(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [k1, k2]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_version');
    let version = rows[0]?.version ?? 0;
    if (rows.length === 0) await client.query('INSERT INTO schema_version (version) VALUES (0)');
    if (version > PG_MIGRATIONS.length) {
      throw new Error(
        `the PostgreSQL schema ${JSON.stringify(schema)} has version ${version}, newer than this scheduler knows (${PG_MIGRATIONS.length}): upgrade @dispatch/scheduler on every instance, or use another schema`,
      );
    }
    for (; version < PG_MIGRATIONS.length; version++) {
      await client.query(PG_MIGRATIONS[version] ?? '');
      await client.query('UPDATE schema_version SET version = $1', [version + 1]);
    }
    await client.query('COMMIT');
    return version;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
