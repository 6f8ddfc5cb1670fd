// Peer: Restate. The server is the binary shipped in the npm package
// @restatedev/restate-server (a platform package; nothing is downloaded),
// started on free loopback ports with a temporary data directory; the SDK
// endpoint (@restatedev/restate-sdk, restate-app.mjs) is its own process and
// is registered through the admin API. Invocations go through the ingress
// (HTTP request/response).
import http from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { check, memoryOf, now, sleep, startProcess } from '../lib/common.mjs';
import { tempDir } from '../lib/harness.mjs';

/** The server binary inside the platform package that @restatedev/restate-server depends on. */
export function restateServerBinary() {
  const fromBench = createRequire(import.meta.url);
  const fromServer = createRequire(fromBench.resolve('@restatedev/restate-server/package.json'));
  return fromServer.resolve(`@restatedev/restate-server-${process.platform}-${process.arch}/bin/restate-server`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function request(method, url, body, timeoutMs = 600_000) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(url, {
      method,
      agent,
      headers: data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {},
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode >= 300) reject(new Error(`${method} ${url}: HTTP ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(text ? JSON.parse(text) : null);
      });
    });
    req.end(data);
  });
}

/** Starts the Restate server and the SDK endpoint, registers it; `fn(ctx)`; then stops both and removes the data. */
export async function withRestate(fn) {
  const binary = restateServerBinary();
  const tmp = tempDir('dispatch-bench-restate-');
  const dir = tmp.dir;
  const [ingress, admin, node] = [await freePort(), await freePort(), await freePort()];
  const server = startProcess(binary, ['--base-dir', dir, '--node-name', 'bench', '--no-logo', '--listen-mode', 'tcp'], {
    label: 'restate-server',
    cwd: dir,
    env: {
      RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingress}`,
      RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${admin}`,
      RESTATE_BIND_ADDRESS: `127.0.0.1:${node}`,
      RESTATE_ADVERTISED_ADDRESS: `http://127.0.0.1:${node}/`,
      RESTATE_DISABLE_TELEMETRY: 'true',
      RESTATE_LOG_FILTER: 'warn',
    },
  });
  const app = startProcess(process.execPath, [fileURLToPath(new URL('./restate-app.mjs', import.meta.url))], {
    label: 'restate-app',
    readyLine: (l) => l.startsWith('http://'),
  });
  try {
    const appUrl = (await app.ready).trim();
    const adminUrl = `http://127.0.0.1:${admin}`;
    const ingressUrl = `http://127.0.0.1:${ingress}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await request('GET', `${adminUrl}/health`, undefined, 2000);
        break;
      } catch (err) {
        if (server.child.exitCode !== null) throw new Error(`restate-server exited:\n${server.output()}`);
        if (Date.now() > deadline) throw new Error(`restate-server did not become healthy within 60 s: ${err.message}\n${server.output()}`);
        await sleep(200);
      }
    }
    await request('POST', `${adminUrl}/deployments`, { uri: appUrl, force: true });
    // The ingress may take a moment to learn the new deployment.
    for (let i = 0; ; i++) {
      try {
        check((await request('POST', `${ingressUrl}/bench/inc`, 1, 5000)) === 2, 'bench/inc(1) !== 2');
        break;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(100);
      }
    }
    const call = async (handler, arg, expected) => {
      const start = now();
      const value = await request('POST', `${ingressUrl}/bench/${handler}`, arg);
      const ms = now() - start;
      check(value === expected, `Restate bench/${handler}(${arg}) returned ${value}, expected ${expected}`);
      return ms;
    };
    return await fn({ call, ingressUrl, serverPid: server.pid, appPid: app.pid, memory: () => ({ server: memoryOf(server.pid), app: memoryOf(app.pid) }) });
  } finally {
    await app.stop();
    await server.stop(20_000);
    agent.destroy();
    tmp.cleanup();
  }
}

const sumOfSquares = (n) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += i * i;
  return s;
};

/** Sequential ctx.run steps and handler calls; a fan-in; throughput of no-op invocations. */
export async function restateAll({ sizes = [100, 1000, 10_000], faninSizes = [1000], invocations = 10_000, concurrency = 100, runs = 3, repeatBelowMs = 30_000, log = () => {} } = {}) {
  return withRestate(async ({ call, ingressUrl }) => {
    const out = { runSteps: {}, callSteps: {}, fanin: {}, throughput: { perSecond: [] } };
    await call('runSteps', 200, 200);
    await call('callSteps', 50, 50);
    for (const kind of ['runSteps', 'callSteps']) {
      for (const n of sizes) {
        out[kind][n] = { totalMs: [] };
        for (let r = 0; r < runs; r++) {
          const ms = await call(kind, n, n);
          out[kind][n].totalMs.push(ms);
          log(`  Restate ${kind} ${n}: ${ms.toFixed(0)} ms (${((ms / n) * 1000).toFixed(0)} µs/step)`);
          if (ms > repeatBelowMs) break;
        }
      }
    }
    for (const n of faninSizes) {
      out.fanin[n] = { ms: [] };
      for (let r = 0; r < runs; r++) {
        const ms = await call('fanin', n, sumOfSquares(n));
        out.fanin[n].ms.push(ms);
        log(`  Restate fan-in of ${n} calls: ${ms.toFixed(0)} ms`);
      }
    }
    if (invocations > 0) {
      for (let r = 0; r < runs; r++) {
        let next = 0;
        const start = now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < invocations) {
              next++;
              check((await request('POST', `${ingressUrl}/bench/noop`, null)) === 0, 'bench/noop did not return 0');
            }
          }),
        );
        const ms = now() - start;
        out.throughput.perSecond.push((invocations / ms) * 1000);
        log(`  Restate: ${invocations} no-op invocations (${concurrency} in flight) in ${ms.toFixed(0)} ms (${Math.round((invocations / ms) * 1000)}/s)`);
      }
    }
    return out;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  console.log(JSON.stringify(await restateAll({ sizes: quick ? [100] : [100, 1000], invocations: quick ? 1000 : 10_000, runs: 1, log: console.log })));
}
