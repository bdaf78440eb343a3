-- Change tracking for the scheduler's in-process cache: every write of a work order takes the
-- next sequence number of its entity; a deleted order leaves a tombstone; the set-up has a
-- version. A cache asks "what changed since N" instead of re-reading every visit.
CREATE TABLE sched_versions (
    entity_id      TEXT PRIMARY KEY,
    setup_version  BIGINT NOT NULL DEFAULT 0,
    visit_seq      BIGINT NOT NULL DEFAULT 0
);
ALTER TABLE work_orders ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX work_orders_seq ON work_orders(entity_id, seq);
CREATE TABLE work_order_tombstones (
    entity_id  TEXT NOT NULL,
    order_num  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (entity_id, seq)
);
