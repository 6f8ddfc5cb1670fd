/**
 * Setup of every test file (vitest.config.ts): a test that makes no
 * assertion fails ("expected any number of assertion, but got none"), so a
 * test cannot pass by returning early or by never reaching its `expect`
 * calls. A test that checks by throwing states what it checked with `expect`
 * as well.
 */
import { beforeEach, expect } from 'vitest';

beforeEach(() => {
  expect.hasAssertions();
});
