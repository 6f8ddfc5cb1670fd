/**
 * The dashboard API's calls, typed by the shapes the server answers
 * (`../../api-types.ts`).
 * @module
 */
import type { ConcurrencyResponse, RunResponse, RunsResponse, SchedulesResponse } from '../../api-types.js';
import { DASHBOARD_BASE, request } from './client.js';

/** The stream of server-sent `change` events. */
export const EVENTS_URL = `${DASHBOARD_BASE}/api/events`;

/**
 * A page of runs under filters (see `state/runs-filter.ts`).
 * @example
 * const page = await getRuns(new URLSearchParams({ state: 'failed', limit: '50' }));
 */
export function getRuns(query: URLSearchParams): Promise<RunsResponse> {
  return request<RunsResponse>(`/runs?${query.toString()}`);
}

/**
 * One call, with the tree of its run.
 * @example
 * const { call, tree } = await getRun(id);
 */
export function getRun(id: string): Promise<RunResponse> {
  return request<RunResponse>(`/runs/${encodeURIComponent(id)}`);
}

/** What a run page can do to a call. */
export type RunAction = 'cancel' | 'restart' | 'resume';

/**
 * Cancels a call (and its unfinished calls), restarts it from its input, or
 * resumes a failed call from its journal.
 * @example
 * await runAction(id, 'cancel');
 */
export async function runAction(id: string, action: RunAction): Promise<void> {
  await request<unknown>(`/runs/${encodeURIComponent(id)}/${action}`, 'POST');
}

/**
 * The adaptive limits of this instance over the last minutes.
 * @example
 * const { series } = await getConcurrency();
 */
export function getConcurrency(): Promise<ConcurrencyResponse> {
  return request<ConcurrencyResponse>('/concurrency');
}

/**
 * The schedules apps declared, with their next and last tick.
 * @example
 * const { schedules } = await getSchedules();
 */
export function getSchedules(): Promise<SchedulesResponse> {
  return request<SchedulesResponse>('/schedules');
}

/**
 * Pauses or resumes a schedule.
 * @example
 * await scheduleAction('report', 'pause');
 */
export async function scheduleAction(name: string, action: 'pause' | 'resume'): Promise<void> {
  await request<unknown>(`/schedules/${encodeURIComponent(name)}/${action}`, 'POST');
}
