import { DispatchFunction } from '@dispatch/nestjs';
import { Injectable, Logger } from '@nestjs/common';
import { DnsVerification } from './statuses';
import { Database, DnsProvider } from './world';

/** Connecting a custom domain: wait for the user's DNS records, then mark it connected. */
@Injectable()
export class Domains {
  private readonly logger = new Logger('Domains');

  constructor(
    private readonly dns: DnsProvider,
    private readonly db: Database,
  ) {}

  /** Returns a DnsVerification; until it is verified, Dispatch retries this function. */
  @DispatchFunction()
  async waitForDnsRecords(domain: string): Promise<DnsVerification> {
    const check = new DnsVerification(domain, await this.dns.fetchDnsRecords(domain));
    this.logger.log(`${domain}: ${check.verified ? 'DNS records verified' : `waiting for ${check.missing.join(', ')}`}`);
    return check;
  }

  @DispatchFunction()
  async markDomainAsConnected(domain: string): Promise<void> {
    this.db.connectedDomains.push(domain);
    this.logger.log(`${domain}: connected`);
  }

  /** Inside a Dispatch function, `await this.method(...)` is a durable call. */
  @DispatchFunction()
  async connectDomain(domain: string): Promise<string> {
    await this.waitForDnsRecords(domain);
    await this.markDomainAsConnected(domain);
    return `${domain} is connected`;
  }
}
