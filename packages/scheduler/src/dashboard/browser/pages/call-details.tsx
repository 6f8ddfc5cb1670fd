/**
 * What the run page says about one call: its fields, its attempts (on a
 * timeline and in a table), its input and output or error, and its journal.
 * @module
 */
import type { ComponentChildren } from 'preact';
import type { AttemptView, CallView } from '../../api-types.js';
import { AttemptTimeline } from '../charts/attempt-timeline.js';
import { Badge } from '../components/badge.js';
import { ErrorBox } from '../components/error-box.js';
import { ValueBlock } from '../components/value-block.js';
import { formatDuration, formatTime } from '../format.js';
import { runHref } from '../state/route.js';
import { JournalPanel } from './journal-panel.js';

/** The states a call does not leave. */
export const FINISHED_STATES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

function fields(c: CallView): Array<[string, ComponentChildren]> {
  const kv: Array<[string, ComponentChildren]> = [
    ['State', <Badge text={c.state} />],
    ['Status', c.statusName],
    ['Attempts', String(c.attempts)],
    ['Resumes', String(c.resumes)],
    ['Created', formatTime(c.createdAt)],
    ['Finished', c.finishedAt ? `${formatTime(c.finishedAt)} (${formatDuration(c.finishedAt - c.createdAt)})` : '—'],
    ['Next run', c.nextRunAt ? formatTime(c.nextRunAt) : '—'],
    ['Expires', formatTime(c.expiresAt)],
    ['Endpoint', c.endpoint],
    [
      'Parent',
      c.parentId ? (
        <a href={runHref(c.parentId)} class="mono">
          {c.parentId}
        </a>
      ) : (
        '—'
      ),
    ],
    [
      'Root',
      c.rootId !== c.id ? (
        <a href={runHref(c.rootId)} class="mono">
          {c.rootId}
        </a>
      ) : (
        'itself'
      ),
    ],
  ];
  if (c.originalFunction !== c.function) kv.push(['Started as', c.originalFunction]);
  if (c.idempotencyKey) kv.push(['Idempotency key', c.idempotencyKey]);
  if (c.concurrency) kv.push(['Concurrency', `limit ${Math.floor(c.concurrency.limit)}, ${c.concurrency.inFlight} in flight`]);
  if (c.limitKey) kv.push(['Limit key', c.limitKey]);
  if (c.waitingOn) kv.push(['Waiting on', <span data-testid="limit-wait">{`${c.state} (${c.waitingOn})`}</span>]);
  if (c.state === 'suspended') kv.push(['Waiting for', `${c.readyResults} of ${c.minResults} result(s) ready`]);
  if (c.waitingForSignals.length > 0) {
    kv.push([
      'Waits for signal',
      <span data-testid="waiting-for-signals">
        {c.waitingForSignals.map((n) => (
          <span key={n} class="mono">
            {n}{' '}
          </span>
        ))}
      </span>,
    ]);
  }
  return kv;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function outcomeTone(a: AttemptView): string {
  if (a.outcome !== 'exit') return a.outcome;
  return a.statusName === 'OK' ? 'exit-ok' : 'exit-fail';
}

function Attempts({ call: c, now }: { call: CallView; now: number }) {
  if (c.attemptHistory.length === 0) {
    return (
      <div class="panel" data-testid="attempts">
        <h2>Runs</h2>
        <p class="muted">No run yet.</p>
      </div>
    );
  }
  return (
    <div class="panel" data-testid="attempts">
      <h2>{`Runs: ${plural(c.attempts, 'attempt')}${c.resumes ? `, ${plural(c.resumes, 'resume')}` : ''}`}</h2>
      <AttemptTimeline call={c} now={now} />
      <table>
        <thead>
          <tr>
            <th />
            <th>Started</th>
            <th>Duration</th>
            <th>Status</th>
            <th>Outcome</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {c.attemptHistory.map((a) => (
            <tr key={a.number} data-attempt={a.number} data-outcome={a.outcome} data-resume={a.resume ? 'true' : 'false'}>
              <td class="nowrap">{a.label}</td>
              <td class="nowrap">{formatTime(a.startedAt)}</td>
              <td class="nowrap">{formatDuration(a.durationMs)}</td>
              <td class="mono">{a.statusName}</td>
              <td>
                <Badge text={a.outcome} tone={outcomeTone(a)} />
              </td>
              <td>{a.error ? <ErrorBox error={a.error} /> : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Signals({ call: c }: { call: CallView }) {
  return (
    <div class="panel" data-testid="signals">
      <h2>{`Signals: ${plural(c.signals.length, 'signal')} received`}</h2>
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Payload</th>
            <th>Sent</th>
            <th>Consumed</th>
          </tr>
        </thead>
        <tbody>
          {c.signals.map((g, i) => (
            <tr key={i} data-signal={g.name}>
              <td class="mono">{g.name}</td>
              <td>
                <ValueBlock value={g.payload} />
              </td>
              <td class="nowrap">{formatTime(g.sentAt)}</td>
              <td class="nowrap">{g.consumedAt ? formatTime(g.consumedAt) : <Badge text="kept" tone="pending" />}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/**
 * The panels about a call seen at time `now`.
 * @example
 * <CallDetails call={data.call} now={data.now} />
 */
export function CallDetails({ call: c, now }: { call: CallView; now: number }) {
  return (
    <div>
      <div class="panel">
        <h2>Call</h2>
        <dl class="kv">
          {fields(c).map(([label, value]) => [<dt key={`${label}:t`}>{label}</dt>, <dd key={`${label}:d`}>{value}</dd>])}
        </dl>
      </div>
      <Attempts call={c} now={now} />
      {c.signals.length > 0 ? <Signals call={c} /> : null}
      <div class="panel">
        <h2>Input</h2>
        <ValueBlock value={c.input} />
        {c.output ? (
          <>
            <h2>Output</h2>
            <ValueBlock value={c.output} />
          </>
        ) : null}
        {c.failure ? (
          <>
            <h2>{FINISHED_STATES.has(c.state) ? 'Error' : 'Last error'}</h2>
            <ErrorBox error={c.failure} />
          </>
        ) : null}
      </div>
      {c.journal ? <JournalPanel journal={c.journal} /> : null}
    </div>
  );
}
