-- Outbound notifications (the entity's ExportNotifications): the transactional outbox. An event
-- is inserted by the transaction that makes the change it reports, so it exists if and only if
-- the change was committed; a worker delivers it afterwards (at least once, in `seq` order per
-- work order), leasing it while it does so that two processes never deliver it at once.
CREATE TABLE outbox_events (
    seq              BIGSERIAL PRIMARY KEY,
    entity_id        TEXT NOT NULL REFERENCES entities(id),
    id               TEXT NOT NULL,
    event            TEXT NOT NULL,
    order_num        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    -- Start of the retry window (creation, or the last replay).
    retry_from       BIGINT NOT NULL,
    lease_until      BIGINT,
    leased_by        TEXT,
    delivered_at     BIGINT,
    last_status      INTEGER,
    last_error       TEXT
);
CREATE UNIQUE INDEX outbox_events_id ON outbox_events(entity_id, id);
CREATE INDEX outbox_events_due ON outbox_events(next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_events_order ON outbox_events(entity_id, order_num, seq) WHERE state = 'pending';
CREATE INDEX outbox_events_list ON outbox_events(entity_id, seq);

-- Every delivery attempt: when, how long, the receiver's status or why there was none.
CREATE TABLE outbox_attempts (
    entity_id    TEXT NOT NULL REFERENCES entities(id),
    event_id     TEXT NOT NULL,
    n            INTEGER NOT NULL,
    at           BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    status       INTEGER,
    error        TEXT,
    PRIMARY KEY (entity_id, event_id, n)
);

-- The entity's signing secret (Standard Webhooks, `whsec_...`), and the one it replaced, which
-- still signs for a day after a rotation.
CREATE TABLE notify_secrets (
    entity_id        TEXT PRIMARY KEY NOT NULL REFERENCES entities(id),
    secret           TEXT NOT NULL,
    previous_secret  TEXT,
    rotated_at       BIGINT NOT NULL
);
