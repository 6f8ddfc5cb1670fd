/**
 * Events a {@link Scheduler} emits, for live progress (the CLI) and charts
 * (the dashboard).
 * @module
 */
import type { CircuitSnapshot } from './run/circuit.js';
import type { ConcurrencySnapshot } from './run/concurrency.js';
import type { CallState } from './store/store.js';

/**
 * One run of a call ended: an attempt (the first run, or a retry) or a
 * resume (the call continued after a suspension).
 * @example
 * scheduler.on('attempt', (e: AttemptEvent) => console.log(e.function, e.resume ? `resume ${e.resumes}` : `attempt ${e.attempt}`, e.statusName, e.outcome));
 */
export interface AttemptEvent {
  dispatchId: string;
  function: string;
  endpoint: string;
  /** The run's number over attempts and resumes (1 for the first run). */
  run: number;
  /** Attempts of the call so far, this run included when it is one (1 for the first run). */
  attempt: number;
  /** Resumes of the call so far, this run included when it is one. */
  resumes: number;
  /** A `Status` number. */
  status: number;
  statusName: string;
  startedAt: number;
  durationMs: number;
  /**
   * `exit` (finished), `retry` (will run again at `nextRunAt`), `suspend`
   * (waits on a Poll), `tail_call`, or `dropped` (the result was not recorded:
   * the call was cancelled or its lease was lost meanwhile).
   */
  outcome: 'exit' | 'retry' | 'suspend' | 'tail_call' | 'dropped';
  /** The run continued the call after a suspension: a resume, not an attempt (a retry is an attempt). */
  resume: boolean;
  error?: { type: string; message: string };
  nextRunAt?: number;
  /** Calls started by the Poll, if any. */
  children?: number;
  /**
   * The run's answer came early, with its child's (a local resume,
   * `RunRequest.local_resume`): no request of its own was sent.
   */
  localResume?: boolean;
}

/**
 * A call finished (succeeded, failed, expired or was cancelled through the API).
 * @example
 * scheduler.on('finished', (e: FinishedEvent) => console.log(e.dispatchId, e.state));
 */
export interface FinishedEvent {
  dispatchId: string;
  function: string;
  state: CallState;
  status: number;
  statusName: string;
}

/**
 * Calls were accepted through `Dispatch`.
 * @example
 * scheduler.on('dispatched', (e: DispatchedEvent) => console.log(e.dispatchIds));
 */
export interface DispatchedEvent {
  dispatchIds: string[];
  functions: string[];
}

/**
 * The events, by name, with their listener arguments.
 * @example
 * scheduler.on('concurrency', (s) => chart.push(s.limit));
 */
export interface SchedulerEvents {
  attempt: [AttemptEvent];
  finished: [FinishedEvent];
  dispatched: [DispatchedEvent];
  /** The integer part of an adaptive limit changed. */
  concurrency: [ConcurrencySnapshot];
  /** An endpoint's circuit changed state (opened, probing, closed). */
  circuit: [CircuitSnapshot];
}
