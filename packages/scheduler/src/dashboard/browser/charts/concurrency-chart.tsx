/**
 * The chart of one function's adaptive limit (a step line) and its runs in
 * flight (a filled step area) over the last minutes, in plain SVG: two paths
 * need no chart library (uPlot, 51 KB minified, would outweigh this whole
 * app, Preact included).
 * @module
 */
import type { ConcurrencySeriesView } from '../../api-types.js';

/** The chart's box, in SVG units (it is stretched to the card's width). */
const W = 360;
const H = 120;
const LEFT = 30;
const BOTTOM = 16;
const TOP = 6;
/** The chart reaches at least this far back. */
const MIN_SPAN_MS = 60_000;

/** What the chart draws. */
export interface ChartGeometry {
  /** The top of the value axis. */
  max: number;
  /** How far back the chart reaches, in whole minutes. */
  minutes: number;
  /** `d` of the limit's step line. */
  limitPath: string;
  /** `d` of the in-flight step area. */
  inFlightPath: string;
  /** y of the value 0 (the time axis). */
  zeroY: number;
}

/**
 * The chart of a series at time `now`, from its first sample (at least a
 * minute back) and at most `windowMs` back; the current value is drawn up to
 * `now`.
 * @example
 * chartGeometry({ ...snapshot, samples: [[now - 60_000, 16, 0]] }, now, 15 * 60_000).limitPath; // 'M30.0 …'
 */
export function chartGeometry(series: ConcurrencySeriesView, now: number, windowMs: number): ChartGeometry {
  const samples = series.samples;
  const first = samples[0]?.[0] ?? now;
  const from = Math.max(now - windowMs, Math.min(first, now - MIN_SPAN_MS));
  const span = now - from;
  const lastLimit = samples.at(-1)?.[1] ?? Math.floor(series.limit);
  const points: Array<[number, number, number]> = [...samples, [now, lastLimit, series.inFlight]];
  let top = 1;
  for (const [, limit, inFlight] of points) top = Math.max(top, limit, inFlight);
  const max = Math.ceil(top * 1.15);
  const x = (t: number) => (LEFT + ((Math.max(t, from) - from) / span) * (W - LEFT - 4)).toFixed(1);
  const y = (v: number) => (TOP + (1 - v / max) * (H - TOP - BOTTOM)).toFixed(1);
  let limitPath = '';
  let inFlightPath = '';
  points.forEach(([t, limit, inFlight], i) => {
    const px = x(t);
    if (i === 0) {
      limitPath = `M${px} ${y(limit)}`;
      inFlightPath = `M${px} ${y(0)} L${px} ${y(inFlight)}`;
    } else {
      limitPath += ` H${px} V${y(limit)}`;
      inFlightPath += ` H${px} V${y(inFlight)}`;
    }
  });
  inFlightPath += ` V${y(0)} Z`;
  return { max, minutes: Math.max(1, Math.round(span / 60_000)), limitPath, inFlightPath, zeroY: Number(y(0)) };
}

/**
 * The chart.
 * @example
 * <ConcurrencyChart series={s} now={data.now} windowMs={data.windowMs} />
 */
export function ConcurrencyChart({ series, now, windowMs }: { series: ConcurrencySeriesView; now: number; windowMs: number }) {
  const g = chartGeometry(series, now, windowMs);
  return (
    <svg
      class="chart"
      viewBox={`0 0 ${W} ${H}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`limit of ${series.function} over the last ${g.minutes} minutes`}
    >
      <line class="axis" x1={LEFT} y1={g.zeroY} x2={W - 4} y2={g.zeroY} />
      <line class="axis" x1={LEFT} y1={TOP} x2={LEFT} y2={g.zeroY} />
      <text x={2} y={TOP + 8}>
        {String(g.max)}
      </text>
      <text x={2} y={g.zeroY}>
        0
      </text>
      <text x={LEFT} y={H - 2}>
        {`−${g.minutes} min`}
      </text>
      <text x={W - 30} y={H - 2}>
        now
      </text>
      <path class="inflight" d={g.inFlightPath} />
      <path class="limit" d={g.limitPath} />
    </svg>
  );
}
