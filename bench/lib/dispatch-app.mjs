// The SDK app of the benchmarks, run as its own process (so its memory and
// CPU are measured apart from the scheduler's). Started by harness.mjs with an
// IPC channel; it serves the Dispatch endpoint with node:http on a free port
// and answers { cmd: 'stats' } with its engine counters and memory.
//
// Environment: BENCH_VERIFICATION_KEY (signatures are verified when set),
// BENCH_CACHE=off (forced replay: new Dispatch({ cache: false })).
import { Dispatch } from '@dispatch/core';
import { memoryOf } from './common.mjs';

// In-process mode (BENCH_IN_PROCESS=1): started with `node --import @dispatch/scheduler/in-process`, whose
// scheduler set DISPATCH_IN_PROCESS=1 and the DISPATCH_* variables; the instance reads them like any app.
const inProcess = process.env.BENCH_IN_PROCESS === '1';
const dispatch = new Dispatch({
  env: inProcess ? process.env : {},
  ...(inProcess ? {} : { endpointAddr: '127.0.0.1:0', verificationKey: process.env.BENCH_VERIFICATION_KEY || null }),
  cache: process.env.BENCH_CACHE === 'off' ? false : undefined,
  logger: { warn() {}, info() {}, error: (...a) => console.error(...a) },
});

// Wall-clock gaps between consecutive awaited calls of `loop`, measured
// inside the function: with the warm cache the function never re-runs, so
// each gap is one durable call end to end (Poll → scheduler → child run →
// result stored → parent resumed). Replays re-run the code, so gaps are only
// recorded when the cache is on.
let stepGaps = [];
const recordGaps = process.env.BENCH_CACHE !== 'off';

dispatch.function(function noop() {});
// The same no-op with declared limits that never bind (the limits benchmark of issue 16).
dispatch.function({ name: 'noopLimited', concurrency: 100_000, rateLimit: '1000000/s' }, function noopLimited() {});

const inc = dispatch.function(function inc(n) {
  return n + 1;
});

dispatch.function(async function loop(steps) {
  let n = 0;
  let last = performance.now();
  for (let i = 0; i < steps; i++) {
    n = await inc(n);
    if (recordGaps) {
      const t = performance.now();
      stepGaps.push(t - last);
      last = t;
    }
  }
  return n;
});

dispatch.function(async function steps(count) {
  let n = 0;
  for (let i = 0; i < count; i++) n = await dispatch.step('inc', () => n + 1);
  return n;
});

const square = dispatch.function(function square(n) {
  return n * n;
});

dispatch.function(async function fanin(count) {
  const squares = await dispatch.gather(Array.from({ length: count }, (_, i) => square(i)));
  let sum = 0;
  for (const s of squares) sum += s;
  return sum;
});

const server = inProcess ? await dispatch.serve() : await dispatch.serve({ host: '127.0.0.1', port: 0 });

process.on('message', async (msg) => {
  if (msg?.cmd === 'stats') {
    const gaps = stepGaps;
    if (msg.resetGaps) stepGaps = [];
    process.send({
      cmd: 'stats',
      stats: { ...dispatch.engine.stats },
      cached: dispatch.engine.cachedExecutions,
      memory: memoryOf(process.pid),
      gaps: msg.gaps ? gaps : undefined,
    });
  } else if (msg?.cmd === 'exit') {
    await server.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send({
  cmd: 'ready',
  url: server.url,
  ...(inProcess ? { api: { url: process.env.DISPATCH_API_URL, apiKey: process.env.DISPATCH_API_KEY, verificationKey: process.env.DISPATCH_VERIFICATION_KEY } } : {}),
});
