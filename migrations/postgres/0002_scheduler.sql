-- The built-in scheduler: its set-up, the visit columns of work orders, follow-up records
-- (idempotency and history) and part orders.

ALTER TABLE work_orders ADD COLUMN busy_end BIGINT;
ALTER TABLE work_orders ADD COLUMN lat DOUBLE PRECISION;
ALTER TABLE work_orders ADD COLUMN lon DOUBLE PRECISION;
ALTER TABLE work_orders ADD COLUMN window_start BIGINT;
ALTER TABLE work_orders ADD COLUMN window_end BIGINT;
ALTER TABLE work_orders ADD COLUMN booked_by TEXT;

-- The database's own backstop against double booking (bookings also serialise on an advisory
-- lock, so this check never races with another booking).
CREATE FUNCTION work_orders_no_overlap() RETURNS trigger AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM work_orders w
    WHERE w.entity_id = NEW.entity_id AND w.user_name = NEW.user_name AND w.order_num <> NEW.order_num
      AND (w.order_status IS NULL OR w.order_status NOT IN (4096, 4097, 1001))
      AND w.planned_start IS NOT NULL
      AND w.planned_start < COALESCE(NEW.busy_end, NEW.planned_start + 60000)
      AND COALESCE(w.busy_end, w.planned_start + 60000) > NEW.planned_start) THEN
    RAISE EXCEPTION 'double booking: the technician already has a visit at that time'
      USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER work_orders_no_overlap BEFORE INSERT OR UPDATE ON work_orders
FOR EACH ROW
WHEN (NEW.booked_by = 'scheduler' AND NEW.user_name IS NOT NULL AND NEW.planned_start IS NOT NULL
      AND (NEW.order_status IS NULL OR NEW.order_status NOT IN (4096, 4097, 1001)))
EXECUTE FUNCTION work_orders_no_overlap();

CREATE TABLE sched_objects (
    entity_id  TEXT NOT NULL REFERENCES entities(id),
    kind       TEXT NOT NULL CHECK (kind IN ('workcenters', 'technicians', 'ordertypes')),
    id         TEXT NOT NULL,
    body       JSONB NOT NULL,
    PRIMARY KEY (entity_id, kind, id)
);

CREATE TABLE followups (
    entity_id           TEXT NOT NULL REFERENCES entities(id),
    id                  TEXT NOT NULL,
    original_order_num  TEXT NOT NULL,
    idem_key            TEXT,
    request_hash        TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    order_num           TEXT,
    user_name           TEXT NOT NULL,
    scheduler           TEXT NOT NULL,
    endpoint_host       TEXT,
    slot_start          BIGINT NOT NULL,
    slot_end            BIGINT NOT NULL,
    status_code         INTEGER,
    answer              JSONB,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (entity_id, id)
);
CREATE UNIQUE INDEX followups_key ON followups(entity_id, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX followups_original ON followups(entity_id, original_order_num, created_at);

CREATE TABLE part_orders (
    entity_id       TEXT NOT NULL REFERENCES entities(id),
    part_order_num  TEXT NOT NULL,
    order_num       TEXT NOT NULL,
    parts           JSONB NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (entity_id, part_order_num)
);
