#!/usr/bin/env node
// Engine benchmark (no network, no scheduler): drives @dispatch/core's engine
// with protocol messages the way a scheduler would, and prints
//  - the per-step cost of a function making N sequential durable calls, with
//    the warm cache and with replay forced on every resume (N = 100, 1,000,
//    10,000; replay stops at 1,000 unless --full: it is quadratic by design);
//  - one cold resume by replay at each journal length (linear in the journal);
//  - a fan-in (gather) of N children: wall time and parent resumes.
// Needs the built packages: pnpm -r build. Usage: node bench/engine.mjs [--quick] [--full]
// bench/run.mjs imports engineBench() and puts its figures in RESULTS.md.
import { fileURLToPath } from 'node:url';
import { Dispatch } from '@dispatch/core';
import { encodeArgs, proto } from '@dispatch/core/protocol';

const quick = process.argv.includes('--quick');
const full = process.argv.includes('--full');
const silent = { warn() {}, error() {}, info() {} };

function app(cache) {
  const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent, cache: cache ? undefined : false });
  const inc = dispatch.function(async function inc(n) {
    return n + 1;
  });
  dispatch.function(async function loop(steps) {
    let n = 0;
    for (let i = 0; i < steps; i++) n = await inc(n);
    return n;
  });
  const square = dispatch.function(async function square(n) {
    return n * n;
  });
  dispatch.function(async function fanin(n) {
    const squares = await dispatch.gather(Array.from({ length: n }, (_, i) => square(i)));
    return squares.length;
  });
  return dispatch;
}

const wire = (msg, type) => type.decode(type.encode(msg));

// A minimal scheduler: children run at once; the parent is resumed with up to
// max_results results once min_results are in, like @dispatch/scheduler, with
// state deltas and elided states.
async function drive(dispatch, fn, args) {
  const engine = dispatch.engine;
  // The stored state, as chunks (a real store appends deltas).
  let chunks = [];
  let stateLength = 0;
  const fullState = () => {
    const out = new Uint8Array(stateLength);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    chunks = [out];
    return out;
  };
  let resumes = 0;
  let req = { function: fn, input: encodeArgs(args), dispatchId: 'root', acceptsStateDelta: true };
  const ready = [];
  for (;;) {
    const res = wire(await engine.run(wire(req, proto.RunRequest)), proto.RunResponse);
    if (res.stateRequired) {
      req = { ...req, pollResult: { ...req.pollResult, stateElided: false, typedCoroutineState: { typeUrl: proto.Journal.typeUrl, value: fullState() } } };
      continue;
    }
    if (res.exit) return { resumes, status: res.status };
    const poll = res.poll;
    const value = poll.typedCoroutineState.value;
    if (!poll.stateIsDelta) {
      chunks = [];
      stateLength = 0;
    }
    chunks.push(value);
    stateLength += value.length;
    for (const call of poll.calls) {
      const child = wire(await engine.run({ function: call.function, input: call.input, dispatchId: `c${call.correlationId}` }), proto.RunResponse);
      ready.push({ correlationId: call.correlationId, output: child.exit.result.output, error: child.exit.result.error });
    }
    const take = ready.splice(0, Math.min(poll.maxResults, ready.length));
    resumes++;
    req = { function: fn, dispatchId: 'root', acceptsStateDelta: true, pollResult: { stateElided: true, stateLength, results: take } };
  }
}

async function sequential(cache, steps) {
  const dispatch = app(cache);
  const start = process.hrtime.bigint();
  const r = await drive(dispatch, 'loop', [steps]);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 1) throw new Error(`loop ended with status ${r.status}`);
  return { ms, perStep: ms / steps };
}

async function fanin(n) {
  const dispatch = app(true);
  const start = process.hrtime.bigint();
  const r = await drive(dispatch, 'fanin', [n]);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 1) throw new Error(`fanin ended with status ${r.status}`);
  return { ms, resumes: r.resumes };
}

// One resume by replay of a journal of `steps` calls: run warm to the last
// step, then drop the warm cache and resume once from the full state. The
// cost of a replayed resume should grow linearly with the journal.
async function oneReplay(steps) {
  const engine = app(true).engine;
  let req = { function: 'loop', input: encodeArgs([steps]), dispatchId: 'root' };
  for (let i = 0; ; i++) {
    const res = wire(await engine.run(wire(req, proto.RunRequest)), proto.RunResponse);
    const call = res.poll.calls[0];
    const child = wire(await engine.run({ function: call.function, input: call.input, dispatchId: `c${i}` }), proto.RunResponse);
    req = {
      function: 'loop',
      dispatchId: 'root',
      pollResult: { typedCoroutineState: res.poll.typedCoroutineState, results: [{ correlationId: call.correlationId, output: child.exit.result.output }] },
    };
    if (i === steps - 1) break;
  }
  engine.clearCache();
  const start = process.hrtime.bigint();
  const last = wire(await engine.run(wire(req, proto.RunRequest)), proto.RunResponse);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (last.status !== 1 || engine.stats.replays !== 1) throw new Error('the last resume did not replay to completion');
  return ms;
}

/**
 * The engine-only measurements. Returns
 * { sequential: { warm: { [n]: ms }, replay: { [n]: ms } }, fanin: { [n]: { ms, resumes } } }.
 */
export async function engineBench({ quick = false, full = false, replayMax = full ? Number.POSITIVE_INFINITY : 1000, log = () => {} } = {}) {
  const sizes = quick ? [100, 1000] : [100, 1000, 10_000];
  // Warm up the JIT so the smallest size is not measured cold.
  await sequential(true, 2000);
  await sequential(false, 200);
  const out = { sequential: { warm: {}, replay: {} }, fanin: {} };
  log('sequential durable calls (engine only, no network):');
  for (const cache of [true, false]) {
    let previous;
    for (const steps of sizes) {
      if (!cache && steps > replayMax) {
        log(`  ${'replay'.padEnd(6)} ${String(steps).padStart(6)} steps: skipped (quadratic; --full to run)`);
        continue;
      }
      const { ms, perStep } = await sequential(cache, steps);
      out.sequential[cache ? 'warm' : 'replay'][steps] = ms;
      const ratio = previous ? ` (x${(ms / previous).toFixed(1)} for x10 steps)` : '';
      log(`  ${(cache ? 'warm' : 'replay').padEnd(6)} ${String(steps).padStart(6)} steps: ${ms.toFixed(1)} ms total, ${(perStep * 1000).toFixed(1)} us/step${ratio}`);
      previous = ms;
    }
  }
  out.replayResume = {};
  log('one resume by replay (cold, no warm cache), by journal length:');
  for (const steps of sizes) {
    const ms = await oneReplay(steps);
    out.replayResume[steps] = ms;
    log(`  ${String(steps).padStart(6)} journaled calls: ${ms.toFixed(1)} ms for the resume, ${((ms / steps) * 1000).toFixed(1)} us per journaled call`);
  }
  log('fan-in (gather):');
  for (const n of quick ? [1000] : [1000, 10_000]) {
    const { ms, resumes } = await fanin(n);
    out.fanin[n] = { ms, resumes };
    log(`  ${String(n).padStart(6)} children: ${ms.toFixed(1)} ms, parent resumed ${resumes} times`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await engineBench({ quick, full, log: console.log });
