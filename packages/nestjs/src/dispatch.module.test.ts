// DispatchModule without HTTP: registration of decorated methods, names,
// request-scoped providers, forRootAsync, DispatchService. The endpoint on
// both platforms, driven by a real scheduler, is in dispatch.module.e2e.test.ts.
import 'reflect-metadata';
import { Dispatch, DurableCall } from '@dispatch/core';
import { Inject, Injectable, type LoggerService, Module, Scope } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { DISPATCH_MODULE_OPTIONS } from './dispatch.constants.js';
import { DispatchFunction } from './dispatch-function.decorator.js';
import { DispatchModule } from './dispatch.module.js';
import type { DispatchModuleOptions } from './dispatch-module-options.interface.js';
import { DispatchService } from './dispatch.service.js';

const quiet = { warn() {}, error() {}, info() {} };
const instanceOptions = { endpointUrl: 'http://127.0.0.1:1', verificationKey: null, logger: quiet, env: {} } as const;

class Mailer {
  sent: string[] = [];
}

@Injectable()
class Billing {
  constructor(readonly mailer: Mailer) {}

  @DispatchFunction()
  async charge(userId: string): Promise<string> {
    return `receipt_${userId}`;
  }

  @DispatchFunction('checkout')
  async checkout(userId: string, orderId: string): Promise<string> {
    const receipt = await this.charge(userId);
    return `${orderId}:${receipt}`;
  }

  @DispatchFunction({ name: 'Billing.refund_v2', expiration: '10m' })
  async refund(_receipt: string): Promise<void> {}

  plain(): string {
    return 'not a Dispatch function';
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerRequest {
  @DispatchFunction()
  async work(): Promise<void> {}
}

function recordingLogger() {
  const warnings: string[] = [];
  const logger: LoggerService = {
    log() {},
    error() {},
    warn: (message: unknown) => void warnings.push(String(message)),
    debug() {},
    verbose() {},
  };
  return { logger, warnings };
}

describe('DispatchModule', () => {
  it('registers decorated methods at bootstrap under ClassName.method or the given name', async () => {
    @Module({ imports: [DispatchModule.forRoot(instanceOptions)], providers: [Mailer, Billing] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const dispatch = app.get(Dispatch);
    expect(dispatch.functionNames.sort()).toEqual(['Billing.charge', 'Billing.refund_v2', 'checkout']);
    // Constructor injection works (decorator metadata is emitted).
    expect(app.get(Billing).mailer).toBeInstanceOf(Mailer);
    await app.close();
  });

  it('puts the Dispatch handle in place of the method on the instance, bound to it', async () => {
    @Module({ imports: [DispatchModule.forRoot(instanceOptions)], providers: [Mailer, Billing] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const billing = app.get(Billing);
    const call = billing.charge('u1') as unknown;
    expect(call).toBeInstanceOf(DurableCall);
    expect((call as DurableCall<string>).function).toBe('Billing.charge');
    expect(billing.plain()).toBe('not a Dispatch function');
    // Awaited outside a Dispatch function, a call says what to do instead, the Nest way.
    await expect(billing.charge('u1')).rejects.toThrow(
      'the call Billing.charge(...) was awaited outside a Dispatch function; only a running Dispatch function can await another one. ' +
        'To start it from elsewhere inject DispatchService (from @dispatch/nestjs) and call dispatchService.dispatch(this.billing.charge, ...args), ' +
        'or dispatchService.call(this.billing.charge, ...args) for a batch',
    );
    await app.close();
  });

  it('warns about request-scoped providers and does not register their methods', async () => {
    @Module({ imports: [DispatchModule.forRoot(instanceOptions)], providers: [PerRequest] })
    class AppModule {}
    const { logger, warnings } = recordingLogger();
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    expect(app.get(Dispatch).functionNames).toEqual([]);
    expect(warnings.join('\n')).toMatch(/PerRequest\.work is decorated with @DispatchFunction\(\) but PerRequest is request-scoped/);
    await app.close();
  });

  it('forRootAsync builds the options with a factory and injected providers from imported modules', async () => {
    @Injectable()
    class Config {
      readonly endpointUrl = 'http://app.internal:8000';
    }
    @Module({ providers: [Config], exports: [Config] })
    class ConfigModule {}
    @Module({
      imports: [
        DispatchModule.forRootAsync({
          imports: [ConfigModule],
          inject: [Config],
          useFactory: async (config: Config) => ({ ...instanceOptions, endpointUrl: config.endpointUrl, prefix: '/d' }),
        }),
      ],
      providers: [Mailer, Billing],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    expect(app.get(Dispatch).config.endpointUrl).toBe('http://app.internal:8000');
    expect(app.get<DispatchModuleOptions>(DISPATCH_MODULE_OPTIONS).prefix).toBe('/d');
    expect(app.get(Dispatch).hasFunction('checkout')).toBe(true);
    await app.close();
  });

  it('is global: any module can inject Dispatch and DispatchService', async () => {
    @Injectable()
    class Consumer {
      constructor(
        readonly dispatch: Dispatch,
        @Inject(DispatchService) readonly service: DispatchService,
      ) {}
    }
    @Module({ providers: [Consumer] })
    class FeatureModule {}
    const instance = new Dispatch(instanceOptions);
    @Module({ imports: [DispatchModule.forRoot({ instance }), FeatureModule] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    expect(app.get(Consumer).dispatch).toBe(instance);
    expect(app.get(Consumer).service.instance).toBe(instance);
    await app.close();
  });

  it('DispatchService finds the Dispatch function of a decorated method, typed after it', async () => {
    @Module({ imports: [DispatchModule.forRoot(instanceOptions)], providers: [Mailer, Billing] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const service = app.get(DispatchService);
    const billing = app.get(Billing);
    const checkout = service.functionOf(billing.checkout);
    expect(checkout.functionName).toBe('checkout');
    expectTypeOf(checkout.dispatch).parameters.toEqualTypeOf<[string, string]>();
    expectTypeOf(service.call(billing.charge, 'u1')).toEqualTypeOf<DurableCall<string>>();
    expect(service.call(billing.charge, 'u1').function).toBe('Billing.charge');
    // @ts-expect-error the arguments are checked against the method's signature.
    expect(() => service.call(billing.charge, 42)).not.toThrow();
    expect(() => service.functionOf(billing.plain)).toThrow(/plain is not a Dispatch function: decorate the method with @DispatchFunction\(\)/);
    expect(() => service.functionOf(Billing.prototype.charge)).toThrow(/not a Dispatch function/);
    await app.close();
  });
});
