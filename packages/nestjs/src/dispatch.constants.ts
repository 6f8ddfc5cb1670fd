/**
 * Injection tokens and metadata keys of `@dispatch/nestjs`.
 * @module
 */

/**
 * Injection token of the module's options (what `forRoot` got, or what the
 * `forRootAsync` factory returned).
 * @example constructor(@Inject(DISPATCH_MODULE_OPTIONS) options: DispatchModuleOptions) {}
 */
export const DISPATCH_MODULE_OPTIONS = 'DISPATCH_MODULE_OPTIONS';

/**
 * Metadata key that `@DispatchFunction()` sets on a method.
 * @example Reflect.getMetadata(DISPATCH_FUNCTION_METADATA, Billing.prototype.charge)
 */
export const DISPATCH_FUNCTION_METADATA = 'dispatch:function';

/**
 * Injection token of how the endpoint mounts on the app's platform (the
 * adapter package loaded for it), internal to the module.
 * @example constructor(@Inject(DISPATCH_PLATFORM_MOUNT) mount: PlatformMount | null) {}
 */
export const DISPATCH_PLATFORM_MOUNT = 'DISPATCH_PLATFORM_MOUNT';
