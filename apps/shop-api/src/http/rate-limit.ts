/**
 * Abuse limits shared by every API instance. Counters live in Redis (@fastify/rate-limit's Redis store:
 * one Lua INCR + PEXPIRE per check, a fixed window per key) on the noeviction instance, so a counter is
 * never evicted in the middle of its window. The table below says which route is limited by which keys;
 * a request over any of its limits answers 429 with Retry-After and the project's JSON error shape before
 * the handler (and its argon2 hash) runs.
 *
 * Keys: the client address (the socket's peer unless TRUST_PROXY names the proxies whose
 * X-Forwarded-For counts), the account's folded e-mail from the parsed body, the user of a valid access
 * token as TokenService sees it (an unverified `sub`, an SSE token or a revoked token would let others
 * spend a user's budget).
 *
 * Redis unreachable or slower than RATE_LIMIT_REDIS_TIMEOUT_MS: sign-in and sign-up fail open, because a
 * limiter outage must not lock every user out and the argon2 hash (a bounded pool) still caps how fast
 * passwords can be tried; upload creation and password change fail closed with 503, because an upload
 * needs the same Redis for its lock and its job anyway, and a password change can wait.
 *
 * Why createRateLimit() checkers rather than the plugin's per-route `config.rateLimit`: a route has one
 * such config and the plugin runs at most one of its hooks per request, while sign-in needs two counters
 * (account and address). The store prefixes a checker's keys with its route's method and url, which a
 * checker does not have: keys read `<RATE_LIMIT_PREFIX>undefinedundefined-<limit>:<key>`.
 */
import { createHash } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyRateLimit from '@fastify/rate-limit';
import { ApiError, createRedis, RedisClients, type AppConfig, type Logger, type RateLimit, withTimeout } from '#libs/core';
import { bearerToken } from '../auth/auth.guard.js';
import { TokenService } from '../auth/token.service.js';
import { toErrorBody } from './error.filter.js';

type Stage = 'onRequest' | 'preHandler';
type KeyOf = (req: FastifyRequest) => string | undefined | Promise<string | undefined>;

interface Limit {
  /** Counter name (part of the Redis key) and what the 429 message calls the request. */
  name: string;
  what: string;
  limit: RateLimit;
  key: KeyOf;
  /** onRequest when the key needs nothing from the body: refused before the body is read. */
  stage: Stage;
}

interface LimitedRoute {
  method: string;
  url: string;
  failOpen: boolean;
  limits: Limit[];
}

/**
 * Folds an e-mail the way the users table compares it (utf8mb4_unicode_ci: case- and accent-insensitive,
 * format characters ignored), or further: "Ada@x", "ÁDA@x" and "a\u00ADda@x" reach one account, so they
 * must share one counter. Hashed: no address is written into Redis key names.
 */
export function accountKey(email: string): string {
  const folded = email
    .normalize('NFKD')
    .replace(/[\p{M}\p{Cf}\p{Cc}\s]/gu, '')
    .toLowerCase()
    .replace(/ß/g, 'ss');
  return createHash('sha256').update(folded).digest('hex').slice(0, 32);
}

export function routesToLimit(config: AppConfig, userOf: KeyOf): LimitedRoute[] {
  const rl = config.rateLimit;
  // req.ip is undefined once the client's socket has gone (a request aborted mid-flight): no address, no key.
  const ip: KeyOf = (req) => (req.ip ? fastifyRateLimit.normalizeIP(req.ip) : 'gone');
  const account: KeyOf = (req) => {
    const email = (req.body as { email?: unknown } | undefined)?.email;
    return typeof email === 'string' ? accountKey(email) : undefined;
  };
  return [
    {
      method: 'POST',
      url: '/auth/sign-in',
      failOpen: true,
      limits: [
        { name: 'sign-in:ip', what: 'sign-in attempts from this address', limit: rl.signInPerIp, key: ip, stage: 'onRequest' },
        { name: 'sign-in:account', what: 'sign-in attempts for this account', limit: rl.signInPerAccount, key: account, stage: 'preHandler' },
      ],
    },
    {
      method: 'POST',
      url: '/auth/sign-up',
      failOpen: true,
      limits: [{ name: 'sign-up:ip', what: 'sign-ups from this address', limit: rl.signUpPerIp, key: ip, stage: 'onRequest' }],
    },
    // tus upload creation; a finished upload becomes a shorts job, so this also bounds job creation.
    {
      method: 'POST',
      url: '/shorts/uploads',
      failOpen: false,
      limits: [
        { name: 'upload:ip', what: 'uploads from this address', limit: rl.uploadPerIp, key: ip, stage: 'onRequest' },
        { name: 'upload:user', what: 'uploads for this user', limit: rl.uploadPerUser, key: userOf, stage: 'onRequest' },
      ],
    },
    {
      method: 'POST',
      url: '/me/password',
      failOpen: false,
      limits: [{ name: 'password:user', what: 'password changes for this user', limit: rl.passwordChangePerUser, key: userOf, stage: 'onRequest' }],
    },
  ];
}

