import { DispatchService } from '@dispatch/nestjs';
import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { Domains } from './domains.service';
import { Notifications } from './notifications.service';

@Controller()
export class AppController {
  constructor(
    private readonly domains: Domains,
    private readonly notifications: Notifications,
    private readonly dispatch: DispatchService,
  ) {}

  /** Starts connecting a domain; answers at once with the call's dispatch ID. */
  @Post('domains/:domain/connect')
  @HttpCode(202)
  async connect(@Param('domain') domain: string) {
    return { dispatchId: await this.dispatch.dispatch(this.domains.connectDomain, domain) };
  }

  @Post('users/:id/notify')
  @HttpCode(202)
  async notify(@Param('id') id: string) {
    return { dispatchId: await this.dispatch.dispatch(this.notifications.notifyUser, id) };
  }
}
