-- The no-double-booking guarantee as a constraint: no two open visits written by the scheduler
-- overlap for one technician. Deferred to commit, so a booking may move several visits in one
-- transaction. (The trigger of 0002 also checks a scheduler write against visits others wrote.)
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE work_orders ADD CONSTRAINT work_orders_no_double_booking
  EXCLUDE USING gist (
    entity_id WITH =,
    user_name WITH =,
    int8range(planned_start, GREATEST(COALESCE(busy_end, planned_start + 60000), planned_start)) WITH &&
  )
  WHERE (booked_by = 'scheduler' AND user_name IS NOT NULL AND planned_start IS NOT NULL
         AND (order_status IS NULL OR order_status NOT IN (4096, 4097, 1001)))
  DEFERRABLE INITIALLY DEFERRED;
