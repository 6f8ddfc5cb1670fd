/**
 * `dispatch.waitForSignal()` through the protocol (issue 15), with RunRequest
 * objects as a scheduler that supports signals sends them: the Poll carries
 * `signal_waits`; a CallResult with a wait's correlation ID delivers the
 * payload; a wake past the deadline throws a TimeoutError in the function;
 * replay (no warm cache) gives the same answers; a changed timeout does not
 * make the journal diverge.
 */
import { describe, expect, it } from 'vitest';
import { decodeValue, encodeArgs, encodeValue } from '../serde/serde.js';
import { Status } from '../status/status.js';
import { Dispatch } from './dispatch.js';

const silent = { warn() {}, error() {}, info() {} };

function app(now: () => number, timeout = '10s') {
  const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent, cache: false, now });
  dispatch.function(async function approve() {
    const note = await dispatch.waitForSignal<string>('note');
    try {
      const decision = await dispatch.waitForSignal<boolean>('decision', { timeout });
      return { note, decision };
    } catch (err) {
      return { note, timedOut: (err as Error).name, message: (err as Error).message };
    }
  });
  return dispatch;
}

describe('dispatch.waitForSignal through the protocol', () => {
  it('asks for the signal in the Poll and returns the payload of the CallResult that answers it', async () => {
    let t = 1_000_000;
    const d = app(() => t);
    const first = await d.runRequest({ function: 'approve', dispatchId: 'A1', input: encodeArgs([]), supportsSignals: true });
    expect(first.status).toBe(Status.OK);
    const [wait] = first.poll?.signalWaits ?? [];
    expect(wait?.name).toBe('note');
    expect(first.poll?.calls ?? []).toHaveLength(0);
    expect(first.poll?.minResults).toBe(1);

    const second = await d.runRequest({
      function: 'approve',
      dispatchId: 'A1',
      supportsSignals: true,
      pollResult: { typedCoroutineState: first.poll?.typedCoroutineState, results: [{ correlationId: wait!.correlationId, output: encodeValue('hi') }] },
    });
    const [decision] = second.poll?.signalWaits ?? [];
    expect(decision?.name).toBe('decision');
    // A 10 s timeout: the scheduler wakes the function by then at the latest.
    expect(Number(second.poll?.maxWait?.seconds)).toBe(10);

    // A new deploy with another timeout, past the recorded deadline: the journal still matches, the wait times out.
    t += 11_000;
    const d2 = app(() => t, '1h');
    const third = await d2.runRequest({ function: 'approve', dispatchId: 'A1', supportsSignals: true, pollResult: { typedCoroutineState: second.poll?.typedCoroutineState, results: [] } });
    expect(third.status).toBe(Status.OK);
    expect(decodeValue(third.exit?.result?.output)).toEqual({ note: 'hi', timedOut: 'TimeoutError', message: 'no signal "decision" arrived for A1 within 1h' });
  });

  it('lets a result win over the timeout of the same wait when both are due', async () => {
    let t = 5_000_000;
    const d = app(() => t);
    const first = await d.runRequest({ function: 'approve', dispatchId: 'B1', input: encodeArgs([]), supportsSignals: true });
    const note = first.poll!.signalWaits![0]!;
    const second = await d.runRequest({
      function: 'approve',
      dispatchId: 'B1',
      supportsSignals: true,
      pollResult: { typedCoroutineState: first.poll?.typedCoroutineState, results: [{ correlationId: note.correlationId, output: encodeValue('n') }] },
    });
    const decision = second.poll!.signalWaits![0]!;
    t += 60_000;
    const third = await d.runRequest({
      function: 'approve',
      dispatchId: 'B1',
      supportsSignals: true,
      pollResult: { typedCoroutineState: second.poll?.typedCoroutineState, results: [{ correlationId: decision.correlationId, output: encodeValue(true) }] },
    });
    expect(decodeValue(third.exit?.result?.output)).toEqual({ note: 'n', decision: true });
  });

  it('refuses to wait outside a function', async () => {
    const d = app(() => 0);
    await expect(d.waitForSignal('x')).rejects.toThrow(/was called outside a Dispatch function: only a running Dispatch function can wait for a signal/);
    await expect(d.signal('', 'x')).rejects.toThrow(/needs the dispatch ID of the call to signal/);
  });
});
