// @ts-check
/**
 * An expense approval on Express. `POST /expenses` starts `approveExpense`,
 * which asks a manager, then waits — durably, the process may restart — for
 * the manager's decision: a signal sent by `POST /expenses/:id/decision`.
 * Approved, it pays; rejected or unanswered within 24 h, it rejects.
 *
 *   dispatch run -- node app.mjs           # demo: one approved and one unanswered expense, then exit
 *   dispatch run -- node app.mjs --serve   # keep serving (see README.md for curl commands)
 *
 * APPROVAL_TIMEOUT sets the wait (default 24h; the tests use a few seconds).
 */
import express from 'express';
import { Dispatch, TimeoutError } from '@dispatch/core';
import { dispatchMiddleware } from '@dispatch/express';

const serve = process.argv.includes('--serve');
const approvalTimeout = process.env.APPROVAL_TIMEOUT ?? '24h';

// Configured from DISPATCH_* variables, which `dispatch run` sets.
const dispatch = new Dispatch();
/** What the outside world saw; a real app would send a message and call the bank. */
const world = { asked: 0, paid: /** @type {string[]} */ ([]), rejected: /** @type {string[]} */ ([]) };

const askManager = dispatch.function(async function askManager(/** @type {string} */ employee, /** @type {number} */ amount) {
  world.asked++;
  console.log(`ask: a manager is asked to approve ${amount} EUR for ${employee}`);
});

const pay = dispatch.function(async function pay(/** @type {string} */ employee, /** @type {number} */ amount) {
  world.paid.push(employee);
  console.log(`pay: ${amount} EUR paid to ${employee}`);
  return `payment_${world.paid.length}`;
});

const notifyRejected = dispatch.function(async function notifyRejected(/** @type {string} */ employee, /** @type {string} */ reason) {
  world.rejected.push(employee);
  console.log(`reject: ${employee} is told: ${reason}`);
});

const approveExpense = dispatch.function(async function approveExpense(/** @type {string} */ employee, /** @type {number} */ amount) {
  await askManager(employee, amount);
  /** @type {{ approved: boolean, by?: string, comment?: string }} */
  let decision;
  try {
    decision = await dispatch.waitForSignal('decision', { timeout: approvalTimeout });
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    await notifyRejected(employee, `no decision within ${approvalTimeout}`);
    return { status: 'rejected', reason: 'timeout' };
  }
  if (!decision.approved) {
    await notifyRejected(employee, decision.comment ?? `rejected by ${decision.by ?? 'the manager'}`);
    return { status: 'rejected', by: decision.by ?? null };
  }
  const payment = await pay(employee, amount);
  return { status: 'paid', by: decision.by ?? null, payment };
});

const app = express();
app.use(dispatchMiddleware(dispatch)); // the Dispatch endpoint, before the body parsers
app.use(express.json());

// An employee files an expense: the workflow starts and waits for a decision.
app.post('/expenses', async (req, res, next) => {
  try {
    const { employee = 'ann', amount = 120 } = req.body ?? {};
    const handle = await approveExpense.start(employee, amount);
    res.status(202).json({ id: handle.dispatchId });
  } catch (err) {
    next(err);
  }
});

// The manager decides: a signal to the waiting workflow.
app.post('/expenses/:id/decision', async (req, res) => {
  const { approved, by, comment } = req.body ?? {};
  if (typeof approved !== 'boolean') {
    res.status(400).json({ error: 'the body needs "approved": true or false' });
    return;
  }
  try {
    await dispatch.signal(req.params.id, 'decision', { approved, by, comment });
    res.status(202).json({ id: req.params.id, approved });
  } catch (err) {
    // An unknown expense, or one already decided (its workflow has finished).
    const e = /** @type {{ code?: string, message: string }} */ (err);
    res.status(e.code === 'not_found' ? 404 : e.code === 'failed_precondition' ? 409 : 500).json({ error: e.message });
  }
});

// Where an expense stands: its workflow's result, once it has one.
app.get('/expenses/:id', async (req, res) => {
  try {
    res.json(await dispatch.result(req.params.id, { timeout: '1s' }));
  } catch (err) {
    res.status(err instanceof TimeoutError ? 202 : 500).json({ error: /** @type {Error} */ (err).message });
  }
});

// The endpoint's address (DISPATCH_ENDPOINT_ADDR): 127.0.0.1:8000 unless `dispatch run --endpoint-addr` chose another.
const { hostname: host, port } = new URL(`http://${dispatch.config.endpointAddr}`);
const base = `http://${host}:${port}`;
const server = app.listen(Number(port), host, () => {
  console.log(`approval app listening on ${base} (POST /expenses, POST /expenses/:id/decision, GET /expenses/:id)`);
  if (!serve) {
    demo().catch((err) => {
      console.error(err);
      process.exit(1);
    });
  }
});

/** @param {string} path @param {unknown} [body] */
async function post(path, body) {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  return { status: response.status, body: /** @type {any} */ (await response.json()) };
}

/** Files two expenses: the manager approves the first; nobody answers the second. Prints what happened, exits. */
async function demo() {
  const first = (await post('/expenses', { employee: 'ann', amount: 120 })).body.id;
  const second = (await post('/expenses', { employee: 'bob', amount: 80 })).body.id;
  console.log(`POST /expenses → ${first} (ann), ${second} (bob)`);
  const decided = await post(`/expenses/${first}/decision`, { approved: true, by: 'maria' });
  console.log(`POST /expenses/${first}/decision → ${decided.status}`);
  /** @typedef {{ status: 'paid' | 'rejected', by?: string | null, payment?: string, reason?: string }} Outcome */
  const annResult = /** @type {Outcome} */ (await dispatch.result(first, { timeout: '60s' }));
  const bobResult = /** @type {Outcome} */ (await dispatch.result(second, { timeout: '120s' }));
  console.log(`ann: ${JSON.stringify(annResult)}`);
  console.log(`bob: ${JSON.stringify(bobResult)}`);
  // Deciding again is refused: the workflow has finished.
  const again = await post(`/expenses/${first}/decision`, { approved: false, by: 'maria' });
  console.log(`POST /expenses/${first}/decision again → ${again.status}: ${again.body.error}`);
  const summary = { ann: annResult, bob: bobResult, paid: world.paid, rejected: world.rejected, asked: world.asked, again: again.status };
  console.log(`summary ${JSON.stringify(summary)}`);
  server.close();
  await dispatch.drain();
  process.exit(annResult.status === 'paid' && bobResult.status === 'rejected' ? 0 : 1);
}
