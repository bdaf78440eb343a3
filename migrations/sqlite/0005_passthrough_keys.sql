-- Pass-through bookings: the Idempotency-Key sent to the third party (the same on every
-- attempt of one booking), until when a pending claim's call may still be under way (after
-- that its outcome is unknown, and the same request sends it again with the same key), and
-- the third party's answer as received, replayed byte for byte.
ALTER TABLE followups ADD COLUMN outbound_key TEXT;
ALTER TABLE followups ADD COLUMN lease_until BIGINT;
ALTER TABLE followups ADD COLUMN answer_raw TEXT;
