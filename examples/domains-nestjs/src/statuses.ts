/**
 * What the scheduler should do with this app's errors and results, seed
 * style (the seeds' mistakes corrected: the deactivated user registers
 * `UserDeactivated`, and an unverified DNS check is a TEMPORARY_ERROR).
 */
import { registerErrorType, registerOutputType, Status } from '@dispatch/core';
import type { DnsRecord } from './world';

/** The app is in maintenance mode: retry later. */
export class MaintenanceError extends Error {
  override name = 'MaintenanceError';
  constructor() {
    super('the application is in maintenance mode');
  }
}
registerErrorType(MaintenanceError, Status.TEMPORARY_ERROR);

/** The user is deactivated: retrying cannot help. */
export class UserDeactivated extends Error {
  override name = 'UserDeactivated';
  constructor(readonly userId: string) {
    super(`user ${userId} is deactivated`);
  }
}
registerErrorType(UserDeactivated, Status.PERMANENT_ERROR);

/** The result of a DNS check: verified once every required record has a value. */
export class DnsVerification {
  readonly verified: boolean;
  readonly missing: string[];
  constructor(
    readonly domain: string,
    records: DnsRecord[],
  ) {
    this.missing = records.filter((record) => record.value === '').map((record) => record.name);
    this.verified = this.missing.length === 0;
  }
}
// A successful lookup that found no records yet is retried, until verified.
registerOutputType(DnsVerification, (check) => (check.verified ? Status.OK : Status.TEMPORARY_ERROR));
