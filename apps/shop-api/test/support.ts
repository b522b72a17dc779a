import { startApi as start, type TestApi } from '#libs/testing';
import { createApp } from '../src/app.js';

export const startApi = (overrides: Record<string, string> = {}): Promise<TestApi> => start(createApp, overrides);
