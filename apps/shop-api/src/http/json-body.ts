/**
 * The JSON body parser with a nesting limit. A body like `[[[[…]]]]` 2,000 levels deep parses fine, but
 * class-transformer and class-validator walk it recursively and blow the stack (a 500). Measuring the
 * depth on the raw bytes, before anything is built, answers 400 in the JSON error shape instead and
 * costs one linear scan. Strings that are not well-formed Unicode (a lone surrogate, which only a \uD8xx
 * escape can produce) answer 400 too: validators and the database driver throw on them; so does a bare
 * `null` body, which validation would let through as an empty update.
 * Everything else is Fastify's own parser: secure-json-parse with `__proto__` and
 * `constructor.prototype` refused, the empty-body and invalid-JSON errors, and the route's body limit.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '#libs/core';

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True when the JSON text nests objects/arrays deeper than `max` (brackets inside strings do not count). */
export function jsonDeeperThan(body: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return false;
}

type Done = (err: Error | null, body?: unknown) => void;

export function depthLimitedJsonParser(fastify: FastifyInstance, maxDepth: number) {
  const { onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig as { onProtoPoisoning?: string; onConstructorPoisoning?: string };
  const parse = fastify.getDefaultJsonParser((onProtoPoisoning ?? 'error') as 'error', (onConstructorPoisoning ?? 'error') as 'error');
  return (req: FastifyRequest, body: Buffer, done: Done) => {
    if (jsonDeeperThan(body, maxDepth)) {
      done(new ApiError(400, 'json_too_deep', `the JSON body nests objects and arrays deeper than ${maxDepth} levels`));
      return;
    }
    const text = body.toString('utf8');
    parse(req, text, (err, parsed) => {
      // ValidationPipe lets a null body through untouched: a PATCH would run as an empty update.
      if (!err && parsed === null) {
        done(new ApiError(400, 'bad_request', 'a JSON body must be an object or an array, not null'));
        return;
      }
      if (!err && LONE_SURROGATE_ESCAPE.test(text) && !wellFormed(parsed)) {
        done(new ApiError(400, 'bad_request', 'the JSON body contains a string that is not well-formed Unicode (a lone surrogate)'));
        return;
      }
      done(err, parsed);
    });
  };
}

const LONE_SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Every string (keys too) is well-formed Unicode. Depth is already bounded by the parser above. */
function wellFormed(v: unknown): boolean {
  if (typeof v === 'string') return !LONE_SURROGATE.test(v);
  if (Array.isArray(v)) return v.every(wellFormed);
  if (v && typeof v === 'object') return Object.entries(v).every(([k, x]) => !LONE_SURROGATE.test(k) && wellFormed(x));
  return true;
}
