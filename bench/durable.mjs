// (4) Sequential durable calls and inline steps, (5) fan-in, end to end:
// the scheduler and the SDK app run as separate processes (SQLite store,
// synchronous=NORMAL, signatures on), the driver dispatches one root call
// through the API and waits for its result with the scheduler's Wait RPC.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeArgs } from '@dispatch/core/protocol';
import { check, median, now, WARMUP_FANINS, WARMUP_STEPS } from './lib/common.mjs';
import { startApp, startInProcessStack, startScheduler, tempDir } from './lib/harness.mjs';

/** Starts a scheduler and an app; `fn(ctx)` runs with them; both are stopped after. */
export async function withStack({ cache = true, synchronous = 'NORMAL', signatures = true, inProcess = false, profileDir, db } = {}, fn) {
  const tmp = tempDir();
  let scheduler;
  let app;
  if (inProcess) ({ scheduler, app } = await startInProcessStack({ db: db ?? join(tmp.dir, 'scheduler.db'), synchronous, cache, profileDir }));
  else scheduler = await startScheduler({ db: db ?? join(tmp.dir, 'scheduler.db'), synchronous, profileDir });
  try {
    app ??= await startApp({ verificationKey: signatures ? scheduler.verificationKey : null, cache, profileDir });
    return await fn({ scheduler, app });
  } finally {
    await app?.stop();
    await scheduler.stop();
    tmp.cleanup();
  }
}

/** Dispatches fn(...args), waits for its result, checks it; returns the wall time in ms. */
export async function callAndWait({ scheduler, app }, fn, args, expected, timeoutMs = 600_000) {
  const start = now();
  const [id] = await scheduler.client.dispatch([{ function: fn, endpoint: app.url, input: encodeArgs(args) }]);
  const r = await scheduler.client.wait(id, { timeoutMs });
  const ms = now() - start;
  check(r.done, `${fn}(${args}) did not finish within ${timeoutMs / 1000} s (state ${r.state})`);
  check(r.status === 1, `${fn}(${args}) ended with status ${r.status}: ${JSON.stringify(r.raw.error ?? null)}`);
  const value = r.value;
  check(value === expected, `${fn}(${args}) returned ${value}, expected ${expected}`);
  return ms;
}

/**
 * Sequential durable calls: `loop(n)` awaits `inc` n times. Returns, per
 * size, the total ms of each run and (warm cache) the median gap between
 * consecutive awaits measured inside the function; with the warm cache,
 * `__cold` holds the same for the first 1,000 steps of the fresh stack,
 * which then runs {@link WARMUP_STEPS} steps in all before the sizes.
 */
export async function sequential({ cache = true, sizes = [100, 1000, 10_000], runs = 3, signatures = true, inProcess = false, repeatBelowMs = 30_000, warmupSteps = WARMUP_STEPS, log = () => {}, profileDir } = {}) {
  return withStack({ cache, profileDir, signatures, inProcess }, async (ctx) => {
    const label = `${inProcess ? 'in-process ' : ''}${cache ? 'warm' : 'replay'}${signatures ? '' : ' (unsigned)'}`;
    const measure = async (n) => {
      const before = (await ctx.app.stats({ resetGaps: true })).stats;
      const ms = await callAndWait(ctx, 'loop', [n], n);
      const after = await ctx.app.stats({ gaps: cache, resetGaps: true });
      const resumes = after.stats.warmResumes + after.stats.replays - before.warmResumes - before.replays;
      check(resumes === n, `loop(${n}) resumed ${resumes} times, expected ${n}`);
      if (cache) check(after.stats.replays === before.replays, `loop(${n}) was replayed with the warm cache on`);
      return { ms, resumes, gap: cache ? median(after.gaps) : Number.NaN };
    };
    const out = {};
    if (cache) {
      // The cold start, then warm up (JIT on both sides, connections, SQLite pages): WARMUP_STEPS steps in all.
      const cold = await measure(1000);
      out.__cold = { totalMs: [cold.ms], gapMedianMs: [cold.gap] };
      log(`  ${label}: the first 1,000 steps of a fresh stack ${cold.ms.toFixed(0)} ms, median gap ${(cold.gap * 1000).toFixed(0)} µs (cold start)`);
      if (warmupSteps > 1000) await callAndWait(ctx, 'loop', [warmupSteps - 1000], warmupSteps - 1000);
    } else {
      // Forced replay is quadratic: a short warm-up.
      await callAndWait(ctx, 'loop', [100], 100);
    }
    for (const n of sizes) {
      out[n] = { totalMs: [], gapMedianMs: [], resumes: [] };
      for (let r = 0; r < runs; r++) {
        const { ms, resumes, gap } = await measure(n);
        out[n].totalMs.push(ms);
        out[n].resumes.push(resumes);
        if (cache) out[n].gapMedianMs.push(gap);
        log(`  ${label} ${n} sequential calls: ${ms.toFixed(0)} ms (${((ms / n) * 1000).toFixed(0)} µs/step${cache ? `, median gap ${(gap * 1000).toFixed(0)} µs` : ''})`);
        if (ms > repeatBelowMs) break; // long runs are not repeated (see RESULTS.md)
      }
    }
    return out;
  });
}

