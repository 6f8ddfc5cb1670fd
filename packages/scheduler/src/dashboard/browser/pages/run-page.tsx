/**
 * One call: its run's tree, its details, and the actions Cancel, Restart and
 * Resume (each behind a confirmation).
 * @module
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { CallView, RunResponse } from '../../api-types.js';
import { messageOf } from '../api/client.js';
import { getRun, type RunAction, runAction } from '../api/dashboard-api.js';
import { Badge } from '../components/badge.js';
import { confirmAction, showNotice } from '../shell.js';
import { useLiveRefresh } from '../state/live.js';
import { CallDetails, FINISHED_STATES } from './call-details.js';
import { CallTree } from './call-tree.js';

function confirmation(action: RunAction, c: CallView): Promise<boolean> {
  if (action === 'cancel') {
    return confirmAction(
      'Cancel this run?',
      `Cancel ${c.function} (${c.id}) and every call it started that has not finished. A run in flight is not interrupted, but its result is discarded.`,
      'Cancel run',
    );
  }
  if (action === 'resume') {
    return confirmAction(
      'Resume from the journal?',
      `Run ${c.function} (${c.id}) again from its last recorded state. The calls it awaited that succeeded return their recorded results and are not run again; the ones that failed run again.`,
      'Resume run',
    );
  }
  return confirmAction(
    'Restart from the original input?',
    `Run ${c.originalFunction} again from its original input, under the same dispatch ID. Side effects may repeat: any work it already did (a payment, an email) can happen a second time.`,
    'Restart run',
  );
}

/**
 * The page of the call `id`.
 * @example
 * <RunPage id="D1" />
 */
export function RunPage({ id }: { id: string }) {
  const [data, setData] = useState<RunResponse | null>(null);
  const shown = useRef(''); // what is on screen: a refresh that changes nothing leaves the page (and its open folds) alone

  const refresh = useCallback(async () => {
    try {
      const next = await getRun(id);
      const key = JSON.stringify({ call: next.call, tree: next.tree });
      if (key === shown.current) return;
      shown.current = key;
      setData(next);
    } catch (err) {
      showNotice(messageOf(err));
    }
  }, [id]);
  useEffect(() => {
    void refresh();
  }, [refresh]);
  useLiveRefresh(refresh);

  const act = async (action: RunAction, c: CallView) => {
    try {
      if (!(await confirmation(action, c))) return;
      await runAction(c.id, action);
      shown.current = '';
      await refresh();
    } catch (err) {
      showNotice(messageOf(err));
    }
  };

  if (!data) return <div />;
  const c = data.call;
  const done = FINISHED_STATES.has(c.state);
  return (
    <div>
      <div class="panel run-head">
        <h1>{c.function}</h1>
        <Badge text={c.state} />
        <span class="mono muted">{c.id}</span>
        <div class="actions">
          <button
            type="button"
            class="danger"
            data-action="cancel"
            disabled={done}
            title={done ? 'It has finished' : 'Cancel it and its unfinished calls'}
            onClick={() => void act('cancel', c)}
          >
            Cancel
          </button>
          <button type="button" data-action="restart" onClick={() => void act('restart', c)}>
            Restart…
          </button>
          <button
            type="button"
            data-action="resume"
            disabled={c.state !== 'failed'}
            title={c.state === 'failed' ? 'Run it again from its journal: what succeeded is not run again' : 'Only a failed or expired call can be resumed'}
            onClick={() => void act('resume', c)}
          >
            Resume…
          </button>
        </div>
      </div>
      <div class="grid">
        <div class="panel">
          <h2>Call tree</h2>
          <CallTree root={data.tree} selected={c.id} />
          {data.truncated ? <p class="note">Only the first calls are shown.</p> : null}
        </div>
        <CallDetails call={c} now={data.now} />
      </div>
    </div>
  );
}
