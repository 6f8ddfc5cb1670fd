import { DispatchFunction } from '@dispatch/nestjs';
import { Injectable, Logger } from '@nestjs/common';
import { MaintenanceError, UserDeactivated } from './statuses';
import { Mailer, MaintenanceWindow, UsersRepository } from './world';

/** Notifying a user: retried through maintenance windows, never for a deactivated user. */
@Injectable()
export class Notifications {
  private readonly logger = new Logger('Notifications');

  constructor(
    private readonly users: UsersRepository,
    private readonly maintenance: MaintenanceWindow,
    private readonly mailer: Mailer,
  ) {}

  @DispatchFunction()
  async notifyUser(userId: string): Promise<void> {
    const user = await this.users.find(userId);
    if (user.deactivated) {
      this.logger.warn(`${userId}: deactivated, giving up`);
      throw new UserDeactivated(userId); // PERMANENT_ERROR: not retried
    }
    if (this.maintenance.isOn()) {
      this.logger.warn(`${userId}: in maintenance, will retry`);
      throw new MaintenanceError(); // TEMPORARY_ERROR: retried
    }
    await this.mailer.send(user.email, 'Your domain is ready');
    this.logger.log(`${userId}: notified`);
  }
}
