/**
 * How the dashboard writes times, durations and dispatch IDs.
 * @module
 */

/**
 * A time of day (with the date when it is not today), in the reader's locale.
 * @example
 * formatTime(Date.now()); // '14:03:27'
 * formatTime(null); // '—'
 */
export function formatTime(ms: number | null | undefined, today: Date = new Date()): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

/**
 * A duration in the largest unit that keeps it readable.
 * @example
 * formatDuration(850); // '850 ms'
 * formatDuration(1_234); // '1.23 s'
 * formatDuration(125_000); // '2 min 5 s'
 */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/**
 * A long ID cut to its ends.
 * @example
 * shortId('01HZX4V7Q8M2N5P6R7S8T9'); // '01HZX4…R7S8T9'
 */
export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}
