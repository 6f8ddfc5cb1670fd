import { describe, expect, it } from 'vitest';
import { unknownFunctionMessage } from './unknown-function.js';

describe('the 404 of an unknown function', () => {
  const names = ['checkout', 'chargeCreditCard', 'sendEmailConfirmation', 'Billing.refund'];

  it('suggests the closest name when it looks like a typo, and lists the functions sorted', () => {
    expect(unknownFunctionMessage('chekout', names)).toBe(
      'function "chekout" does not exist on this endpoint: did you mean checkout? (its functions: Billing.refund, chargeCreditCard, checkout, sendEmailConfirmation)',
    );
    expect(unknownFunctionMessage('chcekout', names)).toMatch(/did you mean checkout\?/); // a transposition
    expect(unknownFunctionMessage('billing.Refund', names)).toMatch(/did you mean Billing\.refund\?/); // case
    expect(unknownFunctionMessage('sendEmail', names)).not.toMatch(/did you mean/); // too far to be a typo
  });

  it('says when there is nothing to call, and cuts a long list', () => {
    expect(unknownFunctionMessage('a', [])).toBe('function "a" does not exist on this endpoint: it has no functions registered');
    const many = Array.from({ length: 25 }, (_, i) => `fn${String(i).padStart(2, '0')}`);
    expect(unknownFunctionMessage('zzz', many)).toMatch(/\(its functions: fn00, .*, fn19, and 5 more\)$/);
  });
});
