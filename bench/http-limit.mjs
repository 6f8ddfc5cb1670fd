// (1) The limit: raw HTTP round trips per second on this machine. A trivial
// node:http keep-alive server (its own process, like an app) and a client in
// this process that sends POSTs the way the scheduler's EndpointClient does
// (http.request on a keep-alive Agent, body read to the end), with a fixed
// number of requests in flight: the scheduler's concurrency.
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { check, now, sleep, startProcess } from './lib/common.mjs';

const body = Buffer.alloc(200, 7); // about the size of a signed no-op RunRequest body

function post(agent, url) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/proto', 'connect-protocol-version': '1', 'content-length': String(body.length) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).length));
      res.on('error', reject);
    });
    req.end(body);
  });
}

/** Round trips per second with `concurrency` requests in flight for `ms`. */
async function measure(url, concurrency, ms) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024, keepAliveMsecs: 10_000 });
  let done = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const n = await post(agent, url);
      check(n === 64, `the raw server answered ${n} bytes`);
      done++;
    }
  };
  // Warm up connections and the JIT, then count.
  const warm = Array.from({ length: concurrency }, worker);
  await sleep(Math.min(500, ms / 4));
  const start = now();
  const before = done;
  await sleep(ms);
  const after = done;
  const elapsed = now() - start;
  stop = true;
  await Promise.all(warm);
  agent.destroy();
  return ((after - before) / elapsed) * 1000;
}

/**
 * Runs the raw HTTP measurement at each concurrency, `runs` times.
 * Returns { [concurrency]: [rps per run] }.
 */
export async function httpLimit({ concurrencies = [1, 16, 64, 256], ms = 3000, runs = 3, log = () => {} } = {}) {
  const server = startProcess(process.execPath, [fileURLToPath(new URL('./lib/http-server.mjs', import.meta.url))], {
    label: 'raw-http-server',
    readyLine: (l) => l.startsWith('http://'),
  });
  try {
    const url = `${(await server.ready).trim()}/dispatch.sdk.v1.FunctionService/Run`;
    const out = {};
    for (const c of concurrencies) out[c] = [];
    for (let r = 0; r < runs; r++) {
      for (const c of concurrencies) {
        const rps = await measure(url, c, ms);
        out[c].push(rps);
        log(`  raw HTTP, ${c} in flight: ${Math.round(rps)} round trips/s`);
      }
    }
    return out;
  } finally {
    await server.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  console.log(JSON.stringify(await httpLimit({ ms: quick ? 500 : 3000, runs: quick ? 1 : 3, log: console.log })));
}
