-- The re-optimiser's moves (and a booking's repairs): when, which visit, from whom to whom,
-- from when to when, and what the run saved. Readable by dispatchers; the first move of an
-- order names the technician the customer was told.
CREATE TABLE visit_moves (
    entity_id             TEXT NOT NULL REFERENCES entities(id),
    id                    TEXT NOT NULL,
    run_id                TEXT NOT NULL,
    reason                TEXT NOT NULL,
    order_num             TEXT NOT NULL,
    moved_at              BIGINT NOT NULL,
    from_tech             TEXT NOT NULL,
    to_tech               TEXT NOT NULL,
    from_start            BIGINT NOT NULL,
    from_end              BIGINT NOT NULL,
    to_start              BIGINT NOT NULL,
    to_end                BIGINT NOT NULL,
    travel_saved_minutes  BIGINT NOT NULL,
    PRIMARY KEY (entity_id, id)
);
CREATE INDEX visit_moves_order ON visit_moves(entity_id, order_num, moved_at);
CREATE INDEX visit_moves_time ON visit_moves(entity_id, moved_at);
