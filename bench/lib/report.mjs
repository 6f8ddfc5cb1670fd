// Renders the results gathered by run.mjs as bench/RESULTS.md.
import { fmt, mb, median, WARMUP_FANINS, WARMUP_STEPS } from './common.mjs';

const med = (xs) => median(xs ?? []);
/** The sizes of a sequential section's data (its `__cold` entry, the cold start, is not one). */
const sizesOf = (data) =>
  Object.keys(data ?? {})
    .filter((k) => !k.startsWith('__'))
    .map(Number)
    .sort((a, b) => a - b);
const ms = (x) => (Number.isFinite(x) ? `${fmt(x)} ms` : 'n/a');
const per = (totalMs, n) => totalMs / n;
const status = (ok) => (ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**');

/** The raw HTTP limit: the best median at the scheduler's concurrencies (16 in flight and up). */
export function rawLimit(http) {
  if (!http) return { rps: Number.NaN, at: undefined };
  let best = { rps: Number.NaN, at: undefined, client: 'node:http' };
  for (const [c, values] of Object.entries(http)) {
    if (c.startsWith('__') || !Array.isArray(values) || Number(c) < 16) continue;
    const m = med(values);
    if (!(m <= best.rps)) best = { rps: m, at: Number(c), client: 'node:http' };
  }
  // The lean client (raw sockets) measures the server's limit, not the client's: the higher one counts.
  for (const [c, values] of Object.entries(http.lean ?? {})) {
    const m = med(values);
    if (!(m <= best.rps)) best = { rps: m, at: Number(c), client: 'lean' };
  }
  return best;
}

/** The best median of the node:http client alone (16 in flight and up). */
function nodeHttpLimit(http) {
  return rawLimit(http && Object.fromEntries(Object.entries(http).filter(([k]) => k !== 'lean')));
}

/** Figures before issue 14 (main at c129d7f, from the issue and the previous RESULTS.md), for the before/after table. */
export const BEFORE_ISSUE_14 = {
  httpThroughput: 2956,
  bullmq: 9633,
  awaitedMs: 2.08,
  fanin1k: 0.85,
  fanin10k: 4.2,
  pg1: 1591,
  pg3: 1182,
  rawNodeHttp: 12_900,
  rawLean: 35_500,
};

function issue14(R, L) {
  const S = R.sections;
  const push = (...xs) => L.push(...xs);
  const limit = rawLimit(S.http);
  const tp = throughputRows(S.throughput);
  const http = tp.find((r) => r.key === 'sqlite NORMAL');
  const ip = tp.find((r) => r.key === 'in-process, sqlite NORMAL');
  const pg = throughputRows(S.postgres);
  const pg1 = pg.find((r) => r.key === 'postgres, 1 instance');
  const pg3 = pg.find((r) => r.key === 'postgres, 3 instances');
  const bull = bestBullmq(S.bullmq);
  const gapAt = (data, n) => (data?.[n] ? med(data[n].gapMedianMs) : Number.NaN);
  const meanAt = (data, n) => (data?.[n] ? med(data[n].totalMs) / n : Number.NaN);
  const faninAt = (data, n) => (data?.[n] ? med(data[n].ms) / 1000 : Number.NaN);
  // The cold start (bench/durable.mjs): shown beside the warm figures the targets take.
  const coldNote = (data) => `; cold start (the first 1,000 steps of fresh processes): ${fmt(med(data.__cold.gapMedianMs), 3)} ms`;
  const coldFanin = (data) => (data?.[1000]?.coldMs?.length ? `; cold start (the first fan-in of 1,000 of fresh processes): ${fmt(med(data[1000].coldMs) / 1000, 3)} s` : '');
  const rows = [];
  const row = (target, measured, ratio, ok) => rows.push([target, measured, ratio, status(ok)]);
  const known = (x) => Number.isFinite(x);
  // The cold start (fresh processes, 10,000 calls after 1,000): shown beside the warm figures the targets take.
  const coldTp = (r) => (r?.cold ? `; cold start (${fmt(r.cold.calls, 0)} calls after 1,000 of fresh processes): ${fmt(r.cold.perSecond, 0)} calls/s` : '');
  if (ip) row('In-process: ≥ 20,000 no-op calls/s (SQLite NORMAL)', `${fmt(ip.perSecond, 0)} calls/s${coldTp(ip)}`, `${fmt(ip.perSecond / 20_000, 2)} of the target`, ip.perSecond >= 20_000);
  if (ip) {
    row(
      'In-process: ≥ 2× BullMQ in the same run',
      known(bull.perSecond) ? `${fmt(ip.perSecond, 0)} vs ${fmt(bull.perSecond, 0)} jobs/s` : `BullMQ not measured${R.peerErrors.bullmq ? `: ${R.peerErrors.bullmq}` : ' (quick mode: add --peers)'}`,
      known(bull.perSecond) ? `${fmt(ip.perSecond / bull.perSecond, 2)}× (target ≥ 2)` : '—',
      known(bull.perSecond) ? ip.perSecond >= 2 * bull.perSecond : undefined,
    );
  }
  const ipSeq = S.sequential?.inProcess;
  for (const n of [1000, 10_000]) {
    if (!ipSeq?.[n]) continue;
    const g = gapAt(ipSeq, n);
    row(
      `In-process: ≤ 0.1 ms per awaited durable call at ${n.toLocaleString('en-US')} steps`,
      `${fmt(g, 3)} ms (median gap), ${fmt(meanAt(ipSeq, n), 3)} ms mean${n === 1000 && ipSeq.__cold ? coldNote(ipSeq) : ''}`,
      `${fmt(g / 0.1, 2)}× the target`,
      g <= 0.1,
    );
  }
  for (const [n, bound] of [
    [1000, 0.1],
    [10_000, 1],
  ]) {
    const t = faninAt(S['fanin-in-process'], n);
    if (known(t)) row(`In-process: fan-in of ${n.toLocaleString('en-US')} ≤ ${bound} s`, `${fmt(t, 3)} s${n === 1000 ? coldFanin(S['fanin-in-process']) : ''}`, `${fmt(t / bound, 2)}× the bound`, t <= bound);
  }
  if (http && known(limit.rps)) {
    row(
      'HTTP: ≥ 0.5 of the raw HTTP limit (the higher of the two clients)',
      `${fmt(http.perSecond, 0)} calls/s vs ${fmt(limit.rps, 0)} round trips/s (${limit.client === 'lean' ? 'lean client' : 'node:http client'}, ${limit.at} in flight)`,
      `${fmt(http.perSecond / limit.rps, 2)} (target ≥ 0.50)`,
      http.perSecond / limit.rps >= 0.5,
    );
  }
  const warm = S.sequential?.warm;
  if (warm) {
    const sizes = sizesOf(warm);
    const worst = Math.max(...sizes.map((n) => gapAt(warm, n)));
    row(
      'HTTP: ≤ 0.8 ms per awaited call',
      sizes.map((n) => `${fmt(gapAt(warm, n), 2)} ms at ${n.toLocaleString('en-US')}`).join(', ') + (warm.__cold ? coldNote(warm) : ''),
      `${fmt(worst / 0.8, 2)}× the target (worst size)`,
      worst <= 0.8,
    );
  }
  const f1k = faninAt(S.fanin, 1000);
  if (known(f1k)) row('HTTP: fan-in of 1,000 ≤ 0.3 s', `${fmt(f1k, 3)} s${coldFanin(S.fanin)}`, `${fmt(f1k / 0.3, 2)}× the bound`, f1k <= 0.3);
  if (pg1) row('PostgreSQL: one instance ≥ 3,000 calls/s', `${fmt(pg1.perSecond, 0)} calls/s`, `${fmt(pg1.perSecond / 3000, 2)} of the target`, pg1.perSecond >= 3000);
  if (pg1 && pg3) row('PostgreSQL: three instances ≥ one', `${fmt(pg3.perSecond, 0)} vs ${fmt(pg1.perSecond, 0)} calls/s`, `${fmt(pg3.perSecond / pg1.perSecond, 2)} (target ≥ 1)`, pg3.perSecond >= pg1.perSecond);
  push('## Targets of issue 14', '');
  push('| target | measured | ratio | status |', '|---|---|---|---|');
  for (const r of rows) push(`| ${r.join(' | ')} |`);
  push('');
  const B = BEFORE_ISSUE_14;
  push('## Before / after issue 14', '');
  push(
    '*Before*: main at `c129d7f` (every call over HTTP, signed), figures from the issue and the previous full run of this bench on this machine. *After*: this run. The machine is shared; compare ratios measured in the same run rather than absolute figures across runs.',
    '',
  );
  push('| what | before | after |', '|---|---|---|');
  const cell = (x, digits = 0, unit = '') => (known(x) ? `${fmt(x, digits)}${unit}` : 'not measured');
  push(`| no-op calls/s, HTTP (SQLite NORMAL) | ${fmt(B.httpThroughput, 0)} | ${cell(http?.perSecond)} |`);
  push(`| no-op calls/s, in-process (SQLite NORMAL) | — (no in-process mode) | ${cell(ip?.perSecond)} |`);
  push(`| BullMQ jobs/s (same run) | ${fmt(B.bullmq, 0)} | ${cell(bull.perSecond)} |`);
  push(`| raw HTTP round trips/s, node:http client / lean client | ${fmt(B.rawNodeHttp, 0)} / ${fmt(B.rawLean, 0)} (the lean one measured outside the bench) | ${cell(nodeHttpLimit(S.http).rps)} / ${cell(med(Object.values(S.http?.lean ?? {})[0]))} |`);
  // Quick mode measures smaller sizes: the largest one up to 1,000 stands in, named.
  const upTo1k = (data) => {
    const n = Math.max(...Object.keys(data ?? {}).map(Number).filter((x) => x <= 1000));
    return Number.isFinite(n) ? `${cell(gapAt(data, n), 3, ' ms')}${n === 1000 ? '' : ` (at ${n})`}` : 'not measured';
  };
  push(`| awaited call, HTTP, median gap at 1,000 | ${fmt(B.awaitedMs, 2)} ms | ${upTo1k(warm)} |`);
  push(`| awaited call, in-process, median gap at 1,000 / 10,000 | — | ${upTo1k(ipSeq)} / ${cell(gapAt(ipSeq, 10_000), 3, ' ms')} |`);
  push(`| fan-in 1,000 / 10,000, HTTP | ${fmt(B.fanin1k, 2)} s / ${fmt(B.fanin10k, 1)} s | ${cell(f1k, 3, ' s')} / ${cell(faninAt(S.fanin, 10_000), 2, ' s')} |`);
  push(`| fan-in 1,000 / 10,000, in-process | — | ${cell(faninAt(S['fanin-in-process'], 1000), 3, ' s')} / ${cell(faninAt(S['fanin-in-process'], 10_000), 2, ' s')} |`);
  push(`| PostgreSQL calls/s, 1 / 3 instances | ${fmt(B.pg1, 0)} / ${fmt(B.pg3, 0)} | ${cell(pg1?.perSecond)} / ${cell(pg3?.perSecond)} |`);
  push('');
}

function throughputRows(section) {
  if (!section) return [];
  return Object.entries(section)
    .filter(([k, v]) => !k.startsWith('__') && v && Array.isArray(v.runs))
    .map(([key, v]) => ({
      key,
      diagnostic: v.diagnostic,
      perSecond: med(v.runs.map((r) => r.perSecond)),
      all: v.runs.map((r) => r.perSecond),
      inFlight: med(v.runs.map((r) => r.inFlightMedian)),
      schedulerPeak: med(v.runs.map((r) => r.schedulerPeakRss)),
      appPeak: med(v.runs.map((r) => r.appPeakRss)),
      dispatchPerSecond: med(v.runs.map((r) => r.dispatchPerSecond)),
      calls: v.runs[0]?.calls,
      warmup: v.runs[0]?.warmup,
      cold: v.coldRuns?.length ? { perSecond: med(v.coldRuns.map((r) => r.perSecond)), all: v.coldRuns.map((r) => r.perSecond), calls: v.coldRuns[0].calls, inFlight: med(v.coldRuns.map((r) => r.inFlightMedian)) } : null,
    }));
}

/** How the throughput runs were measured (calls and warm-up, from the runs themselves). */
function tpMethod(tp) {
  const r = tp.find((x) => x.calls);
  if (!r) return '';
  const warm = r.warmup ?? 1000;
  return `${fmt(r.calls, 0)} calls per run after a ${fmt(warm, 0)}-call warm-up on the same processes${warm >= 10_000 ? ' (V8 and the adaptive concurrency limit warm; the cold start is below the table)' : ''}.`;
}

/** BullMQ's jobs and warm-up per run, when the section says (it does since the fourteenth pass of issue 14). */
function bullMethod(bullmq) {
  return bullmq?.jobs ? `${fmt(bullmq.jobs, 0)} jobs per run after ${fmt(bullmq.warmup, 0)} on the same worker (as ours), ` : '';
}

function bestBullmq(bullmq) {
  if (!bullmq?.perSecond) return { perSecond: Number.NaN };
  let best = { perSecond: Number.NaN };
  for (const [c, values] of Object.entries(bullmq.perSecond)) {
    const m = med(values);
    if (!(m <= best.perSecond)) best = { perSecond: m, concurrency: Number(c) };
  }
  return best;
}

function seqRow(label, data, { gaps = false } = {}) {
  if (!data) return null;
  const sizes = sizesOf(data);
  const cells = {};
  for (const n of sizes) {
    const total = med(data[n].totalMs);
    const gap = gaps ? med(data[n].gapMedianMs) : Number.NaN;
    cells[n] = { total, perStep: per(total, n), gap, runs: data[n].totalMs.length };
  }
  return { label, sizes, cells };
}

function renderSeqTable(rows) {
  const sizes = [100, 1000, 10_000];
  const lines = [
    '| what | per step at 100 | per step at 1,000 | per step at 10,000 | total 100 → 1,000 → 10,000 | ×(1,000/100) | ×(10,000/1,000) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const row of rows.filter(Boolean)) {
    const cell = (n) => {
      const c = row.cells[n];
      if (!c) return '—';
      const main = Number.isFinite(c.gap) ? `${fmt(c.gap)} ms (median gap); ${fmt(c.perStep)} ms mean` : `${fmt(c.perStep)} ms`;
      return `${main}${c.runs < 2 ? ' (1 run)' : ''}`;
    };
    const totals = sizes.map((n) => (row.cells[n] ? fmt(row.cells[n].total, 0) : '—')).join(' → ');
    const ratio = (a, b) => (row.cells[a] && row.cells[b] ? `×${fmt(row.cells[b].total / row.cells[a].total, 1)}` : '—');
    lines.push(`| ${row.label} | ${cell(100)} | ${cell(1000)} | ${cell(10_000)} | ${totals} ms | ${ratio(100, 1000)} | ${ratio(1000, 10_000)} |`);
  }
  return lines.join('\n');
}

function profileTable(summary, title) {
  if (!summary) return '';
  const lines = [`**${title}** — ${fmt(summary.busyMs, 0)} ms busy of ${fmt(summary.totalMs, 0)} ms profiled.`, ''];
  lines.push('| self time | function | where |', '|---|---|---|');
  for (const f of summary.functions.slice(0, 10)) lines.push(`| ${fmt(f.pct, 1)}% | \`${f.name}\` | ${f.where} |`);
  lines.push('', '| self time | module |', '|---|---|');
  for (const m of summary.modules.slice(0, 8)) lines.push(`| ${fmt(m.pct, 1)}% | ${m.module} |`);
  const hot = (summary.lines ?? []).slice(0, 6);
  if (hot.length) {
    lines.push('', '| line ticks | hot line of our code | source |', '|---|---|---|');
    for (const l of hot) lines.push(`| ${fmt(l.pct, 1)}% | ${l.where} | \`${l.code.replace(/\|/g, '\\|')}\` |`);
  }
  const inclusive = (summary.inclusive ?? []).filter((f) => /@dispatch|better-sqlite3/.test(f.where)).slice(0, 10);
  if (inclusive.length) {
    lines.push('', '| inclusive (with callees) | function | where |', '|---|---|---|');
    for (const f of inclusive) lines.push(`| ${fmt(f.pct, 1)}% | \`${f.name}\` | ${f.where} |`);
  }
  return lines.join('\n');
}

export function renderResults(R, { notes = '' } = {}) {
  const S = R.sections;
  const L = [];
  const push = (...xs) => L.push(...xs);
  const limit = rawLimit(S.http);
  const tp = throughputRows(S.throughput);
  const pgRows = throughputRows(S.postgres);
  const normal = tp.find((r) => r.key === 'sqlite NORMAL');
  const bull = bestBullmq(S.bullmq);

  push('# Benchmark results', '');
  push(
    `Written by \`node bench/run.mjs${R.mode === 'quick' ? ' --quick' : ''}\` (\`pnpm bench\` builds first, then runs it) on ${R.finishedAt} — ${R.mode} mode, ` +
      `${R.runs} run${R.runs > 1 ? 's' : ''} per figure, **medians** shown. Commit \`${R.git.commit}\`${R.git.dirty ? ' (with uncommitted changes under packages/)' : ''}.`,
    '',
  );
  if (R.mode === 'quick') push('> Quick mode: small sizes and one run each, to check that nothing breaks. These figures are not the benchmark; run `pnpm bench`.', '');
  push(
    `> The machine is shared with other work (builds and tests of the other packages run on it): load average ${R.loadavg.start.map((x) => x.toFixed(2)).join(' / ')} at the start and ${R.loadavg.end.map((x) => x.toFixed(2)).join(' / ')} at the end (1, 5, 15 min, on ${R.machine.cores} cores). Figures are noisy (±30%); ratios measured in the same run are steadier than absolute numbers.`,
    '',
  );

  push('## Machine', '', '| | |', '|---|---|');
  push(`| CPU | ${R.machine.cpu} |`, `| cores | ${R.machine.cores} |`, `| memory | ${fmt(R.machine.memoryGiB, 1)} GiB |`);
  push(`| Node.js | ${R.machine.node} |`, `| OS | ${R.machine.os} |`, '');

  push('## Versions', '', '| component | version |', '|---|---|');
  for (const [k, v] of Object.entries(R.versions)) push(`| ${k} | ${v} |`);
  push('');

  issue14(R, L);

  // Targets.
  push('## Targets of issue 7', '');
  const rows = [];
  if (normal && Number.isFinite(limit.rps)) {
    const ratio = normal.perSecond / limit.rps;
    rows.push([
      'Throughput ≥ ½ the raw HTTP limit (SQLite NORMAL, signatures on)',
      `${fmt(normal.perSecond, 0)} calls/s vs ${fmt(limit.rps, 0)} round trips/s (raw, ${limit.at} in flight)`,
      `${fmt(ratio, 2)} (target ≥ 0.50)`,
      status(ratio >= 0.5),
    ]);
  }
  if (normal && Number.isFinite(bull.perSecond)) {
    const ratio = normal.perSecond / bull.perSecond;
    rows.push([
      'Throughput ahead of BullMQ',
      `${fmt(normal.perSecond, 0)} vs ${fmt(bull.perSecond, 0)} jobs/s (BullMQ, worker concurrency ${bull.concurrency})`,
      `${fmt(ratio, 2)} (target > 1)`,
      status(ratio > 1),
    ]);
  } else if (normal) {
    rows.push(['Throughput ahead of BullMQ', `BullMQ not measured${R.peerErrors.bullmq ? `: ${R.peerErrors.bullmq}` : ''}`, '—', status(undefined)]);
  }
  const warm = S.sequential?.warm;
  if (warm) {
    const sizes = sizesOf(warm);
    const gaps = sizes.map((n) => med(warm[n].gapMedianMs));
    const worst = Math.max(...gaps);
    const rtt1 = S.http?.[1] ? 1000 / med(S.http[1]) : Number.NaN;
    rows.push([
      '≤ 0.5 ms median per awaited durable call, warm cache',
      sizes.map((n, i) => `${fmt(gaps[i], 2)} ms at ${n.toLocaleString('en-US')}`).join(', ') +
        (Number.isFinite(rtt1) ? ` (each call is two HTTP round trips; one raw round trip at 1 in flight takes ${fmt(rtt1, 3)} ms here)` : ''),
      `${fmt(worst / 0.5, 1)}× the target (worst size)`,
      status(worst <= 0.5),
    ]);
    const first = sizes[0];
    const last = sizes[sizes.length - 1];
    const growth = per(med(warm[last].totalMs), last) / per(med(warm[first].totalMs), first);
    const tenfold = sizes
      .slice(1)
      .map((n, i) => `×${fmt(med(warm[n].totalMs) / med(warm[sizes[i]].totalMs), 1)} for ×${fmt(n / sizes[i], 0)} steps`)
      .join(', ');
    rows.push([
      `… flat from ${first.toLocaleString('en-US')} to ${last.toLocaleString('en-US')} steps (linear: ×10 total per ×10 steps)`,
      `total time ${tenfold}; mean per step at ${last.toLocaleString('en-US')} is ${fmt(growth, 2)}× that at ${first}`,
      `${fmt(growth, 2)} (flat: ≤ 1.25)`,
      status(growth <= 1.25),
    ]);
  }
  if (S.steps) {
    const sizes = Object.keys(S.steps).filter((k) => !k.startsWith('__')).map(Number).sort((a, b) => a - b);
    const last = sizes[sizes.length - 1];
    const p = per(med(S.steps[last].totalMs), last);
    rows.push(['Inline steps (`dispatch.step`) ≤ 0.2 ms', `${fmt(p, 3)} ms per step (${last.toLocaleString('en-US')} steps, end to end)`, `${fmt(p / 0.2, 2)}× the target`, status(p <= 0.2)]);
  }
  if (S.fanin) {
    for (const [n, bound] of [
      [1000, 300],
      [10_000, 5000],
    ]) {
      const f = S.fanin[n];
      if (!f) continue;
      const t = med(f.ms);
      const resumes = med(f.parentResumes);
      const ok = t <= bound && resumes <= Math.ceil(n / 100);
      rows.push([
        `Fan-in of ${n.toLocaleString('en-US')} within ${n === 1000 ? '0.3 s' : 'a few seconds (≤ 5 s)'}, no per-child parent resumes`,
        `${fmt(t / 1000, 2)} s, ${fmt(resumes, 0)} parent resumes`,
        `${fmt(t / bound, 2)}× the bound`,
        status(ok),
      ]);
    }
  }
  if (S.pending) {
    const rss = S.pending.rss;
    rows.push([
      `Scheduler RSS < 256 MB with ${S.pending.calls.toLocaleString('en-US')} pending calls`,
      `${fmt(mb(rss), 0)} MB (peak ${fmt(mb(S.pending.peak), 0)} MB)`,
      `${fmt(mb(rss) / 256, 2)} of the bound`,
      status(mb(rss) < 256 && mb(S.pending.peak) < 256),
    ]);
  }
  push('| target | measured | ratio | status |', '|---|---|---|---|');
  for (const r of rows) push(`| ${r.join(' | ')} |`);
  push('');

  // 1. Raw HTTP.
  push('## 1. The limit: raw HTTP round trips', '');
  push(
    'A trivial `node:http` keep-alive server (its own process) answering 64 bytes, and two clients sending 200-byte POSTs with a fixed number of requests in flight: the way the scheduler’s `EndpointClient` does (`http.request` on a keep-alive `Agent`, body read to the end), and a lean client on raw sockets. The limit used for ratios is the best median of either at 16 in flight or more.',
    '',
  );
  if (S.http) {
    push('| in flight | round trips/s (median) | runs |', '|---|---|---|');
    for (const [c, values] of Object.entries(S.http)) if (!c.startsWith('__') && Array.isArray(values)) push(`| ${c}, node:http client | ${fmt(med(values), 0)} | ${values.map((v) => fmt(v, 0)).join(', ')} |`);
    for (const [c, values] of Object.entries(S.http.lean ?? {})) push(`| ${c}, lean client (raw sockets) | ${fmt(med(values), 0)} | ${values.map((v) => fmt(v, 0)).join(', ')} |`);
    push('');
    push(
      'Why the two clients differ: Node’s `http.request` costs more CPU per request than the server spends answering it (a `ClientRequest`, header validation, the `Agent`’s queue, an `IncomingMessage` stream per response), so a node:http client saturates its core first and measures itself. The lean client (raw sockets, the request’s bytes built once, the answer’s end found from its `Content-Length`, one request in flight per connection, like autocannon) measures the server: that is the machine’s limit, and the ratios use it.',
      '',
    );
  }

  // 2. Throughput.
  push('## 2. Throughput: no-op calls end to end', '');
  push(
    `Calls dispatched in batches of 1,000 through the API, run by the scheduler (its own process, \`dispatch serve\`) through the Run endpoint of a real SDK app (its own process, \`@dispatch/core\` serving \`node:http\`), signed (Ed25519) and verified by the app, each result recorded in the store. The clock stops when the store counts every call as succeeded. ${R.mode === 'quick' ? '' : tpMethod(tp)}`,
    '',
  );
  const tpTable = (list) => {
    push('| store | calls/s (median) | fraction of raw HTTP | runs | in flight (median) | dispatch API, calls/s | scheduler peak RSS | app peak RSS |', '|---|---|---|---|---|---|---|---|');
    for (const r of list) {
      push(
        `| ${r.key}${r.diagnostic ? ' *(diagnostic)*' : ''} | ${fmt(r.perSecond, 0)} | ${fmt(r.perSecond / limit.rps, 2)} | ${r.all.map((v) => fmt(v, 0)).join(', ')} | ${fmt(r.inFlight, 0)} | ${fmt(r.dispatchPerSecond, 0)} | ${fmt(mb(r.schedulerPeak), 0)} MB | ${fmt(mb(r.appPeak), 0)} MB |`,
      );
    }
    push('');
  };
  if (tp.length) tpTable(tp);
  const colds = tp.filter((r) => r.cold);
  if (colds.length) {
    push(
      `Cold start (how the bench measured until the fourteenth pass of issue 14): ${colds.map((r) => `${r.key} ${fmt(r.cold.perSecond, 0)} calls/s (runs ${r.cold.all.map((v) => fmt(v, 0)).join(', ')}; ${fmt(r.cold.inFlight, 0)} in flight)`).join('; ')} — ${fmt(colds[0].cold.calls, 0)} calls after a 1,000-call warm-up of fresh processes, while the adaptive concurrency limit is still growing from its initial 16.`,
      '',
    );
  }
  if (pgRows.length) {
    push(
      'PostgreSQL (the machine’s server, a scratch schema per run, dropped after): one scheduler process, then three sharing the schema, batches spread over their APIs in turn, each instance warmed with 1,000 calls as the single one is; every process runs on the same two cores as PostgreSQL and the app. The last row dispatches four times as many calls at once, to one instance: each claim and completion leaves a dead row version that the store vacuums itself (whatever the server’s autovacuum, in Versions above).',
      '',
    );
    tpTable(pgRows);
  } else if (S.postgres?.skipped) {
    push(`PostgreSQL: not measured — ${S.postgres.skipped}.`, '');
  }

  // Declared limits that do not bind (issue 16).
  const limRows = throughputRows(S.limits);
  if (limRows.length) {
    push('### Declared limits, not binding', '');
    push(
      `The same no-op calls with and without declared limits (\`concurrency: 100000, rateLimit: '1000000/s'\`, carried on each call as the SDK does), ${fmt(S.limits.__calls ?? 3000, 0)} calls a run, ${S.limits.__runs ?? R.runs} runs of each, the configurations interleaved in one run${S.limits.__measuredAt ? ` (measured ${S.limits.__measuredAt})` : ''}: the cost of the limit bookkeeping at claim time (the locked \`function_limits\` row, the running count, the rate window). The target: under 5%; on a shared machine the noise between runs is larger than that, so compare the medians.`,
      '',
    );
    push('| configuration | calls/s (median) | all runs | vs. without limits |', '|---|---|---|---|');
    for (const r of limRows) {
      const base = limRows.find((x) => x.key === r.key.replace('non-binding limits', 'no limits'));
      const x = base && base !== r ? r.perSecond / base.perSecond : Number.NaN;
      const ratio = Number.isFinite(x) ? `${fmt(x, 3)} (${fmt(Math.abs(1 - x) * 100, 1)}% ${x < 1 ? 'slower' : 'faster'}; per run: ${r.all.map((v, i) => fmt(v / base.all[i], 2)).join(', ')})` : '—';
      push(`| ${r.key} | ${fmt(r.perSecond, 0)} | ${r.all.map((v) => fmt(v, 0)).join(', ')} | ${ratio} |`);
    }
    push('');
  }

  // 3. Peers.
  push('## 3. Peers: throughput of no-op jobs', '');
  const peerRows = [];
  if (S.bullmq) {
    for (const [c, values] of Object.entries(S.bullmq.perSecond)) {
      peerRows.push([`BullMQ ${R.versions.bullmq} on Redis ${S.bullmq.redisVersion}, worker concurrency ${c}`, med(values), values]);
    }
  }
  if (S.dbos?.throughput) peerRows.push([`DBOS ${R.versions['@dbos-inc/dbos-sdk']} on PostgreSQL (workflows started in-process, batches of 1,000)`, med(S.dbos.throughput.perSecond), S.dbos.throughput.perSecond]);
  if (S.restate?.throughput?.perSecond?.length) {
    peerRows.push([`Restate ${R.versions['@restatedev/restate-server']} (ingress request/response, 100 in flight)`, med(S.restate.throughput.perSecond), S.restate.throughput.perSecond]);
  }
  if (peerRows.length) {
    const ip = tp.find((r) => r.key === 'in-process, sqlite NORMAL');
    push('| system | jobs/s (median) | ours over HTTP (SQLite NORMAL) ÷ theirs | ours in-process ÷ theirs | runs |', '|---|---|---|---|---|');
    for (const [label, m, values] of peerRows) {
      push(`| ${label} | ${fmt(m, 0)} | ${normal ? fmt(normal.perSecond / m, 2) : 'n/a'} | ${ip ? fmt(ip.perSecond / m, 2) : 'n/a'} | ${values.map((v) => fmt(v, 0)).join(', ')} |`);
    }
    push('');
  }
  push(
    `BullMQ: ${bullMethod(S.bullmq)}jobs added with \`addBulk\` (1,000 per call) by the bench process, run by a \`Worker\` in its own process (ioredis 5, \`maxRetriesPerRequest: null\`), completion counted with \`getJobCounts\` like ours (results kept in Redis). Redis runs without persistence, our SQLite store fsyncs (FULL) or writes its WAL (NORMAL). DBOS: a library, its workflows run in the app process and checkpoint to PostgreSQL (its own scratch database, dropped after). Restate: the server binary from the npm package with the SDK endpoint as its own process, invocations through the ingress.`,
    '',
  );

  // 4. Sequential.
  push('## 4. Sequential durable calls and steps', '');
  push(
    'One function awaiting N calls of another function in turn, end to end through the scheduler (SQLite NORMAL, signatures on): each step is a Poll, a child call stored, run over HTTP, its result stored, and the parent resumed over HTTP. *Median gap* is measured inside the function between consecutive awaits (with the warm cache the function never re-runs, so each gap is one durable call); *mean* is the total wall time ÷ N. Forced replay (`new Dispatch({ cache: false })`) replays the whole journal on every resume, so it is quadratic by design: it stops at 1,000 steps. Runs longer than 30 s are not repeated (marked "1 run").',
    '',
  );
  if (S.sequential?.warm?.__cold) {
    push(
      `Warm-up: with the warm cache, each stack first runs ${WARMUP_STEPS.toLocaleString('en-US')} awaited steps, then the sizes, so each size measures the cost of a step and not V8 optimising the code (which takes the first few thousand steps of fresh processes); the first 1,000 of those steps are reported apart as the *cold start*. Until the thirteenth pass of issue 14 the warm-up was 500 steps, and the figures at 100 and 1,000 steps were taken while both processes were still being optimised.`,
      '',
    );
  }
  const seqRows = [
    seqRow('Dispatch, awaited calls, warm cache', S.sequential?.warm, { gaps: true }),
    seqRow('Dispatch in-process (`dispatch run --in-process`), awaited calls, warm cache', S.sequential?.inProcess, { gaps: true }),
    seqRow('Dispatch, awaited calls, the first 1,000 steps of fresh processes (cold start)', S.sequential?.warm?.__cold && { 1000: S.sequential.warm.__cold }, { gaps: true }),
    seqRow('Dispatch in-process, awaited calls, the first 1,000 steps of a fresh process (cold start)', S.sequential?.inProcess?.__cold && { 1000: S.sequential.inProcess.__cold }, { gaps: true }),
    seqRow('Dispatch, awaited calls, forced replay (capped at 1,000)', S.sequential?.replay),
    seqRow('Dispatch, awaited calls, warm cache, app not verifying signatures *(diagnostic)*', S.sequential?.unsigned, { gaps: true }),
    seqRow('Dispatch, inline steps (`dispatch.step`)', S.steps && Object.fromEntries(Object.entries(S.steps).filter(([k]) => !k.startsWith('__')))),
    seqRow('DBOS, inline steps (`DBOS.runStep`)', S.dbos?.inlineSteps),
    seqRow('DBOS, awaited child workflows', S.dbos?.childWorkflows),
    seqRow('Restate, `ctx.run` steps', S.restate?.runSteps),
    seqRow('Restate, awaited calls to another handler', S.restate?.callSteps),
  ];
  if (S.engine?.sequential) {
    const toRow = (label, m) => ({
      label,
      sizes: Object.keys(m).map(Number),
      cells: Object.fromEntries(Object.entries(m).map(([n, t]) => [n, { total: t, perStep: t / Number(n), gap: Number.NaN, runs: 1 }])),
    });
    seqRows.push(toRow('engine only, no network or store, warm cache *(bench/engine.mjs)*', S.engine.sequential.warm));
    seqRows.push(toRow('engine only, forced replay *(bench/engine.mjs)*', S.engine.sequential.replay));
  }
  push(renderSeqTable(seqRows), '');
  push(
    'A `dispatch.step` result is durable once the function next suspends (README); a DBOS step or a Restate `ctx.run` is durable when it returns. The comparison of inline steps is therefore not like for like: ours defers the write to the next suspension.',
    '',
  );

  // 5. Fan-in.
  push('## 5. Fan-in', '');
  const hasCold = Object.values(S.fanin ?? {}).some((f) => f?.coldMs?.length);
  push(
    `\`dispatch.gather\` of N calls of a function returning its argument squared; the parent checks the sum. Scheduler and app are separate processes, started fresh for each run, so their peak RSS (\`VmHWM\` from /proc) belongs to that fan-in alone (after a warm-up: ${hasCold ? `${WARMUP_FANINS} fan-ins of 1,000 children, the first of them reported as the *cold start*; it was one fan-in of 1,000 until the thirteenth pass of issue 14, and 100 children until the sixth` : 'a fan-in of 1,000 children, as the throughput runs warm up with 1,000 calls; it was 100 children until the sixth pass of issue 14'}). Parent resumes are counted by the app’s engine (\`dispatch.engine.stats\`).`,
    '',
  );
  push('| what | N | wall time (median) | parent resumes | scheduler peak RSS | app peak RSS | runs |', '|---|---|---|---|---|---|---|');
  for (const [n, f] of Object.entries(S.fanin ?? {})) {
    if (n.startsWith('__')) continue;
    push(
      `| Dispatch | ${Number(n).toLocaleString('en-US')} | ${ms(med(f.ms))} | ${fmt(med(f.parentResumes), 0)} | ${fmt(mb(med(f.schedulerPeakRss)), 0)} MB | ${fmt(mb(med(f.appPeakRss)), 0)} MB | ${f.ms.map((x) => fmt(x, 0)).join(', ')} |`,
    );
  }
  for (const [n, f] of Object.entries(S['fanin-in-process'] ?? {})) {
    if (n.startsWith('__')) continue;
    push(
      `| Dispatch in-process (one process) | ${Number(n).toLocaleString('en-US')} | ${ms(med(f.ms))} | ${fmt(med(f.parentResumes), 0)} | ${fmt(mb(med(f.schedulerPeakRss)), 0)} MB (the same process) | ${fmt(mb(med(f.appPeakRss)), 0)} MB | ${f.ms.map((x) => fmt(x, 0)).join(', ')} |`,
    );
  }
  for (const [label, data] of [
    ['Dispatch, the first fan-in of 1,000 of fresh processes (cold start)', S.fanin?.[1000]],
    ['Dispatch in-process, the first fan-in of 1,000 of a fresh process (cold start)', S['fanin-in-process']?.[1000]],
  ]) {
    if (data?.coldMs?.length) push(`| ${label} | 1,000 | ${ms(med(data.coldMs))} | — | — | — | ${data.coldMs.map((x) => fmt(x, 0)).join(', ')} |`);
  }
  for (const [label, data] of [
    ['DBOS (child workflows started, then awaited)', S.dbos?.fanin],
    ['Restate (calls, `RestatePromise.all`)', S.restate?.fanin],
  ]) {
    for (const [n, f] of Object.entries(data ?? {})) push(`| ${label} | ${Number(n).toLocaleString('en-US')} | ${ms(med(f.ms))} | — | — | — | ${f.ms.map((x) => fmt(x, 0)).join(', ')} |`);
  }
  for (const [n, f] of Object.entries(S.engine?.fanin ?? {})) {
    push(`| engine only *(bench/engine.mjs)* | ${Number(n).toLocaleString('en-US')} | ${ms(f.ms)} | ${f.resumes} | — | — | 1 |`);
  }
  push('');

  // 6. Pending.
  push('## 6. Scheduler memory with pending calls', '');
  if (S.pending) {
    const p = S.pending;
    push(
      `${p.calls.toLocaleString('en-US')} calls dispatched (batches of 1,000) to an endpoint that accepts connections and never answers: the scheduler keeps ${p.running} RunRequests in flight (its initial concurrency; with no answer the limit never moves) and every other call (${p.pending.toLocaleString('en-US')}) stays pending in the store — dispatched but not runnable. RSS of the scheduler process read from /proc ${R.mode === 'quick' ? '0.5' : '3'} s after the last batch was stored.`,
      '',
      '| | |',
      '|---|---|',
      `| scheduler RSS, idle before dispatching | ${fmt(mb(p.idleRss), 0)} MB |`,
      `| scheduler RSS with the calls pending | ${fmt(mb(p.rss), 0)} MB |`,
      `| scheduler peak RSS (VmHWM) | ${fmt(mb(p.peak), 0)} MB |`,
      `| time to dispatch them all | ${ms(p.dispatchMs)} (${fmt((p.calls / p.dispatchMs) * 1000, 0)} calls/s through the API) |`,
      '',
    );
  }

  // Profiles.
  push('## What the profiles say', '');
  if (notes.trim()) push(notes.trim(), '');
  if (S.profiles) {
    push('### Profiles of this run', '');
    push('Separate runs under `node --cpu-prof` (scheduler and app each write a profile; not timed). Percentages are of each process’s busy (non-idle) time; *self* is time in the function itself (native calls such as better-sqlite3 statements and crypto count as self time of the JS function calling them).', '');
    // The profiled throughput runs are measured as this run's throughput section was (warm since the fourteenth pass).
    const tpCalls = S.throughput?.['sqlite NORMAL']?.runs?.[0]?.warmup === 10_000 ? '10,000 no-op calls of warm-up then 30,000' : '10,000 no-op calls';
    for (const [name, title] of [
      ['throughput', `Throughput, ${tpCalls}`],
      ['sequential', S.sequential?.warm?.__cold ? `Sequential calls, warm cache, ${WARMUP_STEPS.toLocaleString('en-US')} steps of warm-up then 2,000` : 'Sequential calls, warm cache, 2,000 steps'],
      ['fanin', 'Fan-in of 10,000'],
      ['inProcess', `In-process throughput, ${tpCalls} (one process: scheduler and app)`],
    ]) {
      const p = S.profiles[name];
      if (!p) continue;
      push(`#### ${title}`, '', profileTable(p.scheduler, name === 'inProcess' ? 'The app’s process' : 'Scheduler'), '', p.app ? profileTable(p.app, 'App') : '', '');
    }
  }

  // Peers that could not run.
  push('## Peers that could not run', '');
  const failed = Object.entries(R.peerErrors);
  if (failed.length === 0) push(R.mode === 'quick' ? 'Peers are not run in quick mode (add `--peers`).' : 'None: BullMQ, DBOS and Restate all ran.', '');
  for (const [name, error] of failed) push(`- **${name}**: ${error}`);
  if (failed.length) push('');
  if (R.errors.length) {
    push('## Errors', '', 'These measurements broke (the run exits with status 1):', '');
    for (const e of R.errors) push('```', e, '```');
  }
  return `${L.join('\n')}\n`;
}
