// @ts-check
/**
 * The checkout flow of the seeds on an Express app: `POST /buy` dispatches
 * `checkout`, which charges the card, emails a confirmation and marks the
 * order completed. Each step is a Dispatch function, so each `await` is a
 * checkpoint: when the email fails, only the email is retried, and the card
 * is not charged again.
 *
 *   dispatch run -- node app.mjs --email-failures 2   # demo: one order, then exit
 *   dispatch run -- node app.mjs --serve              # keep serving: curl -X POST localhost:<port>/buy
 */
import express from 'express';
import { Dispatch, DispatchClient, TemporaryError } from '@dispatch/core';
import { dispatchMiddleware } from '@dispatch/express';

const args = process.argv.slice(2);
const flag = (/** @type {string} */ name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
/** How many times the email step fails before it works (simulates a flaky mail server). */
const emailFailures = Number(flag('--email-failures') ?? process.env.EMAIL_FAILURES ?? 0);
const serve = args.includes('--serve');

// Configured from DISPATCH_* variables, which `dispatch run` sets.
const dispatch = new Dispatch();
/** What the "outside world" saw; a real app would ask Stripe and the mail server. */
const world = { charges: 0, emailAttempts: 0 };

const chargeCreditCard = dispatch.function(async function chargeCreditCard(/** @type {string} */ userId) {
  world.charges++;
  console.log(`charge: charged the card of ${userId} (charge #${world.charges})`);
  return 'receipt_789';
});

const sendEmailConfirmation = dispatch.function(async function sendEmailConfirmation(
  /** @type {string} */ userId,
  /** @type {string} */ orderId,
  /** @type {string} */ receiptId,
) {
  const attempt = ++world.emailAttempts;
  if (attempt <= emailFailures) {
    console.log(`email: attempt ${attempt} failed: the mail server is unavailable`);
    throw new TemporaryError('the mail server is unavailable');
  }
  console.log(`email: attempt ${attempt}: sent the confirmation of ${orderId} (${receiptId}) to ${userId}`);
});

const markOrderAsCompleted = dispatch.function(async function markOrderAsCompleted(/** @type {string} */ orderId) {
  console.log(`order: ${orderId} completed`);
});

const checkout = dispatch.function(async function checkout(/** @type {string} */ userId, /** @type {string} */ orderId) {
  const receiptId = await chargeCreditCard(userId); // checkpoint 1
  await sendEmailConfirmation(userId, orderId, receiptId); // checkpoint 2
  await markOrderAsCompleted(orderId); // checkpoint 3
  return { orderId, receiptId };
});

const app = express();
app.use(dispatchMiddleware(dispatch)); // the Dispatch endpoint, before the body parsers
app.use(express.json());
app.post('/buy', async (req, res, next) => {
  try {
    const { userId = 'user_123', orderId = 'order_456' } = req.body ?? {};
    res.status(202).json({ dispatchId: await checkout.dispatch(userId, orderId) });
  } catch (err) {
    next(err);
  }
});

// The endpoint's address (DISPATCH_ENDPOINT_ADDR): 127.0.0.1:8000, the SDK's default, unless
// `dispatch run --endpoint-addr` chose another (the tests do, to run side by side).
const { hostname: host, port } = new URL(`http://${dispatch.config.endpointAddr}`);
const server = app.listen(Number(port), host, () => {
  console.log(`listening on http://${host}:${port} (POST /buy)`);
  if (!serve) demo().catch((err) => {
    console.error(err);
    process.exit(1);
  });
});

/** Buys once through the app's own route, waits for the checkout, prints what happened, and exits. */
async function demo() {
  const response = await fetch(`http://${host}:${port}/buy`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'user_123', orderId: 'order_456' }),
  });
  const { dispatchId } = /** @type {{ dispatchId: string }} */ (await response.json());
  console.log(`POST /buy → checkout ${dispatchId}`);

  // The API client waits for the checkout and tells how many runs each step took.
  const { apiUrl, apiKey } = dispatch.config;
  const client = new DispatchClient({ apiUrl, apiKey, registry: dispatch.registry });
  const outcome = await client.wait(dispatchId, { timeoutMs: 60_000 });
  if (!outcome.done) throw new Error(`checkout ${dispatchId} did not finish in 60 s`);
  /** @type {Record<string, number>} */
  const attempts = {};
  for (const fn of ['checkout', 'chargeCreditCard', 'sendEmailConfirmation', 'markOrderAsCompleted']) {
    const { calls } = await client.list({ function: fn });
    attempts[fn] = calls.reduce((sum, call) => sum + call.attempts, 0);
  }
  const summary = { status: outcome.statusName, charges: world.charges, emailAttempts: world.emailAttempts, attempts };
  console.log(
    `checkout ${summary.status}: the card was charged ${world.charges} time(s); ` +
      `the email took ${attempts.sendEmailConfirmation} attempt(s), the charge ${attempts.chargeCreditCard}`,
  );
  console.log(`summary ${JSON.stringify(summary)}`);
  server.close();
  await dispatch.drain();
  process.exit(summary.status === 'OK' ? 0 : 1);
}
