import { cacheModes } from './cache-modes.js';
import type { Experiment } from './experiment.js';
import { redisDown } from './redis-down.js';
import { replicaKill } from './replica-kill.js';
import { replicaLag } from './replica-lag.js';
import { stampede } from './stampede.js';

export * from './experiment.js';
/** Every experiment the console and `npm run demo -- console-<name>` know, by name. */
export const EXPERIMENTS: ReadonlyMap<string, Experiment> = new Map([cacheModes, stampede, replicaLag, replicaKill, redisDown].map((e) => [e.name, e]));