/** Registers the limiter; call before app.init() (routes are matched as they are registered). */
export async function registerRateLimits(app: NestFastifyApplication, config: AppConfig, logger: Logger): Promise<void> {
  const rl = config.rateLimit;
  if (!rl.enabled) return;
  const fastify = app.getHttpAdapter().getInstance() as FastifyInstance;
  const queue = app.get(RedisClients).queue;
  const redis = rl.redisUrl === config.redis.queueUrl ? queue : createRedis(rl.redisUrl, { connectionName: 'shop-api-rate-limit' });
  if (redis !== queue) {
    redis.on('error', () => undefined);
    // Nothing is buffered client-side (every check is one round trip): disconnect, no QUIT that an unreachable server never answers.
    fastify.addHook('onClose', async () => redis.disconnect());
  }
  await fastify.register(fastifyRateLimit, { global: false, redis, nameSpace: rl.prefix, skipOnError: false });

  // The same check as the route's own (TokenService): an SSE token (it travels in URLs) or a token from
  // before a password change must not spend its owner's budget, or anyone holding one locks the owner out.
  const tokens = app.get(TokenService, { strict: false });
  const userOf: KeyOf = async (req) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) return undefined; // the route answers 401; the address limit still counts the request
    const user = await tokens.authenticate(token, 'access').catch(() => undefined);
    return user?.id;
  };

  const routes = routesToLimit(config, userOf);
  const matched = new Set<LimitedRoute>();
  fastify.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    for (const spec of routes) {
      if (route.url !== spec.url || !methods.includes(spec.method)) continue;
      matched.add(spec);
      for (const stage of ['onRequest', 'preHandler'] as const) {
        const limits = spec.limits.filter((l) => l.stage === stage && l.limit.max > 0);
        if (!limits.length) continue;
        const hook = limitHook(fastify, spec, limits, rl.redisTimeoutMs, logger);
        route[stage] = [...[route[stage] ?? []].flat(), hook] as any;
      }
    }
  });
  fastify.addHook('onReady', async () => {
    for (const spec of routes) if (!matched.has(spec)) logger.warn({ route: `${spec.method} ${spec.url}` }, 'a rate-limited route does not exist: its limits apply to nothing');
  });
}

function limitHook(fastify: FastifyInstance, spec: LimitedRoute, limits: Limit[], timeoutMs: number, logger: Logger) {
  const checkers = limits.map((l) => {
    const keys = new WeakMap<FastifyRequest, string>();
    const check = fastify.createRateLimit({ max: l.limit.max, timeWindow: l.limit.windowS * 1000, keyGenerator: (req) => keys.get(req)! });
    return { l, keys, check };
  });
  return async (req: FastifyRequest, reply: FastifyReply) => {
    // The tus route answers several methods; only creation is limited.
    if (req.method !== spec.method) return;
    for (const { l, keys, check } of checkers) {
      const key = await l.key(req);
      if (key === undefined) continue;
      keys.set(req, `${l.name}:${key}`);
      let result;
      try {
        result = await withTimeout(check(req), timeoutMs, 'rate limit store');
      } catch (err) {
        logger.warn({ err, limit: l.name, reqId: req.id }, spec.failOpen ? 'rate limit unavailable: request let through' : 'rate limit unavailable: request refused');
        if (spec.failOpen) return;
        const body = toErrorBody(new ApiError(503, 'unavailable', 'this action is unavailable for a moment: try again shortly'), req.id).body;
        return reply.code(503).header('retry-after', '5').send(body);
      }
      if (!result.isAllowed && result.isExceeded) {
        const after = Math.max(1, result.ttlInSeconds);
        const body = toErrorBody(new ApiError(429, 'too_many_requests', `too many ${l.what}: try again in ${after} s`), req.id).body;
        return reply.code(429).header('retry-after', String(after)).send(body);
      }
    }
  };
}

