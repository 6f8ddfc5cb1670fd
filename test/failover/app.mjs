// The app of the failover test: independent calls (leaf), fan-ins (fanIn
// gathers `part` calls) and sequential chains (chain awaits `step` calls one
// after the other), served with node:http over the built @dispatch/core.
//
// It counts, per function, every RunRequest it receives (runs, including
// resumes) and, per dispatch ID, how many times the body of each leaf
// function (leaf, part, step: the side effects) executed. GET /counts
// answers them as JSON; the test compares them with what the scheduler
// recorded. It also counts RunRequests per dispatch ID (received), so the
// test can tell which calls a killed instance had in flight at the app.
//
// Environment: FAILOVER_API_URL, FAILOVER_API_KEY, FAILOVER_VERIFICATION_KEY.
// Prints one JSON line when ready: {"url":"http://127.0.0.1:PORT"}.
import http from 'node:http';
import { Dispatch } from '@dispatch/core';
import { isRunBatch, proto } from '@dispatch/core/protocol';
import { readBody, sendResponse } from '@dispatch/core/node';

const app = new Dispatch({
  apiUrl: process.env.FAILOVER_API_URL,
  apiKey: process.env.FAILOVER_API_KEY,
  verificationKey: process.env.FAILOVER_VERIFICATION_KEY,
  logger: { info() {}, warn() {}, error: (...a) => console.error(...a) },
});

/** RunRequests received, per function. */
const runs = {};
/** RunRequests received, per dispatch ID. */
const received = new Map();
/** Executions of leaf bodies, per function, per dispatch ID. */
const executions = { leaf: new Map(), part: new Map(), step: new Map() };

const nap = () => new Promise((resolve) => setTimeout(resolve, 2 + Math.floor(Math.random() * 18)));
function executed(fn) {
  const { dispatchId } = app.context();
  const m = executions[fn];
  m.set(dispatchId, (m.get(dispatchId) ?? 0) + 1);
}

app.function(async function leaf(i) {
  executed('leaf');
  await nap();
  return i * 2;
});

const part = app.function(async function part(i, j) {
  executed('part');
  await nap();
  return i * 100 + j;
});

app.function(async function fanIn(i, n) {
  const parts = await app.gather(Array.from({ length: n }, (_, j) => part(i, j)));
  return parts.reduce((a, b) => a + b, 0);
});

const step = app.function(async function step(acc, k) {
  executed('step');
  await nap();
  return acc + k;
});

app.function(async function chain(i, n) {
  let acc = i;
  for (let k = 0; k < n; k++) acc = await step(acc, k);
  return acc;
});

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  if (req.method === 'GET' && req.url === '/counts') {
    const body = {
      runs,
      received: Object.fromEntries(received),
      executions: Object.fromEntries(Object.entries(executions).map(([fn, m]) => [fn, Object.fromEntries(m)])),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
    return;
  }
  readBody(req, app.config.maxBodyBytes).then(
    async (body) => {
      try {
        // A batch of RunRequests (the scheduler sends them once this endpoint says it takes them) counts each.
        const requests = isRunBatch(req.headers['content-type']) ? (proto.RunBatchRequest.decode(body).requests ?? []) : [proto.RunRequest.decode(body)];
        for (const request of requests) {
          const fn = request.function ?? '';
          runs[fn] = (runs[fn] ?? 0) + 1;
          received.set(request.dispatchId, (received.get(request.dispatchId) ?? 0) + 1);
        }
      } catch {
        // the handler answers the bad body
      }
      sendResponse(res, await app.handler({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body }));
    },
    () => res.destroy(),
  );
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
