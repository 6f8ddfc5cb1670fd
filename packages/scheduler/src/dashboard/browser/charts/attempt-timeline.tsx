/**
 * A call's attempts on a line from its creation to its end (or now): one bar
 * per attempt, placed at its start, as wide as it lasted, coloured by outcome.
 * @module
 */
import type { AttemptView, CallView } from '../../api-types.js';
import { formatDuration } from '../format.js';

/** One attempt's bar, in percent of the line. */
export interface AttemptBar {
  attempt: AttemptView;
  /** `ok`, `fail`, `retry` or `suspend`. */
  tone: string;
  left: number;
  width: number;
}

/** Narrowest bar, in percent, so that a quick attempt stays visible. */
export const MIN_BAR_WIDTH = 2.5;

function tone(a: AttemptView): string {
  if (a.outcome === 'retry' || a.outcome === 'suspend') return a.outcome;
  if (a.statusName === 'OK') return 'ok';
  return a.outcome === 'exit' ? 'fail' : 'retry';
}

/**
 * Where each attempt's bar goes, for a call seen at time `now`.
 * @example
 * attemptBars({ createdAt: 0, finishedAt: 100, attemptHistory: [a] }, 100); // [{ attempt: a, tone: 'ok', left: 10, width: 50 }]
 */
export function attemptBars(call: Pick<CallView, 'createdAt' | 'finishedAt' | 'attemptHistory'>, now: number): AttemptBar[] {
  const start = call.createdAt;
  let end = Math.max(call.finishedAt || now, start + 1);
  for (const a of call.attemptHistory) end = Math.max(end, a.startedAt + a.durationMs);
  const span = end - start;
  return call.attemptHistory.map((a) => {
    const width = Math.max((a.durationMs / span) * 100, MIN_BAR_WIDTH);
    const left = Math.min(((a.startedAt - start) / span) * 100, 100 - width);
    return { attempt: a, tone: tone(a), left, width };
  });
}

/**
 * The timeline.
 * @example
 * <AttemptTimeline call={call} now={data.now} />
 */
export function AttemptTimeline({ call, now }: { call: CallView; now: number }) {
  return (
    <div class="timeline" title={`From creation to ${call.finishedAt ? 'the end' : 'now'}`}>
      {attemptBars(call, now).map(({ attempt: a, tone, left, width }) => (
        <div
          key={a.number}
          class={`bar ${tone}`}
          // Through the CSSOM: the Content-Security-Policy refuses style attributes.
          style={{ left: `${left.toFixed(2)}%`, width: `${width.toFixed(2)}%` }}
          title={`#${a.number} ${a.statusName} ${a.outcome} ${formatDuration(a.durationMs)}`}
        >
          {`#${a.number}`}
        </div>
      ))}
    </div>
  );
}
