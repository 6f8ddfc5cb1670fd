/**
 * A durable call awaited outside a Dispatch function: the error says how to
 * start it instead, in the words of the framework that registered it.
 */
import { describe, expect, it } from 'vitest';
import { Dispatch } from './dispatch.js';

const silent = { warn() {}, error() {}, info() {} };

describe('a durable call awaited outside a Dispatch function', () => {
  const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent });

  it('says to dispatch it', async () => {
    const charge = dispatch.function(async function charge(user: string) {
      return `receipt for ${user}`;
    });
    await expect(charge('u1')).rejects.toThrow(
      'the call charge(...) was awaited outside a Dispatch function; only a running Dispatch function can await another one. ' +
        'To start it from elsewhere use charge.dispatch(...), or add it to dispatch.batch()',
    );
  });

  it("gives the startHint of the function's registration instead when it has one", async () => {
    const refund = dispatch.function({ name: 'refund', startHint: 'call refundService.start(user)' }, async (user: string) => user);
    await expect(refund('u1')).rejects.toThrow(/To start it from elsewhere call refundService\.start\(user\)$/);
  });
});
