-- Tenants, users, configuration, categories and work orders.
-- Times in indexed columns are epoch milliseconds (UTC), so ranges compare as integers.

CREATE TABLE entities (
    id          TEXT PRIMARY KEY NOT NULL,
    config      TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    name           TEXT PRIMARY KEY NOT NULL,
    entity_id      TEXT NOT NULL REFERENCES entities(id),
    role           TEXT NOT NULL CHECK (role IN ('admin', 'dispatcher', 'technician')),
    password_hash  TEXT NOT NULL,
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL
);
CREATE INDEX users_entity ON users(entity_id);

CREATE TABLE categories (
    entity_id  TEXT NOT NULL REFERENCES entities(id),
    code       TEXT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (entity_id, code)
);

CREATE TABLE work_orders (
    entity_id           TEXT NOT NULL REFERENCES entities(id),
    order_num           TEXT NOT NULL,
    order_status        INTEGER,
    order_type          TEXT,
    user_name           TEXT,
    service_area_id     TEXT,
    planned_start       INTEGER,
    planned_end         INTEGER,
    original_order_num  TEXT,
    body                TEXT NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (entity_id, order_num)
);
CREATE INDEX work_orders_user ON work_orders(entity_id, user_name, planned_start);
CREATE INDEX work_orders_status ON work_orders(entity_id, order_status);
CREATE INDEX work_orders_area ON work_orders(entity_id, service_area_id, planned_start);
CREATE INDEX work_orders_start ON work_orders(entity_id, planned_start);
CREATE INDEX work_orders_original ON work_orders(entity_id, original_order_num);
