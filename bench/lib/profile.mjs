// Summarises a V8 CPU profile (.cpuprofile from `node --cpu-prof`): self time
// per function and per module, as percentages of the busy (non-idle) time.
import { readFileSync } from 'node:fs';

function moduleOf(url) {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return 'node: internals';
  const pkg = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url) ?? /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const ours = /packages\/([^/]+)\/dist\/(?:esm|cjs)\/(.+)$/.exec(url);
  if (ours) return `@dispatch/${ours[1]} ${ours[2]}`;
  const bench = /\/bench\/(.+)$/.exec(url);
  if (bench) return `bench ${bench[1]}`;
  return url.replace(/^file:\/\//, '');
}

/**
 * Reads a profile; returns { totalMs, busyMs, functions: [{ name, where, ms, pct }], modules: [{ module, ms, pct }] }.
 */
export function summarizeProfile(path, top = 15) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas ?? [];
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
  }
  const fnTotals = new Map();
  const modTotals = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    const cf = node.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = cf.url ? `${moduleOf(cf.url)}:${cf.lineNumber + 1}` : moduleOf(cf.url);
    const key = `${cf.functionName || '(anonymous)'}\u0000${where}`;
    fnTotals.set(key, (fnTotals.get(key) ?? 0) + us);
    const mod = ['(garbage collector)', '(program)'].includes(cf.functionName) ? cf.functionName : moduleOf(cf.url);
    modTotals.set(mod, (modTotals.get(mod) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us) => (busy > 0 ? (us / busy) * 100 : 0);
  const functions = [...fnTotals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, us]) => {
      const [name, where] = key.split('\u0000');
      return { name, where, ms: us / 1000, pct: pct(us) };
    });
  const modules = [...modTotals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([module, us]) => ({ module, ms: us / 1000, pct: pct(us) }));
  // Inclusive time: each sample counts once for every distinct function on its stack.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  for (const [id, us] of self) {
    if (byId.get(id).callFrame.functionName === '(idle)') continue;
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const cf = byId.get(at).callFrame;
      if (!cf.functionName || cf.functionName === '(root)') continue;
      const key = `${cf.functionName}\u0000${cf.url ? `${moduleOf(cf.url)}:${cf.lineNumber + 1}` : moduleOf(cf.url)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const inclusiveTop = [...inclusive]
    .filter(([key]) => !/^(processTicksAndRejections|runMicrotasks|processImmediate|listOnTimeout|emit|onread|onStreamRead)\u0000/.test(key))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top * 2)
    .map(([key, us]) => {
      const [name, where] = key.split('\u0000');
      return { name, where, ms: us / 1000, pct: pct(us) };
    });
  // Hot lines of our own code (V8 line ticks), with the source line.
  const lineTicks = new Map();
  let allTicks = 0;
  for (const n of profile.nodes) {
    for (const t of n.positionTicks ?? []) {
      allTicks += t.ticks;
      if (!/packages\/[^/]+\/dist\//.test(n.callFrame.url)) continue;
      const key = `${n.callFrame.url}\u0000${t.line}`;
      lineTicks.set(key, (lineTicks.get(key) ?? 0) + t.ticks);
    }
  }
  const sources = new Map();
  const lines = [...lineTicks]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, ticks]) => {
      const [url, line] = key.split('\u0000');
      if (!sources.has(url)) {
        try {
          sources.set(url, readFileSync(new URL(url), 'utf8').split('\n'));
        } catch {
          sources.set(url, []);
        }
      }
      const code = (sources.get(url)[Number(line) - 1] ?? '').trim().slice(0, 120);
      return { where: `${moduleOf(url)}:${line}`, code, pct: allTicks ? (ticks / allTicks) * 100 : 0 };
    });
  return { totalMs: total / 1000, busyMs: busy / 1000, functions, modules, inclusive: inclusiveTop, lines };
}

if (process.argv[1]?.endsWith('profile.mjs')) {
  for (const path of process.argv.slice(2)) {
    const s = summarizeProfile(path, 25);
    console.log(`${path}: ${s.busyMs.toFixed(0)} ms busy of ${s.totalMs.toFixed(0)} ms`);
    for (const m of s.modules) console.log(`  ${m.pct.toFixed(1).padStart(5)}%  ${m.module}`);
    console.log('  --');
    for (const f of s.functions) console.log(`  ${f.pct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
    console.log('  -- hot lines (% of all line ticks)');
    for (const l of s.lines) console.log(`  ${l.pct.toFixed(1).padStart(5)}%  ${l.where}  ${l.code}`);
    console.log('  -- inclusive');
    for (const f of s.inclusive) console.log(`  ${f.pct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  }
}
