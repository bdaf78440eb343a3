-- Whether a dispatcher pinned the visit (`Pinned`), so that a booking's repair reads it with
-- the visit's other columns instead of parsing every body. 0/1 as every boolean here.
ALTER TABLE work_orders ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
UPDATE work_orders SET pinned = 1 WHERE json_extract(body, '$.Pinned') = 1;
