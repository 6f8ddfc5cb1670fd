/**
 * The dashboard's JSON API, as types: what `GET /dashboard/api/...` answers.
 * The server builds these values (`views.ts`, `dashboard.ts`); the browser
 * code (`browser/`) reads them. This file imports nothing, so that both
 * sides, compiled with different libraries (Node's, the DOM's), share it.
 * @module
 */

/**
 * Where a call stands (the store's `CallState`; `views.ts` checks that the
 * two stay equal).
 * @example
 * const s: RunState = 'suspended';
 */
export type RunState = 'pending' | 'running' | 'suspended' | 'succeeded' | 'failed' | 'cancelled';

/**
 * A value for reading: pretty JSON (with a note when some parts had to be
 * converted), or a note saying why it cannot be shown.
 * @example
 * const v: ValueView = { kind: 'json', text: '["user_123"]' };
 */
export type ValueView = { kind: 'none'; note: string } | { kind: 'json'; text: string; note?: string } | { kind: 'opaque'; note: string };

/**
 * An error for reading.
 * @example
 * const e: ErrorView = { type: 'TemporaryError', message: 'smtp down', stack: 'TemporaryError: smtp down\n    at …' };
 */
export interface ErrorView {
  type: string;
  message: string;
  /** The stack (traceback) recorded where it was thrown, if any. */
  stack?: string;
  /** Its own fields and cause, as JSON, when it has any. */
  fields?: ValueView;
}

/**
 * One run of a call: an attempt (the first run, or a retry) or a resume
 * (the call continued after a suspension).
 * @example
 * const a: AttemptView = { number: 1, label: 'attempt 1', startedAt, durationMs: 12, status: 1, statusName: 'OK', outcome: 'exit', resume: false, error: null };
 */
export interface AttemptView {
  /** The run's number over attempts and resumes. */
  number: number;
  /** `attempt 2`, `resume 3`: attempts and resumes are numbered apart. */
  label: string;
  startedAt: number;
  durationMs: number;
  status: number;
  statusName: string;
  /** `exit`, `suspend` or `retry`. */
  outcome: string;
  /** A resume, not an attempt. */
  resume: boolean;
  error: ErrorView | null;
}

/**
 * A row of the runs list.
 * @example
 * const page: RunsResponse = await (await fetch('/dashboard/api/runs')).json();
 * page.runs[0]?.function; // 'checkout'
 */
export interface RunSummary {
  id: string;
  function: string;
  endpoint: string;
  state: RunState;
  status: number;
  statusName: string;
  /** The first run and each retry. */
  attempts: number;
  /** Runs that continued the call after a suspension. */
  resumes: number;
  parentId: string | null;
  rootId: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** The last error's type and message (while retrying, the last attempt's). */
  error: string | null;
}

/**
 * A call in a run's tree.
 * @example
 * const leaf: TreeNode = { id, function: 'charge', state: 'succeeded', statusName: 'OK', attempts: 1, resumes: 0, createdAt, finishedAt, children: [] };
 */
export interface TreeNode {
  id: string;
  function: string;
  state: RunState;
  statusName: string;
  attempts: number;
  resumes: number;
  createdAt: number;
  finishedAt: number | null;
  children: TreeNode[];
}

/**
 * One durable operation of a journal and where it stands.
 * @example
 * const op: OperationView = { position: 0, kind: 'call', name: 'charge', state: 'waiting' };
 */
export interface OperationView {
  position: number;
  kind: 'call' | 'sleep' | 'step' | 'dispatch' | 'signal-wait' | 'signal-send' | 'unknown';
  name: string;
  /** `done` and `failed` have an outcome; `waiting` has none yet. */
  state: 'done' | 'failed' | 'waiting';
  result?: ValueView;
  error?: ErrorView;
  /** Sleep: when it ends. */
  deadline?: number;
  /** Dispatch: the dispatch IDs it created. */
  dispatchIds?: string[];
  /** Call: the child call that runs it, when known. */
  child?: { id: string; state: RunState; statusName: string };
}

/**
 * The state a suspended call keeps: a journal of this SDK, or a foreign state.
 * @example
 * const j: JournalView = { typeUrl, bytes: 40, note: 'a state of type coroutine.v1.State (40 bytes) written by another SDK: not readable here' };
 */
export interface JournalView {
  typeUrl: string;
  bytes: number;
  /** Set when the state cannot be shown (another SDK's, or unreadable). */
  note?: string;
  function?: string;
  operations?: OperationView[];
  /** Outcomes recorded in the journal (delivered to the function). */
  outcomes?: number;
}

/**
 * The adaptive concurrency of one (endpoint, function) pair on this instance.
 * @example
 * const c: ConcurrencyView = { endpoint: 'http://127.0.0.1:3000/dispatch', function: 'charge', limit: 16, inFlight: 3, min: 1, max: 1000 };
 */
