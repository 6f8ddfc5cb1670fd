// @ts-check
/**
 * A tour of the seed API: every call goes through the scheduler that
 * `dispatch run` starts, and comes back to this app's endpoint.
 *
 *   dispatch run -- node app.mjs            # the tour, then exit
 *   dispatch run -- node app.mjs --serve    # the tour, then keep serving
 */
import * as dispatch from '@dispatch/core';

const { DispatchClient, Status } = dispatch;

// dispatch.function: the function becomes resumable; greet.dispatch(...)
// asks the scheduler to run it.
const greet = dispatch.function(function greet(/** @type {string} */ name) {
  console.log(`greet: Hello ${name}`);
});

// dispatch.batch: fan-out, without waiting for the calls to finish.
const greetEveryone = dispatch.function(async function greetEveryone(/** @type {string[]} */ names) {
  const batch = dispatch.batch();
  for (const name of names) batch.add(greet(name));
  return batch.dispatch(); // their dispatch IDs
});

// dispatch.gather: fan-in; the results come in the order of the calls.
const createGreeting = dispatch.function(function createGreeting(/** @type {string} */ name) {
  return `Hello ${name}`;
});
const collectGreetings = dispatch.function(async function collectGreetings(/** @type {string[]} */ names) {
  const greetings = await dispatch.gather(...names.map((name) => createGreeting(name)));
  for (const greeting of greetings) console.log(`collectGreetings: ${greeting}`);
  return greetings;
});

// dispatch.registerErrorType: this error is fatal, do not retry.
class FatalError extends Error {
  /** @override */
  name = 'FatalError';
}
dispatch.registerErrorType(FatalError, Status.PERMANENT_ERROR);
const failFast = dispatch.function(function failFast() {
  console.log('failFast: giving up');
  throw new FatalError('this can never work');
});

// dispatch.registerOutputType: a result that says "not yet" is retried.
class Result {
  /** @param {boolean} success */
  constructor(success) {
    this.success = success;
  }
}
dispatch.registerOutputType(Result, (result) => (result.success ? Status.OK : Status.TEMPORARY_ERROR));
let checks = 0;
const checkUntilReady = dispatch.function(function checkUntilReady() {
  checks++;
  console.log(`checkUntilReady: check #${checks}: ${checks >= 3 ? 'ready' : 'not yet'}`);
  return new Result(checks >= 3);
});

// dispatch.run: serves the endpoint, then calls main.
await dispatch.run(async () => {
  // The API client: the same scheduler, to wait for calls and look at them.
  const { config, registry } = dispatch.defaultDispatch();
  const client = new DispatchClient({ apiUrl: config.apiUrl, apiKey: config.apiKey, registry });
  /** Waits for a call and describes how it ended. */
  const outcome = async (/** @type {string} */ id) => {
    const r = await client.wait(id, { timeoutMs: 60_000 });
    if (!r.done) throw new Error(`call ${id} did not finish in time`);
    const { attempts } = await client.get(id);
    return {
      status: r.statusName,
      attempts,
      ...(r.value !== undefined ? { output: r.value } : {}),
      ...(r.error ? { error: `${r.error.name}: ${r.error.message}` } : {}),
    };
  };

  const names = ['Jane', 'Mike', 'Hopper'];
  const ids = {
    greet: await greet.dispatch('Ada'),
    greetEveryone: await greetEveryone.dispatch(names),
    collectGreetings: await collectGreetings.dispatch(names),
    failFast: await failFast.dispatch(),
    checkUntilReady: await checkUntilReady.dispatch(),
  };
  /** @type {Record<string, Awaited<ReturnType<typeof outcome>>>} */
  const summary = {};
  for (const [name, id] of Object.entries(ids)) summary[name] = await outcome(id);
  for (const [name, o] of Object.entries(summary)) {
    console.log(`${name}: ${o.status} after ${o.attempts} attempt(s)${o.error ? ` (${o.error})` : ''}`);
  }
  // The batch's greetings run on their own: wait for them too.
  const greetings = await Promise.all(/** @type {string[]} */ (summary.greetEveryone?.output ?? []).map(outcome));
  console.log(`greetEveryone's ${greetings.length} greetings: ${greetings.map((o) => o.status).join(', ')}`);
  console.log(`summary ${JSON.stringify({ ...summary, batchGreetings: greetings })}`);
  // Done: stop serving, as Ctrl-C would (in-flight runs finish first).
  if (!process.argv.includes('--serve')) process.kill(process.pid, 'SIGTERM');
});
