-- Whether a dispatcher pinned the visit (`Pinned`), so that a booking's repair reads it with
-- the visit's other columns instead of parsing every body.
ALTER TABLE work_orders ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE work_orders SET pinned = TRUE WHERE body->'Pinned' = 'true'::jsonb;
