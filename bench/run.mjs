#!/usr/bin/env node
// Runs every benchmark of issue 7 and writes bench/RESULTS.md.
//
//   pnpm bench                              everything (builds first), 15–25 minutes
//   node bench/run.mjs --quick              CI smoke: small sizes, one run, no peers, < 2 minutes
//   node bench/run.mjs --quick --no-write   the same (quick mode never writes RESULTS.md unless --out is given)
//
// Options: --runs N (default 3), --only a,b (sections: http, throughput,
// postgres, limits, bullmq, dbos, restate, sequential, steps, fanin, fanin-in-process,
// pending, engine, profiles), --peers (run peers in quick mode too), --out FILE, --render
// (rewrite RESULTS.md from bench/results.json, e.g. after editing
// bench/profile-notes.md, without measuring again).
//
// Exit status: 1 if one of our measurements broke (an exception, a wrong
// result); peers that cannot run (no Redis, no PostgreSQL) are reported in
// RESULTS.md and on the console but do not fail the run. Timings never fail it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fanin, inlineSteps, sequential } from './durable.mjs';
import { engineBench } from './engine.mjs';
import { httpLimit } from './http-limit.mjs';
import { machine, THROUGHPUT_CALLS, WARMUP_CALLS, within } from './lib/common.mjs';
import { summarizeProfile } from './lib/profile.mjs';
import { loadPgStore, PG_URL, pgSetting, pgVersion } from './lib/pg.mjs';
import { pending } from './pending.mjs';
import { throughputRun } from './throughput.mjs';
import { renderResults } from './lib/report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const quick = flag('--quick');
// Quick figures never replace the real RESULTS.md: quick mode writes only with an explicit --out.
const write = !flag('--no-write') && (!quick || argv.includes('--out'));
const runs = Number(option('--runs', quick ? 1 : 3));
const only = option('--only', '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const peers = !quick || flag('--peers');
const out = option('--out', join(here, 'RESULTS.md'));
const wanted = (section) => only.length === 0 || only.includes(section);
const resultsJson = join(here, 'results.json');

// --render: rewrite RESULTS.md from the last run's results.json (after editing profile-notes.md).
if (flag('--render')) {
  const saved = JSON.parse(readFileSync(resultsJson, 'utf8'));
  writeFileSync(out, renderResults(saved, { notes: readNotes() }));
  console.log(`wrote ${out} from ${resultsJson}`);
  process.exit(0);
}

const DIST = ['packages/core/dist/esm/index.js', 'packages/core/dist/cjs/package.json', 'packages/scheduler/dist/cjs/cli/program.js', 'packages/scheduler/dist/cjs/package.json'];
const missingDist = () => DIST.filter((entry) => !existsSync(join(root, entry)));
if (!existsSync(join(root, 'packages/core/dist')) && !existsSync(join(root, 'packages/scheduler/dist'))) {
  console.error(`bench: ${missingDist().join(', ')} missing: build first (pnpm build), or run pnpm bench, which builds`);
  process.exit(1);
}

/** Waits (up to 2 minutes) while another process rebuilds the packages (dist/ is removed and rewritten). */
async function waitForDist() {
  const deadline = Date.now() + 120_000;
  let said = false;
  while (missingDist().length > 0) {
    if (Date.now() > deadline) throw new Error(`${missingDist().join(', ')} missing: build first (pnpm build)`);
    if (!said) console.log(`  waiting for a build in progress (${missingDist().join(', ')} missing)`);
    said = true;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (said) await new Promise((r) => setTimeout(r, 2000));
}

const log = (line) => console.log(line);
const R = {
  mode: quick ? 'quick' : 'full',
  runs,
  startedAt: new Date().toISOString(),
  machine: machine(),
  loadavg: { start: os.loadavg() },
  git: gitInfo(),
  versions: {},
  sections: {},
  errors: [],
  peerErrors: {},
};

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

function packageVersion(name, from = here) {
  try {
    const require = createRequire(join(from, 'package.json'));
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 6; i++, dir = dirname(dir)) {
      const p = join(dir, 'package.json');
      if (existsSync(p)) {
        const json = JSON.parse(readFileSync(p, 'utf8'));
        if (json.name === name) return json.version;
      }
    }
  } catch {
    // fall through
  }
  try {
    return JSON.parse(readFileSync(join(from, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'not installed';
  }
}

async function collectVersions() {
  const v = R.versions;
  v['@dispatch/core'] = packageVersion('@dispatch/core');
  v['@dispatch/scheduler'] = packageVersion('@dispatch/scheduler');
  const schedulerDir = join(root, 'packages', 'scheduler');
  v['better-sqlite3'] = packageVersion('better-sqlite3', schedulerDir);
  try {
    const Database = createRequire(join(schedulerDir, 'package.json'))('better-sqlite3');
    const db = new Database(':memory:');
    v.SQLite = db.prepare('SELECT sqlite_version() AS v').get().v;
    db.close();
  } catch (err) {
    v.SQLite = `unknown (${err.message})`;
  }
  v.protobufjs = packageVersion('protobufjs', join(root, 'packages', 'core'));
  v.pg = packageVersion('pg');
  for (const name of ['bullmq', 'ioredis', '@dbos-inc/dbos-sdk', '@restatedev/restate-sdk', '@restatedev/restate-server']) v[name] = packageVersion(name);
  try {
    v['PostgreSQL server'] = await pgVersion();
    v['PostgreSQL autovacuum'] = await pgSetting('autovacuum');
  } catch (err) {
    v['PostgreSQL server'] = `unreachable (${err.message})`;
  }
  try {
    const { default: IORedis } = await import('ioredis');
    const redis = new IORedis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    await redis.connect();
    const info = await redis.info('server');
    v['Redis server'] = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const persistence = await redis.info('persistence');
    const save = (await redis.config('GET', 'save'))[1];
    v['Redis persistence'] = `appendonly ${/aof_enabled:(\d)/.exec(persistence)?.[1] === '1' ? 'on' : 'off'}, RDB save points: ${save ? JSON.stringify(save) : 'none'}`;
    redis.disconnect();
  } catch (err) {
    v['Redis server'] = `unreachable (${err.message})`;
  }
}

/** Runs a section: ours fail the run, peers are recorded. */
async function section(name, { peer = false, timeoutMs }, fn) {
  if (!wanted(name)) return;
  log(`\n== ${name}`);
  const started = Date.now();
  try {
    await waitForDist();
    R.sections[name] = await within(timeoutMs, name, fn);
    R.sections[name].__seconds = (Date.now() - started) / 1000;
    log(`  (${name}: ${R.sections[name].__seconds.toFixed(0)} s)`);
  } catch (err) {
    const message = String(err?.stack ?? err);
    log(`${peer ? 'PEER FAILED' : 'FAILED'}: ${name}: ${message}`);
    if (peer) R.peerErrors[name] = message.split('\n')[0];
    else R.errors.push(`${name}: ${message}`);
  }
}

await collectVersions();
const n10k = quick ? 1000 : 10_000;

await section('engine', { timeoutMs: 300_000 }, () => engineBench({ quick, replayMax: quick ? 100 : 1000, log }));

await section('http', { timeoutMs: 300_000 }, () =>
  httpLimit({ concurrencies: quick ? [1, 16] : [1, 16, 64, 256], leanConcurrencies: [64], ms: quick ? 500 : 3000, runs, log }),
);

await section('throughput', { timeoutMs: 900_000 }, async () => {
  const configs = [
    { key: 'sqlite NORMAL', store: 'sqlite', synchronous: 'NORMAL' },
    { key: 'sqlite FULL', store: 'sqlite', synchronous: 'FULL' },
    { key: 'in-process, sqlite NORMAL', store: 'sqlite', synchronous: 'NORMAL', inProcess: true },
    ...(quick ? [] : [{ key: 'sqlite NORMAL, app not verifying signatures', store: 'sqlite', synchronous: 'NORMAL', signatures: false, diagnostic: true }]),
  ];
  // Runs interleaved (run 1 of each configuration, then run 2...) so that a change of load hits all alike.
  // Measured warm (WARMUP_CALLS, then THROUGHPUT_CALLS); the two targets' configurations are also measured as the
  // bench did until the fourteenth pass of issue 14 (10,000 calls after 1,000 on fresh processes): the cold start.
  const result = Object.fromEntries(configs.map((c) => [c.key, { runs: [], diagnostic: !!c.diagnostic }]));
  const coldOf = new Set(['sqlite NORMAL', 'in-process, sqlite NORMAL']);
  for (let r = 0; r < runs; r++) {
    for (const c of configs) {
      const x = await throughputRun({ ...c, calls: quick ? n10k : THROUGHPUT_CALLS, warmup: quick ? 200 : WARMUP_CALLS });
      result[c.key].runs.push(x);
      log(`  ${c.key}: ${Math.round(x.perSecond)} calls/s (${x.calls} calls in ${x.ms.toFixed(0)} ms, ${x.inFlightMedian} in flight)`);
      if (quick || !coldOf.has(c.key)) continue;
      const cold = await throughputRun({ ...c, calls: n10k, warmup: 1000 });
      (result[c.key].coldRuns ??= []).push(cold);
      log(`  ${c.key}, cold start: ${Math.round(cold.perSecond)} calls/s (${cold.calls} calls after 1,000, ${cold.inFlightMedian} in flight)`);
    }
  }
  return result;
});

await section('postgres', { timeoutMs: 900_000 }, async () => {
  let PgStore;
  try {
    PgStore = await loadPgStore();
  } catch (err) {
    return { skipped: err.message };
  }
  try {
    await pgVersion();
  } catch (err) {
    return { skipped: `PostgreSQL is unreachable at ${PG_URL} (${err.message}); set BENCH_PG_URL` };
  }
  const result = { store: PgStore.name };
  const key = (instances) => `postgres, ${instances} instance${instances > 1 ? 's' : ''}`;
  for (const instances of [1, 3]) result[key(instances)] = { runs: [] };
  for (let r = 0; r < runs; r++) {
    for (const instances of [1, 3]) {
      const x = await throughputRun({ store: 'postgres', instances, calls: n10k, warmup: quick ? 200 : 1000 });
      result[key(instances)].runs.push(x);
      log(`  ${key(instances)}: ${Math.round(x.perSecond)} calls/s (${x.calls} calls in ${x.ms.toFixed(0)} ms, ${x.inFlightMedian} in flight)`);
    }
  }
  // A backlog four times larger: every claim and completion leaves a dead row version behind, and the
  // server's autovacuum may be off (it is on this machine) or asleep; the store vacuums `calls` itself.
  const backlog = quick ? 4000 : 40_000;
  const big = `postgres, 1 instance, a backlog of ${backlog.toLocaleString('en-US')}`;
  result[big] = { runs: [] };
  for (let r = 0; r < runs; r++) {
    const x = await throughputRun({ store: 'postgres', instances: 1, calls: backlog, warmup: quick ? 200 : 1000 });
    result[big].runs.push(x);
    log(`  ${big}: ${Math.round(x.perSecond)} calls/s (${x.calls} calls in ${x.ms.toFixed(0)} ms, ${x.inFlightMedian} in flight)`);
  }
  return result;
});

// Declared limits that do not bind (issue 16): the same no-op calls with and
// without limits, interleaved on the same store kinds, in one run.
await section('limits', { timeoutMs: 1_800_000 }, async () => {
  const configs = [
    { key: 'sqlite NORMAL, no limits', store: 'sqlite', limited: false },
    { key: 'sqlite NORMAL, non-binding limits', store: 'sqlite', limited: true },
  ];
  let pgOk = true;
  try {
    await pgVersion();
  } catch {
    pgOk = false;
  }
  // Quick mode (the CI smoke test) checks the SQLite pair only, on few calls.
  if (pgOk && !quick) {
    configs.push({ key: 'postgres 1 instance, no limits', store: 'postgres', instances: 1, limited: false });
    configs.push({ key: 'postgres 1 instance, non-binding limits', store: 'postgres', instances: 1, limited: true });
  }
  // 3,000 calls a run (not 10,000): a ratio needs several interleaved runs more than long ones.
  const result = { __measuredAt: new Date().toISOString(), __calls: quick ? 500 : 3000, __runs: runs, ...Object.fromEntries(configs.map((c) => [c.key, { runs: [] }])) };
  for (let r = 0; r < runs; r++) {
    for (const c of configs) {
      const x = await throughputRun({ ...c, calls: quick ? 500 : 3000, warmup: quick ? 100 : 500 });
      result[c.key].runs.push(x);
      log(`  ${c.key}: ${Math.round(x.perSecond)} calls/s (${x.calls} calls in ${x.ms.toFixed(0)} ms)`);
    }
  }
  return result;
});

if (peers) {
  await section('bullmq', { peer: true, timeoutMs: 600_000 }, async () => {
    const { bullmqThroughput } = await import('./peers/bullmq.mjs');
    return bullmqThroughput({ jobs: quick ? n10k : THROUGHPUT_CALLS, warmup: quick ? 1000 : WARMUP_CALLS, runs, log });
  });
  await section('dbos', { peer: true, timeoutMs: 1_500_000 }, async () => {
    const { dbosThroughput, dbosSequential } = await import('./peers/dbos.mjs');
    const throughput = await dbosThroughput({ calls: n10k, runs, log });
    const seq = await dbosSequential({ sizes: quick ? [100] : [100, 1000, 10_000], faninSizes: quick ? [100] : [1000], runs, log });
    return { throughput, ...seq };
  });
  await section('restate', { peer: true, timeoutMs: 1_500_000 }, async () => {
    const { restateAll } = await import('./peers/restate.mjs');
    return restateAll({ sizes: quick ? [100] : [100, 1000, 10_000], faninSizes: quick ? [100] : [1000], invocations: n10k, runs, log });
  });
}

await section('sequential', { timeoutMs: 1_800_000 }, async () => {
  const warm = await sequential({ cache: true, sizes: quick ? [100, 500] : [100, 1000, 10_000], runs, log });
  // Forced replay is quadratic by design (each resume replays the whole journal): capped at 1,000 steps.
  const replay = await sequential({ cache: false, sizes: quick ? [100] : [100, 1000], runs, log });
  const unsigned = quick ? undefined : await sequential({ cache: true, signatures: false, sizes: [100, 1000], runs, log });
  // In-process mode: the scheduler in the app's process (dispatch run --in-process).
  const inProcess = await sequential({ cache: true, inProcess: true, sizes: quick ? [100, 1000] : [100, 1000, 10_000], runs, log });
  return { warm, replay, unsigned, inProcess };
});

await section('steps', { timeoutMs: 300_000 }, () => inlineSteps({ sizes: quick ? [100, 1000] : [100, 1000, 10_000], runs, log }));

await section('fanin', { timeoutMs: 900_000 }, () => fanin({ sizes: quick ? [1000] : [1000, 10_000], runs, log }));

await section('fanin-in-process', { timeoutMs: 900_000 }, () => fanin({ inProcess: true, sizes: quick ? [1000] : [1000, 10_000], runs, log }));

await section('pending', { timeoutMs: 600_000 }, () => pending({ calls: quick ? 5000 : 100_000, settleMs: quick ? 500 : 3000, log }));

if (!quick) {
  await section('profiles', { timeoutMs: 900_000 }, async () => {
    // Separate, profiled runs (profiling slows things down: these are not timed).
    const dir = mkdtempSync(join(tmpdir(), 'dispatch-bench-prof-'));
    try {
      const result = {};
      const summarize = (sub) => ({
        scheduler: summarizeProfile(join(dir, sub, 'scheduler.cpuprofile'), 12),
        app: summarizeProfile(join(dir, sub, 'app.cpuprofile'), 12),
      });
      log('  profiling throughput (SQLite NORMAL, 10,000 calls of warm-up, then 30,000)');
      await throughputRun({ calls: THROUGHPUT_CALLS, warmup: WARMUP_CALLS, profileDir: join(dir, 'throughput') });
      result.throughput = summarize('throughput');
      log('  profiling sequential calls (warm cache, 2,000 steps)');
      await sequential({ cache: true, sizes: [2000], runs: 1, profileDir: join(dir, 'sequential') });
      result.sequential = summarize('sequential');
      log('  profiling in-process throughput (SQLite NORMAL, 10,000 calls of warm-up, then 30,000)');
      await throughputRun({ calls: THROUGHPUT_CALLS, warmup: WARMUP_CALLS, inProcess: true, profileDir: join(dir, 'in-process') });
      result.inProcess = { scheduler: summarizeProfile(join(dir, 'in-process', 'app.cpuprofile'), 12), app: undefined };
      log('  profiling a fan-in of 10,000');
      await fanin({ sizes: [10_000], runs: 1, profileDir: join(dir, 'fanin') });
      result.fanin = summarize('fanin');
      return result;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

await sweepScratch();
R.loadavg.end = os.loadavg();
R.finishedAt = new Date().toISOString();

const markdown = renderResults(R, { notes: readNotes() });
if (write) {
  writeFileSync(out, markdown);
  if (!quick) writeFileSync(resultsJson, `${JSON.stringify(R, null, 1)}\n`);
  log(`\nwrote ${out}${quick ? '' : ` and ${resultsJson}`}`);
}
if (quick) log(`\n${markdown.split('\n## 1.')[0]}`);
const peerFailures = Object.keys(R.peerErrors);
if (peerFailures.length) log(`\npeers that could not run: ${peerFailures.map((p) => `${p} (${R.peerErrors[p]})`).join('; ')}`);
if (R.errors.length) {
  log(`\nbench FAILED: ${R.errors.length} measurement(s) broke:\n${R.errors.join('\n')}`);
  process.exit(1);
}
log(`\nbench OK (${R.mode} mode, ${((Date.parse(R.finishedAt) - Date.parse(R.startedAt)) / 1000).toFixed(0)} s)`);
process.exit(0);

function readNotes() {
  const p = join(here, 'profile-notes.md');
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}

/** Drops scratch schemas and databases this process may have left behind (a section that timed out). */
async function sweepScratch() {
  try {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      const tag = `%\\_${process.pid}\\_%`;
      const schemas = await c.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'dispatch_bench%' AND nspname LIKE $1", [tag]);
      for (const { nspname } of schemas.rows) await c.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
      const dbs = await c.query("SELECT datname FROM pg_database WHERE datname LIKE 'dispatch_bench%' AND datname LIKE $1", [tag]);
      for (const { datname } of dbs.rows) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    } finally {
      await c.end();
    }
  } catch {
    // no PostgreSQL: nothing to sweep
  }
}

