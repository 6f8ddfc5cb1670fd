/**
 * The drive loop: runs an execution until it settles, diverges from its
 * journal, or blocks. Each turn waits for the function to be quiescent (its
 * microtasks drained, by `setImmediate`), then delivers what is due: a
 * recorded round when the function has reached its point (replay), the
 * results of the PollResult when it reaches the point of its poll, the
 * outcomes of inline steps, or due timers. The function is blocked when it
 * waits only on durable operations without outcomes and no inline work is
 * running; every call started in the same turn then goes out in one Poll.
 * @module
 */
import type { StatusRegistry } from '../status/registry.js';
import { deliver, dueTimers, outcomesOf, roundPoint } from './delivery.js';
import type { Execution } from './execution.js';
import { callsOfLastPoll } from './poll-plan.js';

/** Why the drive loop stopped: the function returned or threw, no longer matches its journal, or must suspend. */
export type DriveStop = 'settled' | 'diverged' | 'blocked';

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Drives `x` until it settles, diverges or blocks. */
export async function drive(x: Execution, host: { readonly registry: StatusRegistry; now(): number }): Promise<DriveStop> {
  for (;;) {
    await immediate();
    if (x.diverged) return 'diverged';
    if (x.settled) return 'settled';
    const round = x.replayRounds[0];
    const need = round ? roundPoint(round) : x.incoming?.at;
    if (need !== undefined) {
      if (x.started === need) {
        if (round) {
          x.replayRounds.shift();
          deliver(x, round, false, host.registry);
        } else {
          const incoming = x.incoming as NonNullable<Execution['incoming']>;
          x.incoming = undefined;
          if (incoming.resend) x.unsent.push(...callsOfLastPoll(x));
          // A result wins over the timeout of the same wait (a signal that arrived as its wait timed out).
          const results = outcomesOf(x, incoming.results);
          const answered = new Set(results.map((o) => o.position));
          deliver(x, [...results, ...dueTimers(x, host.now()).filter((o) => !answered.has(o.position))], true, host.registry);
        }
        continue;
      }
      if (x.started > need || x.blocked) {
        x.diverge(
          `the journal continues after operation ${need} but the code ` +
            (x.started > need ? `started ${x.started} operations first` : `waits after ${x.started} operations`),
        );
        continue;
      }
      await x.activity();
      continue;
    }
    if (x.ready.length) {
      deliver(x, x.ready.splice(0), true, host.registry);
      continue;
    }
    if (x.inlineRunning > 0) {
      await x.activity();
      continue;
    }
    if (x.pending.size > 0) {
      const due = dueTimers(x, host.now());
      if (due.length) {
        deliver(x, due, true, host.registry);
        continue;
      }
      return 'blocked';
    }
    await x.activity();
  }
}
