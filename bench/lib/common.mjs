// Helpers shared by the benchmarks: statistics, timing, child processes that
// are always cleaned up, and memory readings from /proc.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';

export const now = () => performance.now();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Fails loudly: a benchmark that computed a wrong result must not report a number. */
export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Runs `fn` and rejects if it takes longer than `ms`. */
export async function within(ms, what, fn) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes, from /proc (Linux). */
export function memoryOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/** Samples the RSS of a process every `everyMs` and keeps the highest (for processes whose /proc peak we cannot reset). */
export function rssSampler(pid, everyMs = 50) {
  let max = 0;
  const sample = () => {
    const { rss } = memoryOf(pid);
    if (rss > max) max = rss;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      return max;
    },
  };
}

export const mb = (bytes) => bytes / (1024 * 1024);

/** The machine, for the top of RESULTS.md. */
export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: os.totalmem() / 1024 ** 3,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg: os.loadavg(),
  };
}

// Every child process started through `startProcess` is killed when this
// process exits, whatever the reason.
const children = new Set();
function killAll() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/**
 * Starts a process and keeps the last lines of its output for error messages.
 * `readyLine`: a predicate on stdout lines; `ready` resolves with the first
 * matching line. The process is killed when this one exits.
 */
export function startProcess(command, args, options = {}) {
  const { env, cwd, readyLine, ipc = false, label = command } = options;
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
  });
  children.add(child);
  const tail = [];
  const keep = (stream, line) => {
    tail.push(`[${label} ${stream}] ${line}`);
    if (tail.length > 40) tail.shift();
  };
  let resolveReady;
  let rejectReady;
  const ready = new Promise((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  const out = createInterface({ input: child.stdout });
  out.on('line', (line) => {
    keep('out', line);
    if (readyLine?.(line)) resolveReady(line);
    options.onLine?.(line);
  });
  createInterface({ input: child.stderr }).on('line', (line) => keep('err', line));
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      rejectReady(new Error(`${label} exited (code ${code}, signal ${signal}) before it was ready:\n${tail.join('\n')}`));
      resolve({ code, signal });
    });
  });
  if (!readyLine) resolveReady('');
  return {
    child,
    pid: child.pid,
    ready,
    exited,
    output: () => tail.join('\n'),
    /** SIGTERM, then SIGKILL after `graceMs`. */
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Formats a number for tables: 12345.6 → "12,346"; small values keep digits. */
export function fmt(value, digits) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'n/a';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/**
 * Forks a worker script with an IPC channel; `request(msg)` sends a message
 * and resolves with the next reply. The worker sends one message when ready.
 * It is killed when this process exits.
 */
export async function forkWorker(script, { env = {}, execArgv = [], readyTimeoutMs = 60_000, label = script } = {}) {
  const { fork } = await import('node:child_process');
  const child = fork(script, [], { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const inbox = [];
  const waiting = [];
  child.on('message', (msg) => {
    const w = waiting.shift();
    if (w) w.resolve(msg);
    else inbox.push(msg);
  });
  exited.then(({ code, signal }) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`${label} exited (code ${code}, signal ${signal})`));
  });
  const next = (timeoutMs) =>
    new Promise((resolve, reject) => {
      if (inbox.length) return resolve(inbox.shift());
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`${label} has exited`));
      const timer = setTimeout(() => reject(new Error(`${label} did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
      waiting.push({
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  const ready = await next(readyTimeoutMs);
  return {
    pid: child.pid,
    ready,
    async request(msg, timeoutMs = 600_000) {
      child.send(msg);
      return next(timeoutMs);
    },
    async stop(msg = { cmd: 'exit' }, graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      if (child.connected) child.send(msg);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

/**
 * Awaited steps a stack runs before its awaited calls are measured. V8
 * optimises a step's code (both processes' HTTP, signature, protobuf, engine
 * and store paths, each run once or twice a step) over the first few
 * thousand steps: in one process, `loop(100)` repeated went 2.0 → 0.9 ms
 * per step over its first 2,000 steps, then stayed at ~0.75 ms, where
 * `loop(10000)` was (bench/profile-notes.md, thirteenth pass). The sizes
 * measure the design's cost per step, so each is measured warm; the first
 * 1,000 steps of fresh processes are measured too and reported apart
 * (`__cold`), as the cold start.
 */
export const WARMUP_STEPS = 10_000;

/**
 * Throughput runs (ours and BullMQ's alike) warm up with this many calls
 * (jobs) on the same processes before the clock starts, then measure
 * {@link THROUGHPUT_CALLS}. The warm-up is for V8 (as {@link WARMUP_STEPS})
 * and for the scheduler's adaptive concurrency limit, which starts at 16
 * and grows by one per limit's worth of successful runs: after 1,000 calls
 * (the warm-up until the fourteenth pass of issue 14) it was still ~47 in
 * flight, and 10,000 calls after it ~160; in process, the same 10,000
 * calls ran at ~13,600/s after the short warm-up and ~18,000/s after this
 * one (bench/profile-notes.md, fourteenth pass). The short warm-up is
 * still measured, once a round, as the cold start.
 */
export const WARMUP_CALLS = 10_000;
/**
 * Calls (jobs) a throughput run measures: long enough that SQLite's WAL
 * checkpoints (one every 10,000 WAL pages, some 20,000 – 35,000 no-op
 * calls) are counted at their rate, not in one run of three and not in the
 * next; consecutive windows of 10,000 calls of one process ranged from
 * 13,900 to 18,800 calls/s.
 */
export const THROUGHPUT_CALLS = 30_000;

/** The fan-ins of 1,000 children a stack runs before a fan-in is measured (see {@link WARMUP_STEPS}); the first is reported as the cold start. */
export const WARMUP_FANINS = 5;
