/**
 * The adaptive concurrency of each (endpoint, function) pair on this
 * instance: its limit, its runs in flight, its bounds and a chart.
 * @module
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { CircuitView, ConcurrencyResponse } from '../../api-types.js';
import { messageOf } from '../api/client.js';
import { getConcurrency } from '../api/dashboard-api.js';
import { ConcurrencyChart } from '../charts/concurrency-chart.js';
import { showNotice } from '../shell.js';
import { useLiveRefresh } from '../state/live.js';

/** The circuit of a card's endpoint: closed, or why and until when not. */
function Circuit({ circuit, now }: { circuit: CircuitView | undefined; now: number }) {
  if (!circuit || circuit.state === 'closed') {
    return (
      <p class="circuit muted" data-circuit="closed">
        circuit closed: calls are sent
      </p>
    );
  }
  const probe =
    circuit.state === 'probing' || circuit.nextProbeAt === null
      ? 'a probe is in flight'
      : `next probe in ${Math.max(0, Math.ceil((circuit.nextProbeAt - now) / 1000))} s`;
  return (
    <p class="circuit" data-circuit={circuit.state} title={circuit.lastError}>
      {`circuit ${circuit.state}: unreachable for ${Math.round((now - circuit.since) / 1000)} s, ${circuit.refused} refused attempt(s); calls wait, ${probe}`}
    </p>
  );
}

function Cards({ data }: { data: ConcurrencyResponse }) {
  if (data.series.length === 0) return <p class="panel muted">No function has run on this instance yet.</p>;
  const circuits = new Map((data.circuits ?? []).map((c) => [c.endpoint, c]));
  return (
    <div class="cards">
      {data.series.map((s) => (
        <div key={`${s.endpoint} ${s.function}`} class="panel card" data-function={s.function}>
          <div class="head">
            <span class="fn">{s.function}</span>
            <span class="ep">{s.endpoint}</span>
          </div>
          <div class="nums">
            <div>
              <b class="limit-value">{Math.floor(s.limit)}</b>
              <span>limit</span>
            </div>
            <div>
              <b class="inflight-value">{s.inFlight}</b>
              <span>in flight</span>
            </div>
            <div>
              <b>{`${s.min}–${s.max}`}</b>
              <span>bounds</span>
            </div>
          </div>
          <Circuit circuit={circuits.get(s.endpoint)} now={data.now} />
          <ConcurrencyChart series={s} now={data.now} windowMs={data.windowMs} />
        </div>
      ))}
    </div>
  );
}

/**
 * The concurrency page.
 * @example
 * <ConcurrencyPage />
 */
export function ConcurrencyPage() {
  const [data, setData] = useState<ConcurrencyResponse | null>(null);
  const refresh = useCallback(async () => {
    try {
      setData(await getConcurrency());
    } catch (err) {
      showNotice(messageOf(err));
    }
  }, []);
  useEffect(() => {
    void refresh();
  }, [refresh]);
  useLiveRefresh(refresh);

  return (
    <>
      <div class="panel">
        <h2>Adaptive concurrency</h2>
        <p class="muted">
          Per endpoint and function, on this scheduler instance: the current limit (increases on success, halves on statuses that say the endpoint
          struggles) and the runs in flight, over the last minutes. An endpoint that refuses connections opens its circuit: its calls wait and one
          probe goes now and then, until it answers.
        </p>
        <div class="legend">
          <span>
            <i class="limit" />
            limit
          </span>
          <span>
            <i class="inflight" />
            in flight
          </span>
        </div>
      </div>
      <div>{data ? <Cards data={data} /> : null}</div>
    </>
  );
}
