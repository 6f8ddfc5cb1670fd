import { describe, expect, it } from 'vitest';
import type { AttemptView, ConcurrencySeriesView } from '../../api-types.js';
import { attemptBars } from './attempt-timeline.js';
import { chartGeometry } from './concurrency-chart.js';

const attempt = (number: number, startedAt: number, durationMs: number, outcome: string, statusName: string): AttemptView => ({
  number,
  startedAt,
  durationMs,
  status: 0,
  statusName,
  outcome,
  label: `attempt ${number}`,
  resume: false,
  error: null,
});

describe('the attempts timeline', () => {
  it('places each attempt at its start, as wide as it lasted (at least 2.5 %), coloured by outcome', () => {
    const bars = attemptBars(
      {
        createdAt: 1_000,
        finishedAt: 2_000,
        attemptHistory: [
          attempt(1, 1_100, 200, 'retry', 'TEMPORARY_ERROR'),
          attempt(2, 1_500, 100, 'suspend', 'OK'),
          attempt(3, 1_990, 5, 'exit', 'OK'),
          attempt(4, 1_995, 5, 'exit', 'PERMANENT_ERROR'),
        ],
      },
      9_999,
    );
    expect(bars.map(({ tone, left, width }) => [tone, left, width])).toEqual([
      ['retry', 10, 20],
      ['suspend', 50, 10],
      ['ok', 97.5, 2.5], // kept inside the line
      ['fail', 97.5, 2.5],
    ]);
  });

  it('reaches to now while the call runs, and past its end for an attempt that outlasted it', () => {
    const [running] = attemptBars({ createdAt: 0, finishedAt: null, attemptHistory: [attempt(1, 0, 100, 'retry', 'TIMEOUT')] }, 400);
    expect(running?.width).toBe(25);
    const [late] = attemptBars({ createdAt: 0, finishedAt: 100, attemptHistory: [attempt(1, 100, 100, 'exit', 'OK')] }, 100);
    expect([late?.left, late?.width]).toEqual([50, 50]);
  });
});

describe('the concurrency chart', () => {
  const series = (samples: ConcurrencySeriesView['samples']): ConcurrencySeriesView => ({
    endpoint: 'http://127.0.0.1:9',
    function: 'charge',
    limit: 4.9,
    inFlight: 2,
    min: 1,
    max: 1000,
    samples,
  });

  it('draws the limit as a step line and the runs in flight as a step area, up to now', () => {
    const g = chartGeometry(series([[60_000, 4, 1]]), 120_000, 900_000);
    // One minute shown (x from 30 to 356); the top is 4 × 1.15 rounded up (y from 104 at 0 to 6 at 5).
    expect(g).toEqual({
      max: 5,
      minutes: 1,
      zeroY: 104,
      limitPath: 'M30.0 25.6 H356.0 V25.6',
      inFlightPath: 'M30.0 104.0 L30.0 84.4 H356.0 V64.8 V104.0 Z',
    });
  });

  it('shows at least a minute and at most the window, and the current values within its height', () => {
    // No sample yet: the current limit (4) and runs in flight (2) alone, at now.
    expect(chartGeometry(series([]), 600_000, 900_000)).toMatchObject({ max: 5, minutes: 1, limitPath: 'M356.0 25.6' });
    expect(chartGeometry({ ...series([[590_000, 2, 1]]), inFlight: 9 }, 600_000, 900_000).max).toBe(11);
    expect(chartGeometry(series([[0, 4, 0]]), 3_600_000, 900_000).minutes).toBe(15);
  });
});
