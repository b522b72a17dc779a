/**
 * Product reads over HTTP: validators, freshness and the hot read route (issue 17, docs/q1-hot-products.md,
 * docs/adr/0004-hot-product-route.md).
 *
 * - The body of a product read is the bytes ProductCache encoded when the product entered L1 (JSON + a
 *   strong ETag); nothing serializes them again on an L1 hit.
 * - `If-None-Match` (weak comparison, RFC 9110 §13.1.2) that matches the current ETag → 304 with the same
 *   validators and freshness headers and no body. A header that does not parse matches nothing: the
 *   full 200 is always a correct answer.
 * - Anonymous reads are `public, max-age=CACHE_HTTP_MAX_AGE_S, stale-while-revalidate=CACHE_HTTP_SWR_S`:
 *   a browser or an edge may serve them that long after a write (the staleness budget). A request that
 *   carries a user's token (Authorization or X-Consistency-Token) asked for read-your-writes or may be
 *   personal: `private, no-store`. `Vary` names both headers so a shared cache never answers one with the other.
 * - The hot route: a Fastify onRequest hook on GET /products/:id that answers anonymous, token-less reads
 *   itself (the same ProductsService.read → ProductCache, the same headers) before Nest's pipeline
 *   (interceptors, the consistency scope's AsyncLocalStorage, pipes, the serializer) runs. Everything
 *   else falls through to the Nest controller: requests with a token (the consistency scope is needed),
 *   malformed ids (the 400), and any read that failed (the error shape). Global hooks still run: the
 *   request id (onRequest, registered first) and the latency histogram (onResponse).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, type AppConfig } from '#libs/core';
import { encodeProduct, type CacheResult, type Encoded } from '#libs/cache';
import { CONSISTENCY_HEADER } from '../http/consistency.interceptor.js';
import { toErrorBody } from '../http/error.filter.js';
import type { Product } from './products.repository.js';
import type { ProductsService } from './products.service.js';

export const PRODUCT_ROUTE = '/products/:id';
export const PRODUCT_VARY = 'Authorization, X-Consistency-Token';
const MAX_IF_NONE_MATCH = 4096;

type Headers = Record<string, string | string[] | undefined>;

/** A request whose answer may depend on who asks or on what they wrote: never stored by a cache. */
export function isPersonal(headers: Headers): boolean {
  return headers.authorization !== undefined || headers[CONSISTENCY_HEADER] !== undefined;
}

/** The Cache-Control of a product read (max-age 0 and swr 0: every use revalidates with the ETag). */
export function productCacheControl(http: Pick<AppConfig['cache'], 'httpMaxAgeS' | 'httpSwrS'>, personal: boolean): string {
  if (personal) return 'private, no-store';
  if (http.httpMaxAgeS === 0 && http.httpSwrS === 0) return 'public, no-cache';
  return `public, max-age=${http.httpMaxAgeS}${http.httpSwrS > 0 ? `, stale-while-revalidate=${http.httpSwrS}` : ''}`;
}

/**
 * RFC 9110 §13.1.2: `*`, or a list of entity tags compared weakly (W/"x" matches "x"). Only well-formed
 * tags (`"..."` without quotes inside) can match; garbage, oversize headers and empty lists match nothing.
 */
export function ifNoneMatch(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value.length > MAX_IF_NONE_MATCH) return false;
  if (value.trim() === '*') return true;
  const opaque = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const part of value.split(',')) {
    const t = part.trim();
    const tag = t.startsWith('W/') ? t.slice(2) : t;
    if (tag.length >= 2 && tag === opaque) return true;
  }
  return false;
}

/** The encoded response of a read result: L1's, or made now (l2/off modes, a fill L1 refused). */
export function encodedOf(r: CacheResult<Product>): Encoded | null {
  return r.encoded ?? (r.value ? encodeProduct(r.value) : null);
}

/** Sets the validators and freshness headers; true when the client's copy is current (answer 304). */
export function productHeaders(reply: FastifyReply, headers: Headers, enc: Encoded, source: string, cacheControl: string): boolean {
  void reply.header('x-cache', source).header('etag', enc.etag).header('cache-control', cacheControl).header('vary', PRODUCT_VARY);
  return ifNoneMatch(headers['if-none-match'], enc.etag);
}

/** Registers the hot read route's hook; call before app.init() (Nest registers its routes there). */
export function registerHotProductRoute(fastify: FastifyInstance, products: () => ProductsService, http: Pick<AppConfig['cache'], 'httpMaxAgeS' | 'httpSwrS'>): void {
  const publicControl = productCacheControl(http, false);
  const respond = (req: FastifyRequest, reply: FastifyReply, r: CacheResult<Product>): void => {
    const enc = encodedOf(r);
    if (!enc) {
      void reply.header('x-cache', r.source).code(404).header('content-type', 'application/json; charset=utf-8').send(toErrorBody(ApiError.notFound('product'), req.id).body);
    } else if (productHeaders(reply, req.headers, enc, r.source, publicControl)) {
      void reply.code(304).send();
    } else {
      void reply.header('content-type', 'application/json; charset=utf-8').send(enc.body);
    }
  };
  // Callback style, not async: an L1 hit is answered in the same tick, without a promise or a microtask;
  // only the reads L1 does not hold wait for the cache. Not calling `done` after a reply ends the hooks.
  const hot = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    if (isPersonal(req.headers)) return done(); // Nest: consistency scope, remembered user token
    const id = (req.params as { id: string }).id;
    let local: CacheResult<Product> | undefined;
    try {
      local = products().readLocal(id);
    } catch {
      return done(); // a malformed id: Nest answers the 400 in the error shape
    }
    if (local) return respond(req, reply, local);
    products()
      .read(id)
      .then(
        (r) => respond(req, reply, r),
        () => done(), // Nest answers it again, in the error shape (503…)
      )
      .catch((e: Error) => done(e)); // as an async hook's throw: Fastify's error handler
  };
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (route.url !== PRODUCT_ROUTE || !methods.includes('GET')) return;
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [...existing, hot];
  });
}