/** Inline steps: `steps(n)` runs n `dispatch.step`s in one function; total ms per run. */
export async function inlineSteps({ sizes = [100, 1000, 10_000], runs = 3, log = () => {} } = {}) {
  return withStack({}, async (ctx) => {
    await callAndWait(ctx, 'steps', [2000], 2000);
    const out = {};
    for (const n of sizes) {
      out[n] = { totalMs: [] };
      for (let r = 0; r < runs; r++) {
        const ms = await callAndWait(ctx, 'steps', [n], n);
        out[n].totalMs.push(ms);
        log(`  ${n} inline steps: ${ms.toFixed(1)} ms (${((ms / n) * 1000).toFixed(1)} µs/step)`);
      }
    }
    return out;
  });
}

/**
 * Fan-in: `fanin(n)` gathers n `square` calls. Fresh processes for each run,
 * so the peak RSS read from /proc (VmHWM) belongs to this fan-in alone;
 * each run first warms up with {@link WARMUP_FANINS} fan-ins of 1,000 (the
 * first one's time is kept in `coldMs`, the cold start).
 */
export async function fanin({ sizes = [1000, 10_000], runs = 3, inProcess = false, warmupFanins = WARMUP_FANINS, log = () => {}, profileDir } = {}) {
  const out = {};
  for (const n of sizes) {
    out[n] = { ms: [], coldMs: [], parentResumes: [], schedulerPeakRss: [], appPeakRss: [] };
    for (let r = 0; r < runs; r++) {
      await withStack({ profileDir, inProcess }, async (ctx) => {
        // Warm up (JIT) with fan-ins of 1,000, the first of them the cold start, then measure.
        for (let w = 0; w < warmupFanins; w++) {
          const ms = await callAndWait(ctx, 'fanin', [1000], sumOfSquares(1000));
          if (w === 0) out[n].coldMs.push(ms);
        }
        const before = (await ctx.app.stats()).stats;
        const ms = await callAndWait(ctx, 'fanin', [n], sumOfSquares(n));
        const after = await ctx.app.stats();
        const parentResumes = after.stats.warmResumes + after.stats.replays - before.warmResumes - before.replays;
        check(after.stats.starts - before.starts === n + 1, `fanin(${n}) started ${after.stats.starts - before.starts} runs`);
        out[n].ms.push(ms);
        out[n].parentResumes.push(parentResumes);
        out[n].schedulerPeakRss.push(ctx.scheduler.memory().peak);
        out[n].appPeakRss.push(after.memory.peak);
        log(`  ${inProcess ? 'in-process ' : ''}fan-in of ${n}: ${ms.toFixed(0)} ms, ${parentResumes} parent resumes (the first fan-in of 1,000 of these processes: ${out[n].coldMs.at(-1).toFixed(0)} ms)`);
      });
    }
  }
  return out;
}

function sumOfSquares(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += i * i;
  return s;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const what = process.argv[2] ?? 'all';
  const runs = quick ? 1 : 3;
  const inProcess = process.argv.includes('--in-process');
  if (what === 'all' || what === 'sequential') {
    await sequential({ cache: true, inProcess, sizes: quick ? [100, 1000] : [100, 1000, 10_000], runs, log: console.log });
    await sequential({ cache: false, sizes: [100, 1000], runs, log: console.log });
  }
  if (what === 'all' || what === 'steps') await inlineSteps({ sizes: quick ? [100, 1000] : [100, 1000, 10_000], runs, log: console.log });
  if (what === 'all' || what === 'fanin') await fanin({ inProcess, sizes: quick ? [1000] : [1000, 10_000], runs, log: console.log });
}