export interface ConcurrencyView {
  endpoint: string;
  function: string;
  /** Current limit; its integer part is the number of runs allowed in flight. */
  limit: number;
  inFlight: number;
  min: number;
  max: number;
}

/**
 * Everything the run page shows about one call.
 * @example
 * const { call } = (await (await fetch(`/dashboard/api/runs/${id}`)).json()) as RunResponse;
 */
export interface CallView extends RunSummary {
  originalFunction: string;
  version: string;
  idempotencyKey: string | null;
  correlationId: string | null;
  expiresAt: number;
  nextRunAt: number | null;
  readyResults: number;
  minResults: number;
  maxResults: number;
  input: ValueView;
  output: ValueView | null;
  failure: ErrorView | null;
  attemptHistory: AttemptView[];
  journal: JournalView | null;
  concurrency: ConcurrencyView | null;
  /** The key of the call's per-key limit (declared limits), or null. */
  limitKey: string | null;
  /** While the call is due but waits on a declared limit: which (`concurrency limit 2 of checkout, key u1`), else null. */
  waitingOn: string | null;
  /** The names of the signals its current Poll waits for (issue 15). */
  waitingForSignals: string[];
  /** The signals sent to it, oldest first. */
  signals: SignalView[];
}

/**
 * A signal sent to a call: kept until a wait consumes it (`consumedAt`).
 * @example
 * const s: SignalView = { name: 'decision', payload: { kind: 'json', text: '{"approved":true}' }, sentAt: Date.now(), consumedAt: null };
 */
export interface SignalView {
  name: string;
  payload: ValueView;
  sentAt: number;
  consumedAt: number | null;
}

/**
 * `GET /dashboard/api/runs`: a page of runs, the counts per state under the
 * other filters, and the functions known to this instance.
 * @example
 * const page: RunsResponse = await (await fetch('/dashboard/api/runs?state=failed')).json();
 */
export interface RunsResponse {
  now: number;
  runs: RunSummary[];
  counts: Record<RunState, number>;
  nextCursor: string | null;
  functions: string[];
}

/**
 * `GET /dashboard/api/runs/:id`: one call and the tree of its run.
 * @example
 * const run: RunResponse = await (await fetch(`/dashboard/api/runs/${id}`)).json();
 */
export interface RunResponse {
  now: number;
  call: CallView;
  tree: TreeNode | null;
  /** More calls than the tree shows. */
  truncated: boolean;
}

/**
 * `[time in ms, limit, in flight]`
 * @example
 * const s: ConcurrencySample = [Date.now(), 16, 3];
 */
export type ConcurrencySample = [number, number, number];

/**
 * One pair's current limit and its samples, oldest first.
 * @example
 * const s: ConcurrencySeriesView = { ...view, samples: [[t, 16, 3]] };
 */
export interface ConcurrencySeriesView extends ConcurrencyView {
  samples: ConcurrencySample[];
}

/**
 * `GET /dashboard/api/concurrency`: every pair's limit over the last minutes.
 * @example
 * const data: ConcurrencyResponse = await (await fetch('/dashboard/api/concurrency')).json();
 */
export interface ConcurrencyResponse {
  now: number;
  /** How far back the samples go. */
  windowMs: number;
  series: ConcurrencySeriesView[];
  /** Endpoints whose circuit is not closed (they refused connections, or their app crashed). */
  circuits: CircuitView[];
}

/**
 * The circuit of an endpoint that is not closed: `open` (it refused
 * connections; its calls wait for the next probe) or `probing`.
 * @example
 * const c: CircuitView = { endpoint: 'http://127.0.0.1:3000', state: 'open', since: t, nextProbeAt: t + 5000, refused: 12, probes: 3, lastError: 'ECONNREFUSED' };
 */
export interface CircuitView {
  endpoint: string;
  state: 'closed' | 'open' | 'probing';
  since: number;
  nextProbeAt: number | null;
  /** Attempts refused since it opened. */
  refused: number;
  probes: number;
  lastError: string;
}

/**
 * One schedule on the schedules page (`GET /dashboard/api/schedules`).
 * @example
 * const s: ScheduleView = data.schedules[0]!;
 */
export interface ScheduleView {
  name: string;
  endpoint: string;
  cron: string;
  /** IANA time zone, or '' for UTC. */
  timeZone: string;
  missed: 'run-once' | 'skip';
  paused: boolean;
  /** ms since the epoch; null while paused. */
  nextTickAt: number | null;
  lastTickAt: number | null;
  lastDispatchId: string | null;
  ticks: number;
  skippedTicks: number;
}

/**
 * The schedules page's data.
 * @example
 * const data: SchedulesResponse = await (await fetch('/dashboard/api/schedules')).json();
 */
export interface SchedulesResponse {
  now: number;
  schedules: ScheduleView[];
}
