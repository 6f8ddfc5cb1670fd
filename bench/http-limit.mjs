// (1) The limit: raw HTTP round trips per second on this machine. A trivial
// node:http keep-alive server (its own process, like an app) and a client in
// this process that sends POSTs the way the scheduler's EndpointClient does
// (http.request on a keep-alive Agent, body read to the end), with a fixed
// number of requests in flight: the scheduler's concurrency.
import http from 'node:http';
import net from 'node:net';
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
 * The same round trips from a lean client: `concurrency` keep-alive
 * connections on raw sockets (node:net), each with one request in flight, the
 * request's bytes built once, the answer's end found from its Content-Length
 * — what a load generator such as autocannon does. Node's http.request costs
 * far more CPU per request than the server spends answering it (a
 * ClientRequest, header validation, the Agent's queue, an IncomingMessage
 * stream per response), so the node:http client saturates its core long
 * before the server does: this client measures the server's limit.
 */
async function measureLean(url, concurrency, ms) {
  const { hostname, port, pathname } = new URL(url);
  const head = Buffer.from(
    `POST ${pathname} HTTP/1.1\r\nhost: ${hostname}:${port}\r\ncontent-type: application/proto\r\nconnect-protocol-version: 1\r\ncontent-length: ${body.length}\r\n\r\n`,
  );
  const request = Buffer.concat([head, body]);
  let done = 0;
  let stop = false;
  const sockets = [];
  const connection = () =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: hostname, port: Number(port) });
      socket.setNoDelay(true);
      sockets.push(socket);
      let pending = Buffer.alloc(0);
      socket.on('error', (err) => (stop ? resolve() : reject(err)));
      socket.on('close', () => resolve());
      socket.on('data', (chunk) => {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        for (;;) {
          const end = pending.indexOf('\r\n\r\n');
          if (end < 0) return;
          const m = /content-length: *(\d+)/i.exec(pending.subarray(0, end).toString('latin1'));
          const total = end + 4 + Number(m?.[1] ?? 0);
          if (pending.length < total) return;
          check(total - end - 4 === 64, `the raw server answered ${total - end - 4} bytes`);
          pending = pending.subarray(total);
          done++;
          if (stop) {
            socket.end();
            return;
          }
          socket.write(request);
        }
      });
      socket.on('connect', () => socket.write(request));
    });
  const all = Array.from({ length: concurrency }, connection);
  await sleep(Math.min(500, ms / 4));
  const start = now();
  const before = done;
  await sleep(ms);
  const after = done;
  const elapsed = now() - start;
  stop = true;
  for (const s of sockets) s.end();
  await Promise.all(all);
  return ((after - before) / elapsed) * 1000;
}

/**
 * Runs the raw HTTP measurement at each concurrency, `runs` times, with the
 * node:http client and (`lean`) with the lean client.
 * Returns { [concurrency]: [rps per run], lean: { [concurrency]: [rps per run] } }.
 */
export async function httpLimit({ concurrencies = [1, 16, 64, 256], leanConcurrencies = [64], ms = 3000, runs = 3, log = () => {} } = {}) {
  const server = startProcess(process.execPath, [fileURLToPath(new URL('./lib/http-server.mjs', import.meta.url))], {
    label: 'raw-http-server',
    readyLine: (l) => l.startsWith('http://'),
  });
  try {
    const url = `${(await server.ready).trim()}/dispatch.sdk.v1.FunctionService/Run`;
    const out = { lean: {} };
    for (const c of concurrencies) out[c] = [];
    for (const c of leanConcurrencies) out.lean[c] = [];
    for (let r = 0; r < runs; r++) {
      for (const c of concurrencies) {
        const rps = await measure(url, c, ms);
        out[c].push(rps);
        log(`  raw HTTP, node:http client, ${c} in flight: ${Math.round(rps)} round trips/s`);
      }
      for (const c of leanConcurrencies) {
        const rps = await measureLean(url, c, ms);
        out.lean[c].push(rps);
        log(`  raw HTTP, lean client (raw sockets), ${c} in flight: ${Math.round(rps)} round trips/s`);
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
