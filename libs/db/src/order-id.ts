/**
 * Shard-aware 64-bit order ids: | 41 bits ms since 2025-01-01 | 10 bits bucket | 12 bits sequence |.
 * Time-ordered (keyset pagination and month partitions follow the id), and the bucket bits mean an id
 * alone finds its shard without a lookup (Instagram's scheme; Snowflake's layout). 63 bits fit a signed
 * BIGINT; ids travel as strings in JSON because JavaScript numbers lose precision past 2^53.
 */
export const ORDER_ID_EPOCH_MS = Date.UTC(2025, 0, 1);
export const BUCKET_BITS = 10;
export const SEQUENCE_BITS = 12;
export const BUCKETS = 1 << BUCKET_BITS;
const SEQ_MASK = (1 << SEQUENCE_BITS) - 1;

export interface DecodedOrderId {
  timestampMs: number;
  bucket: number;
  sequence: number;
}

export function encodeOrderId(timestampMs: number, bucket: number, sequence: number): bigint {
  if (bucket < 0 || bucket >= BUCKETS) throw new RangeError(`bucket ${bucket} out of range`);
  return (
    (BigInt(timestampMs - ORDER_ID_EPOCH_MS) << BigInt(BUCKET_BITS + SEQUENCE_BITS)) |
    (BigInt(bucket) << BigInt(SEQUENCE_BITS)) |
    BigInt(sequence & SEQ_MASK)
  );
}

export function decodeOrderId(id: bigint | string): DecodedOrderId {
  const v = BigInt(id);
  return {
    timestampMs: Number(v >> BigInt(BUCKET_BITS + SEQUENCE_BITS)) + ORDER_ID_EPOCH_MS,
    bucket: Number((v >> BigInt(SEQUENCE_BITS)) & BigInt(BUCKETS - 1)),
    sequence: Number(v & BigInt(SEQ_MASK)),
  };
}

/** A valid order id string: digits only, positive, at most 63 bits. */
export function parseOrderId(raw: string): bigint | null {
  if (!/^[1-9][0-9]{0,18}$/.test(raw)) return null;
  const v = BigInt(raw);
  return v < 1n << 63n ? v : null;
}

/**
 * Generates ids for one process. The sequence is per millisecond; when it overflows, or when the clock
 * steps backwards, we keep issuing from the last timestamp we used (never reusing a (ms, seq) pair) until
 * the wall clock catches up. Across processes, uniqueness comes from the sequence start being random and
 * from the (id, created_at) primary key, which turns the vanishingly rare collision into a retried insert.
 */
export class OrderIdGenerator {
  private lastMs = 0;
  private seq = Math.floor(Math.random() * (SEQ_MASK + 1));

  next(bucket: number, now = Date.now()): bigint {
    if (now > this.lastMs) {
      this.lastMs = now;
    } else {
      this.seq = (this.seq + 1) & SEQ_MASK;
      if (this.seq === 0) this.lastMs += 1; // overflow (or clock went back): borrow the next millisecond
    }
    return encodeOrderId(this.lastMs, bucket, this.seq);
  }
}
