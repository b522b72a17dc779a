-- A pending idempotency key is a lease, not a lock for a day: claimed_at/lease_until (the shard's clock)
-- say until when its claimer may still finish, and order_id (the id the attempt will write, fresh for each
-- claim) is the owner token. A retry after lease_until takes the key over with a conditional UPDATE on the
-- old order_id, so two retriers cannot both win, and the order write completes the key only while its
-- order_id is still the key's: a claimer that lost its key cannot write an order any more.
-- Rows claimed before this migration have no lease and are never taken over (they expire with the purge).

ALTER TABLE idempotency_keys
  ADD COLUMN claimed_at  DATETIME(3) NULL AFTER order_id,
  ADD COLUMN lease_until DATETIME(3) NULL AFTER claimed_at;
