/**
 * The journal of a suspended call: each durable operation, done or waited
 * on, with its outcome and the calls it started.
 * @module
 */
import type { ComponentChildren } from 'preact';
import type { JournalView, OperationView } from '../../api-types.js';
import { Badge } from '../components/badge.js';
import { ErrorBox } from '../components/error-box.js';
import { formatTime, shortId } from '../format.js';
import { runHref } from '../state/route.js';

/** Longest result text shown in a row. */
const MAX_RESULT_TEXT = 200;
/** Most dispatched calls linked in a row. */
const MAX_LINKS = 20;

function Outcome({ op }: { op: OperationView }) {
  const parts: ComponentChildren[] = [];
  if (op.error) parts.push(<ErrorBox error={op.error} />);
  else if (op.result) {
    const r = op.result;
    parts.push(
      r.kind === 'json' ? <code>{r.text.length > MAX_RESULT_TEXT ? `${r.text.slice(0, MAX_RESULT_TEXT)}…` : r.text}</code> : <span class="note">{r.note}</span>,
    );
  }
  if (op.deadline) parts.push(<span class="muted">{` until ${formatTime(op.deadline)}`}</span>);
  if (op.dispatchIds) {
    // A fan-out (batch or fn.dispatch): its calls are runs of their own, linked here.
    parts.push(<span class="muted">{` dispatched ${op.dispatchIds.length} call(s): `}</span>);
    for (const id of op.dispatchIds.slice(0, MAX_LINKS)) {
      parts.push(
        <a href={runHref(id)} class="mono">
          {shortId(id)}
        </a>,
        ' ',
      );
    }
    if (op.dispatchIds.length > MAX_LINKS) parts.push(<span class="muted">…</span>);
  }
  if (op.child) {
    parts.push(
      <span>
        {' '}
        <a href={runHref(op.child.id)} class="mono">
          {shortId(op.child.id)}
        </a>{' '}
        <Badge text={op.child.state} />
      </span>,
    );
  }
  return <td>{parts}</td>;
}

/**
 * The journal panel.
 * @example
 * {call.journal ? <JournalPanel journal={call.journal} /> : null}
 */
export function JournalPanel({ journal }: { journal: JournalView }) {
  if (journal.note) {
    return (
      <div class="panel" data-testid="journal">
        <h2>Journal</h2>
        <p class="note">{journal.note}</p>
      </div>
    );
  }
  const ops = journal.operations ?? [];
  const waiting = ops.filter((o) => o.state === 'waiting').length;
  return (
    <div class="panel" data-testid="journal">
      <h2>Journal</h2>
      <p class="muted">{`${ops.length} durable operation(s): ${ops.length - waiting} done, ${waiting} waited on. ${journal.bytes} bytes.`}</p>
      <table>
        <thead>
          <tr>
            <th />
            <th>Kind</th>
            <th>Name</th>
            <th>State</th>
            <th>Outcome</th>
          </tr>
        </thead>
        <tbody>
          {ops.map((op) => (
            <tr key={op.position} data-op={op.position} data-state={op.state}>
              <td>{`#${op.position}`}</td>
              <td>{op.kind}</td>
              <td class="mono">{op.name}</td>
              <td>
                <Badge text={op.state === 'waiting' ? 'waiting' : op.state === 'failed' ? 'failed' : 'done'} />
              </td>
              <Outcome op={op} />
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
