/**
 * Requests to the dashboard's JSON API: with the session cookie, the header
 * that the server demands of actions, and the server's message on failure.
 * A request without a session (401) sends the page to the login form.
 * @module
 */

/** Where the dashboard is served; its JSON API is under `${DASHBOARD_BASE}/api`. */
export const DASHBOARD_BASE = '/dashboard';

/**
 * The message of something thrown, for the notice.
 * @example
 * messageOf(new Error('HTTP 500')); // 'HTTP 500'
 */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function serverMessage(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || !('message' in body)) return null;
  const message = (body as { message: unknown }).message;
  return typeof message === 'string' && message !== '' ? message : null;
}

/**
 * Calls `${DASHBOARD_BASE}/api${path}` and answers its JSON body.
 * Throws an `Error` with the server's message (or `HTTP <status>`).
 * @example
 * const page = await request<RunsResponse>('/runs?limit=50');
 * await request('/runs/D1/cancel', 'POST');
 */
export async function request<T>(path: string, method: 'GET' | 'POST' = 'GET'): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  // The server refuses actions without it: a form on another site cannot send this header.
  if (method !== 'GET') headers['x-dispatch-dashboard'] = '1';
  const res = await fetch(`${DASHBOARD_BASE}/api${path}`, { credentials: 'same-origin', method, headers });
  if (res.status === 401) {
    location.href = `${DASHBOARD_BASE}/login`;
    throw new Error('signed out');
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!res.ok) throw new Error(serverMessage(body) ?? `HTTP ${res.status}`);
  return body as T;
}
