import { DispatchModule } from '@dispatch/nestjs';
import { Module } from '@nestjs/common';
import { AppController } from './app.controller';
import { Domains } from './domains.service';
import { Notifications } from './notifications.service';
import { Database, DnsProvider, Mailer, MaintenanceWindow, UsersRepository } from './world';

@Module({
  // Configured from DISPATCH_* variables, which `dispatch run` sets.
  imports: [DispatchModule.forRoot({})],
  providers: [Domains, Notifications, DnsProvider, MaintenanceWindow, UsersRepository, Mailer, Database],
  controllers: [AppController],
})
export class AppModule {}
