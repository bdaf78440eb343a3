-- Requests the built-in scheduler refused as fully booked, counted per entity, work center,
-- local date (when the request was made, in the work center's zone) and kind: 'booking' (a
-- booking refused with 409 slot-unavailable) or 'search' (a slot search that offered nothing
-- because every window is booked). One upsert a refusal, never inside a booking's transaction;
-- the dispatcher's board reads the day's sum.
CREATE TABLE refusals (
    entity_id        TEXT NOT NULL REFERENCES entities(id),
    service_area_id  TEXT NOT NULL,
    day              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    count            BIGINT NOT NULL,
    PRIMARY KEY (entity_id, service_area_id, day, kind)
);
