/**
 * The outside world of the example, simulated: a DNS provider whose records
 * show up after a few lookups, a maintenance window, users, a mailer, and a
 * database of connected domains. Each is a Nest provider.
 */
import { Injectable } from '@nestjs/common';

/** A DNS record the user must add; `value` is empty until they do. */
export interface DnsRecord {
  type: string;
  name: string;
  value: string;
}

@Injectable()
export class DnsProvider {
  /** Lookups per domain. */
  readonly lookups = new Map<string, number>();
  /** The records appear on this lookup (the user takes a while to add them). */
  readonly recordsAppearOnLookup = 3;

  async fetchDnsRecords(domain: string): Promise<DnsRecord[]> {
    const n = (this.lookups.get(domain) ?? 0) + 1;
    this.lookups.set(domain, n);
    const added = n >= this.recordsAppearOnLookup;
    return [
      { type: 'TXT', name: `_dispatch-verify.${domain}`, value: added ? 'verify=4f9c2a' : '' },
      { type: 'CNAME', name: `www.${domain}`, value: added ? 'sites.example.net' : '' },
    ];
  }
}

@Injectable()
export class MaintenanceWindow {
  /** Checks answered "in maintenance" before the app is back up. */
  remaining = 2;

  isOn(): boolean {
    if (this.remaining <= 0) return false;
    this.remaining--;
    return true;
  }
}

export interface User {
  id: string;
  email: string;
  deactivated: boolean;
}

@Injectable()
export class UsersRepository {
  private readonly users = new Map<string, User>([
    ['ada', { id: 'ada', email: 'ada@example.com', deactivated: false }],
    ['mallory', { id: 'mallory', email: 'mallory@example.com', deactivated: true }],
  ]);

  async find(id: string): Promise<User> {
    const user = this.users.get(id);
    if (!user) throw new Error(`no user ${id}`);
    return user;
  }
}

@Injectable()
export class Mailer {
  readonly sent: string[] = [];

  async send(to: string, subject: string): Promise<void> {
    this.sent.push(`${to}: ${subject}`);
  }
}

@Injectable()
export class Database {
  readonly connectedDomains: string[] = [];
}
