/**
 * The schedules apps declared (functions with a cron `schedule`): their
 * cron and time zone, next run, last tick and its call, ticks run and
 * missed, and a button to pause or resume each.
 * @module
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { ScheduleView, SchedulesResponse } from '../../api-types.js';
import { messageOf } from '../api/client.js';
import { getSchedules, scheduleAction } from '../api/dashboard-api.js';
import { formatDuration, formatTime } from '../format.js';
import { showNotice } from '../shell.js';
import { useLiveRefresh } from '../state/live.js';
import { runHref } from '../state/route.js';

function NextRun({ s, now }: { s: ScheduleView; now: number }) {
  if (s.paused) return <span class="muted">paused</span>;
  if (s.nextTickAt === null) return <span class="muted">never</span>;
  return (
    <span title={new Date(s.nextTickAt).toISOString()}>
      {formatTime(s.nextTickAt)} <span class="muted">(in {formatDuration(Math.max(0, s.nextTickAt - now))})</span>
    </span>
  );
}

function Row({ s, now, act }: { s: ScheduleView; now: number; act: (s: ScheduleView) => void }) {
  return (
    <tr data-schedule={s.name}>
      <td class="mono">{s.name}</td>
      <td class="mono nowrap">{s.cron}</td>
      <td>{s.timeZone || 'UTC'}</td>
      <td>
        <span class={`badge ${s.paused ? 'cancelled' : 'succeeded'}`}>{s.paused ? 'paused' : 'active'}</span>
      </td>
      <td class="nowrap">
        <NextRun s={s} now={now} />
      </td>
      <td class="nowrap">
        {s.lastTickAt === null ? <span class="muted">—</span> : formatTime(s.lastTickAt)}
        {s.lastDispatchId ? (
          <>
            {' '}
            <a class="mono" href={runHref(s.lastDispatchId)} title={s.lastDispatchId}>
              run
            </a>
          </>
        ) : null}
      </td>
      <td>
        {s.ticks}
        {s.skippedTicks ? <span class="muted"> (+{s.skippedTicks} missed)</span> : null}
      </td>
      <td class="mono muted">{s.endpoint}</td>
      <td>
        <button type="button" class={s.paused ? 'primary' : ''} onClick={() => act(s)}>
          {s.paused ? 'Resume' : 'Pause'}
        </button>
      </td>
    </tr>
  );
}

/**
 * The schedules page.
 * @example
 * <SchedulesPage />
 */
export function SchedulesPage() {
  const [data, setData] = useState<SchedulesResponse | null>(null);
  const refresh = useCallback(async () => {
    try {
      setData(await getSchedules());
    } catch (err) {
      showNotice(messageOf(err));
    }
  }, []);
  useEffect(() => {
    void refresh();
    // The next run's countdown moves even when nothing happens.
    const timer = setInterval(() => void refresh(), 5_000);
    return () => clearInterval(timer);
  }, [refresh]);
  useLiveRefresh(refresh);
  const act = async (s: ScheduleView) => {
    try {
      await scheduleAction(s.name, s.paused ? 'resume' : 'pause');
      await refresh();
    } catch (err) {
      showNotice(messageOf(err));
    }
  };

  return (
    <>
      <div class="panel">
        <h2>Schedules</h2>
        <p class="muted">
          The cron schedules apps declared when they started (functions with a <code>schedule</code>). Each tick runs once, however many scheduler
          instances share the store. A paused schedule runs no tick until it is resumed; it then continues from its next tick.
        </p>
      </div>
      <div class="panel">
        {data === null ? null : data.schedules.length === 0 ? (
          <p class="muted">No schedules: give a function a schedule (dispatch.function(&#123; name, schedule: '0 9 * * 1' &#125;, fn)) and start its app.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Cron</th>
                <th>Time zone</th>
                <th>State</th>
                <th>Next run</th>
                <th>Last tick</th>
                <th>Ticks</th>
                <th>Endpoint</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {data.schedules.map((s) => (
                <Row key={s.name} s={s} now={data.now} act={(x) => void act(x)} />
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}
