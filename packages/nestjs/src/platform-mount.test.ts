import { describe, expect, it } from 'vitest';
import { loadAdapter, loadPlatformMount } from './platform-mount.js';

describe('the platform adapters, optional peers', () => {
  it('loads the adapter of the platform', async () => {
    expect(typeof (await loadPlatformMount('express'))).toBe('function');
    expect(typeof (await loadPlatformMount('fastify'))).toBe('function');
  });

  it('says which adapter to install when it is missing, and refuses a platform it does not know', async () => {
    const missing = '@dispatch/not-installed';
    await expect(loadAdapter(missing, 'express', () => import(missing))).rejects.toThrow(
      'this Nest app runs on the express platform, so @dispatch/nestjs mounts the Dispatch endpoint with @dispatch/not-installed, which is not installed: npm install @dispatch/not-installed (or pass { mount: false } to DispatchModule.forRoot() and serve the endpoint yourself)',
    );
    const broken = new Error('boom');
    await expect(loadAdapter('@dispatch/express', 'express', () => Promise.reject(broken))).rejects.toBe(broken);
    await expect(loadPlatformMount('koa')).rejects.toThrow(/mounts on the express and fastify platforms, not on "koa": pass \{ mount: false \}/);
  });
});
