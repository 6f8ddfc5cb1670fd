// @ts-check
/**
 * The workflows of the seeds on a Fastify app:
 * - fan-out: `notifyAllUsers` emails every user with `dispatch.batch()`;
 *   one user's mail server fails twice, and only that send is retried;
 * - fan-in: `generateInvoices` generates one PDF per client with
 *   `dispatch.gather()` (results in client order, whatever order they finish
 *   in), then uploads them all.
 *
 *   dispatch run -- node app.mjs           # demo: both workflows, then exit
 *   dispatch run -- node app.mjs --serve   # keep serving: POST /notify, POST /invoices
 */
import { basename } from 'node:path';
import { Dispatch, DispatchClient, TemporaryError } from '@dispatch/core';
import { dispatchPlugin } from '@dispatch/fastify';
import Fastify from 'fastify';

const serve = process.argv.includes('--serve');
const dispatch = new Dispatch(); // configured from DISPATCH_* variables, which `dispatch run` sets
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- Fan-out -----------------------------------------------------------------

const users = ['ada', 'grace', 'linus', 'margaret'];
/** The user whose mail server is down for the first two attempts. */
const flakyUser = 'linus';
/** @type {Record<string, number>} */
const sendAttempts = {};

async function fetchUsersFromDatabase() {
  return users;
}

const sendEmailNotification = dispatch.function(async function sendEmailNotification(/** @type {string} */ user) {
  const attempt = (sendAttempts[user] = (sendAttempts[user] ?? 0) + 1);
  if (user === flakyUser && attempt <= 2) {
    console.log(`notify: ${user}: attempt ${attempt} failed: mail server unavailable`);
    throw new TemporaryError(`the mail server of ${user} is unavailable`);
  }
  console.log(`notify: ${user}: email sent (attempt ${attempt})`);
});

const notifyAllUsers = dispatch.function(async function notifyAllUsers() {
  const all = await fetchUsersFromDatabase();
  const emailDelivery = dispatch.batch();
  for (const user of all) emailDelivery.add(sendEmailNotification(user));
  return emailDelivery.dispatch(); // returns at once with the dispatch IDs; the sends run on their own
});

// --- Fan-in ------------------------------------------------------------------

const clients = ['acme', 'globex', 'initech'];
/** @type {string[]} */
const log = [];

async function fetchClientsFromDatabase() {
  return clients;
}

/**
 * Settles once the client's invoice is generated (in this process): an
 * invoice waits for the next client's, so they finish in reverse order
 * whatever the machine's load (not by timing: a slower start cannot reorder them).
 * @type {Map<string, { done: Promise<void>, resolve: () => void }>}
 */
const generated = new Map(
  clients.map((client) => {
    /** @type {() => void} */
    let resolve = () => {};
    /** @type {Promise<void>} */
    const done = new Promise((r) => {
      resolve = () => r();
    });
    return [client, { done, resolve }];
  }),
);

const generateInvoice = dispatch.function(async function generateInvoice(/** @type {string} */ client) {
  // The first client's invoice is the last to finish: each waits for the next client's.
  const next = clients[clients.indexOf(client) + 1];
  if (next) await generated.get(next)?.done;
  await sleep(20);
  const path = `/tmp/invoices/${client}.pdf`;
  log.push(`generated ${path}`);
  console.log(`invoices: generated ${path}`);
  generated.get(client)?.resolve();
  return path;
});

const uploadToS3 = dispatch.function(async function uploadToS3(/** @type {string} */ path) {
  const url = `s3://invoices/${basename(path)}`;
  log.push(`uploaded ${url}`);
  console.log(`invoices: uploaded ${url}`);
  return url;
});

const generateInvoices = dispatch.function(async function generateInvoices() {
  const all = await fetchClientsFromDatabase();
  // When all invoices are generated, gather returns their paths, in client order.
  const invoicePaths = await dispatch.gather(...all.map((client) => generateInvoice(client)));
  return dispatch.gather(...invoicePaths.map((path) => uploadToS3(path)));
});

// --- The app -------------------------------------------------------------------

const app = Fastify();
await app.register(dispatchPlugin, { dispatch });
app.post('/notify', async () => ({ dispatchId: await notifyAllUsers.dispatch() }));
app.post('/invoices', async () => ({ dispatchId: await generateInvoices.dispatch() }));

// The endpoint's address (DISPATCH_ENDPOINT_ADDR): 127.0.0.1:8000, the SDK's default, unless
// `dispatch run --endpoint-addr` chose another (the tests do, to run side by side).
const { hostname: host, port } = new URL(`http://${dispatch.config.endpointAddr}`);
await app.listen({ host, port: Number(port) });
console.log(`listening on http://${host}:${port} (POST /notify, POST /invoices)`);
if (!serve) {
  try {
    await demo();
  } catch (err) {
    console.error(err);
    process.exit(1);
  }
}

/** Runs both workflows through the app's routes, waits for them, prints what happened, and exits. */
async function demo() {
  // The API client waits for the workflows and tells how many runs they took.
  const { apiUrl, apiKey } = dispatch.config;
  const client = new DispatchClient({ apiUrl, apiKey, registry: dispatch.registry });
  const post = async (/** @type {string} */ path) => {
    const body = /** @type {{ dispatchId: string }} */ (await (await fetch(`http://${host}:${port}${path}`, { method: 'POST' })).json());
    return body.dispatchId;
  };
  const finish = async (/** @type {string} */ id) => {
    const r = await client.wait(id, { timeoutMs: 60_000 });
    if (!r.done) throw new Error(`call ${id} did not finish in 60 s`);
    const { attempts } = await client.get(id);
    return { status: r.statusName, attempts, output: r.value };
  };

  const notify = await finish(await post('/notify'));
  /** @type {Record<string, { status: string, attempts: number }>} */
  const sends = {};
  const sendIds = /** @type {string[]} */ (notify.output);
  for (const [i, id] of sendIds.entries()) {
    const { status, attempts } = await finish(id);
    sends[users[i] ?? id] = { status, attempts };
  }
  console.log(`notifyAllUsers ${notify.status} after ${notify.attempts} attempt(s); sends: ${Object.entries(sends).map(([u, s]) => `${u} ${s.status} in ${s.attempts}`).join(', ')}`);

  const invoices = await finish(await post('/invoices'));
  console.log(`generateInvoices ${invoices.status}: ${JSON.stringify(invoices.output)}`);

  const summary = { notify: { status: notify.status, attempts: notify.attempts }, sends, invoices: { status: invoices.status, urls: invoices.output }, log };
  console.log(`summary ${JSON.stringify(summary)}`);
  await app.close();
  process.exit(notify.status === 'OK' && invoices.status === 'OK' ? 0 : 1);
}
