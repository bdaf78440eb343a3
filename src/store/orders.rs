//! Work orders, the visits the built-in scheduler reads from them, and the changes its cache
//! follows. Every write of a work order takes the entity's next visit sequence number, so a
//! cache can ask for "what changed since N"; a deleted order leaves a tombstone.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{
    ListFilter, Page, Store, StoreError, VisitChange, VisitQuery, VisitRow, WriteFn, Written,
    corrupt,
    db::{Conn, Tx, sql},
    millis, now_ms,
    outbox::{self, EventKind},
};
use crate::domain::{EntityId, WorkOrderNum, status::OrderStatus, workorder::WorkOrder};

/// The lock key of a work order: every write of it takes this first.
pub(super) fn order_key(num: &str) -> String {
    format!("wo:{num}")
}

/// The lock key of a technician's visits: taken by every write that assigns an order to them
/// (after its order keys), and by a booking before it commits.
pub(super) fn tech_key(user: &str) -> String {
    format!("tech:{user}")
}

/// The visit columns of a work order, as its first statement selects them.
pub(super) const VISIT_COLUMNS: &str = "order_num, user_name, order_type, planned_start, busy_end, \
     lat, lon, window_start, window_end, order_status, service_area_id, pinned";

/// Inserts or replaces a work order with its indexed columns and the next visit sequence
/// number: `$1`..`$18` are the values, `visit_seq` comes from the statement's source.
macro_rules! upsert_order {
    ($source:literal) => {
        concat!(
            "INSERT INTO work_orders (entity_id, order_num, order_status, order_type, user_name, service_area_id, \
             planned_start, planned_end, original_order_num, body, updated_at, busy_end, lat, lon, window_start, \
             window_end, booked_by, pinned, seq) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, visit_seq FROM ",
            $source,
            " ON CONFLICT (entity_id, order_num) DO UPDATE SET order_status = excluded.order_status, \
             order_type = excluded.order_type, user_name = excluded.user_name, service_area_id = excluded.service_area_id, \
             planned_start = excluded.planned_start, planned_end = excluded.planned_end, \
             original_order_num = excluded.original_order_num, body = excluded.body, updated_at = excluded.updated_at, \
             busy_end = excluded.busy_end, lat = excluded.lat, lon = excluded.lon, window_start = excluded.window_start, \
             window_end = excluded.window_end, booked_by = COALESCE(excluded.booked_by, work_orders.booked_by), \
             pinned = excluded.pinned, seq = excluded.seq"
        )
    };
}

const NEXT_SEQ: &str = "INSERT INTO sched_versions (entity_id, visit_seq) VALUES ($1, 1) \
     ON CONFLICT (entity_id) DO UPDATE SET visit_seq = sched_versions.visit_seq + 1 RETURNING visit_seq";

/// The entity's next visit sequence number. On PostgreSQL the row lock it takes is held to
/// commit, so sequence numbers become visible in the order they were taken.
pub(super) async fn next_visit_seq(tx: &mut Tx, entity: &EntityId) -> Result<i64, StoreError> {
    Ok(sql!(tx.conn(), NEXT_SEQ, entity.as_str(); scalar i64)?)
}

/// Writes an order (`booked_by`: `Some("scheduler")` when the built-in scheduler wrote it; the
/// database's double-booking check applies to those rows).
pub(super) async fn upsert_order(
    tx: &mut Tx,
    entity: &EntityId,
    order: &WorkOrder,
    booked_by: Option<&str>,
) -> Result<(), StoreError> {
    let ix = order.indexed();
    let statement = if tx.is_postgres() {
        // One round trip: the sequence number is taken in the same statement.
        concat!(
            "WITH s AS (INSERT INTO sched_versions (entity_id, visit_seq) VALUES ($1, 1) ON CONFLICT (entity_id) \
             DO UPDATE SET visit_seq = sched_versions.visit_seq + 1 RETURNING visit_seq) ",
            upsert_order!("s WHERE true")
        )
    } else {
        // SQLite allows no write inside a WITH: the number is taken by a statement of its own,
        // sent in the same call (each statement binds the parameters it names), so that the
        // write costs one round trip to the connection's thread, not two.
        concat!(
            "INSERT INTO sched_versions (entity_id, visit_seq) VALUES ($1, 1) ON CONFLICT (entity_id) \
             DO UPDATE SET visit_seq = sched_versions.visit_seq + 1; ",
            upsert_order!("sched_versions WHERE entity_id = $1")
        )
    };
    sql!(tx.conn(), statement, entity.as_str(), order.order_num().as_str(), ix.order_status, ix.order_type,
        ix.user_name, ix.service_area_id, millis(ix.planned_start), millis(ix.planned_end),
        ix.original_order_num, Json(order), now_ms(), millis(ix.busy_end), ix.lat, ix.lon,
        ix.window.map(|w| w.0.as_millis()), ix.window.map(|w| w.1.as_millis()),
        booked_by, ix.pinned; execute)?;
    Ok(())
}

/// Inserts or replaces `orders`, under the locks a work-order write takes, in the same order:
/// every order, then every technician they are assigned to, each sorted.
pub(super) async fn write_orders(
    tx: &mut Tx,
    entity: &EntityId,
    orders: &[WorkOrder],
) -> Result<(), StoreError> {
    let nums: BTreeSet<&str> = orders.iter().map(|o| o.order_num().as_str()).collect();
    let techs: BTreeSet<&str> = orders.iter().filter_map(WorkOrder::user_name).collect();
    let keys: Vec<String> = nums
        .into_iter()
        .map(order_key)
        .chain(techs.into_iter().map(tech_key))
        .collect();
    tx.lock(entity, &keys).await?;
    for order in orders {
        upsert_order(tx, entity, order, None).await?;
    }
    Ok(())
}

/// A stored work order.
pub(super) async fn read_order(
    conn: Conn<'_>,
    entity: &EntityId,
    num: &WorkOrderNum,
) -> Result<Option<WorkOrder>, StoreError> {
    let body = sql!(conn, "SELECT body FROM work_orders WHERE entity_id = $1 AND order_num = $2",
        entity.as_str(), num.as_str(); optional_scalar Json<Map<String, Value>>)?;
    body.map(|j| {
        WorkOrder::from_stored(num, j.0).map_err(|e| corrupt(format!("work order {num}: {e}")))
    })
    .transpose()
}

/// Open visits (orders not closed or rejected, with a technician and a planned start)
/// overlapping the range, of the given technicians (or all).
pub(super) async fn visits_in(
    db: &super::db::Db,
    conn: Conn<'_>,
    entity: &EntityId,
    q: &VisitQuery,
) -> Result<Vec<VisitRow>, StoreError> {
    let techs = if q.techs.is_empty() {
        String::new()
    } else {
        format!(
            " AND user_name IN (SELECT value FROM {}($4))",
            db.json_rows()
        )
    };
    // Overlapping the range, so a long visit that began before it still counts.
    let statement = format!(
        "SELECT {VISIT_COLUMNS} FROM work_orders WHERE entity_id = $1 AND user_name IS NOT NULL \
         AND planned_start IS NOT NULL AND (order_status IS NULL OR order_status NOT IN (4096, 4097, 1001)) \
         AND COALESCE(busy_end, planned_start) > $2 AND planned_start < $3{techs} \
         ORDER BY user_name, planned_start, order_num"
    );
    let rows = if q.techs.is_empty() {
        sql!(conn, &statement, entity.as_str(), q.from_ms, q.to_ms; all VisitRow)
    } else {
        sql!(conn, &statement, entity.as_str(), q.from_ms, q.to_ms, Json(&q.techs); all VisitRow)
    };
    Ok(rows?)
}

/// A row of `visit_changes`: a written order or a tombstone (`gone` = 1).
#[derive(sqlx::FromRow)]
struct ChangeRow {
    order_num: String,
    seq: i64,
    user_name: Option<String>,
    order_type: Option<String>,
    planned_start: Option<i64>,
    busy_end: Option<i64>,
    lat: Option<f64>,
    lon: Option<f64>,
    window_start: Option<i64>,
    window_end: Option<i64>,
    order_status: Option<i64>,
    service_area_id: Option<String>,
    pinned: Option<bool>,
    gone: i32,
}

impl ChangeRow {
    /// Whether the row is a visit of its technician: the same test as the SQL of `visits_in`.
    fn change(self) -> VisitChange {
        let open = self
            .order_status
            .and_then(OrderStatus::from_code)
            .is_none_or(|s| s.is_open());
        let row = match (self.gone, self.user_name, self.planned_start) {
            (0, Some(user_name), Some(start_ms)) if open && !user_name.is_empty() => {
                Some(VisitRow {
                    order_num: self.order_num.clone(),
                    user_name,
                    order_type: self.order_type,
                    start_ms,
                    busy_end_ms: self.busy_end,
                    lat: self.lat,
                    lon: self.lon,
                    window_start_ms: self.window_start,
                    window_end_ms: self.window_end,
                    order_status: self.order_status,
                    service_area_id: self.service_area_id,
                    pinned: self.pinned.unwrap_or(false),
                })
            }
            _ => None,
        };
        VisitChange {
            order_num: self.order_num,
            seq: self.seq,
            row,
        }
    }
}

/// A value of a statement built at run time.
enum Arg {
    Text(String),
    Int(i64),
    Ints(Vec<i64>),
}

/// Binds `$args` in order to a query (on either backend).
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(n) => q.bind(*n),
                Arg::Ints(v) => q.bind(Json(v)),
            };
        }
        q
    }};
}

impl Store {
    pub async fn get_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
    ) -> Result<Option<WorkOrder>, StoreError> {
        let mut c = self.db.acquire().await?;
        read_order(c.conn(), entity, num).await
    }

    /// Read-modify-write of one work order in one write transaction: `f` decides what the order
    /// becomes given what is stored.
    pub async fn write_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
        f: WriteFn,
    ) -> Result<Written, StoreError> {
        let mut tx = self.db.begin().await?;
        // The row may not exist yet, so a row lock alone could not serialise two creators.
        tx.lock(entity, &[order_key(num.as_str())]).await?;
        let prev = read_order(tx.conn(), entity, num).await?;
        let created = prev.is_none();
        let order = f(prev.clone())?;
        if let Some(user) = order.user_name() {
            // A booking for this technician decided on their day as it was before this write:
            // it reads the day again under this lock before it commits.
            tx.lock(entity, &[tech_key(user)]).await?;
        }
        upsert_order(&mut tx, entity, &order, None).await?;
        let notify = match &prev {
            None => {
                outbox::record(
                    &mut tx,
                    entity,
                    EventKind::WorkOrderCreated,
                    &order,
                    Map::new,
                )
                .await?
            }
            Some(before) if *before != order => {
                let changes = || outbox::changes(before, &order);
                outbox::record(
                    &mut tx,
                    entity,
                    EventKind::WorkOrderChanged,
                    &order,
                    changes,
                )
                .await?
            }
            Some(_) => false,
        };
        tx.commit().await?;
        if notify {
            self.outbox.wake();
        }
        Ok(Written { created, order })
    }

    /// Inserts or replaces many orders in one transaction (demo data, imports, benchmarks).
    pub async fn import_work_orders(
        &self,
        entity: &EntityId,
        orders: &[WorkOrder],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        write_orders(&mut tx, entity, orders).await?;
        tx.commit().await
    }

    pub(crate) async fn delete_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        // The sequence number before the row, as every other writer takes them.
        let seq = next_visit_seq(&mut tx, entity).await?;
        let deleted = sql!(tx.conn(), "DELETE FROM work_orders WHERE entity_id = $1 AND order_num = $2 RETURNING body",
            entity.as_str(), num.as_str(); optional_scalar Json<Map<String, Value>>)?;
        let Some(Json(body)) = deleted else {
            return Ok(false);
        };
        sql!(tx.conn(), "INSERT INTO work_order_tombstones (entity_id, order_num, seq) VALUES ($1, $2, $3)",
            entity.as_str(), num.as_str(), seq; execute)?;
        let notify = outbox::enabled(&mut tx, entity, EventKind::WorkOrderDeleted).await?;
        if notify {
            let order = WorkOrder::from_stored(num, body).map_err(corrupt)?;
            outbox::insert(
                &mut tx,
                entity,
                EventKind::WorkOrderDeleted,
                &order,
                Map::new(),
            )
            .await?;
        }
        tx.commit().await?;
        if notify {
            self.outbox.wake();
        }
        Ok(true)
    }

    /// A page of the entity's orders, ordered by planned start (unplanned last), with the
    /// number of all that match.
    pub async fn list_work_orders(
        &self,
        entity: &EntityId,
        f: &ListFilter,
    ) -> Result<Page, StoreError> {
        let mut args = vec![Arg::Text(entity.to_string())];
        let mut filter = String::from(" FROM work_orders WHERE entity_id = $1");
        let mut and = |condition: &str, arg: Arg| {
            args.push(arg);
            filter += &condition.replace('?', &format!("${}", args.len()));
        };
        if let Some(u) = &f.user_name {
            and(" AND user_name = ?", Arg::Text(u.clone()));
        }
        if !f.statuses.is_empty() {
            let list = format!(
                " AND order_status IN (SELECT CAST(value AS BIGINT) FROM {}(?))",
                self.db.json_rows()
            );
            and(&list, Arg::Ints(f.statuses.clone()));
        }
        if let Some(a) = &f.service_area_id {
            and(" AND service_area_id = ?", Arg::Text(a.clone()));
        }
        if let Some(t) = f.from_ms {
            and(" AND planned_start >= ?", Arg::Int(t));
        }
        if let Some(t) = f.to_ms {
            and(" AND planned_start < ?", Arg::Int(t));
        }
        let count = format!("SELECT COUNT(*){filter}");
        let n = args.len();
        let page = format!(
            "SELECT body{filter} ORDER BY planned_start IS NULL, planned_start, order_num LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let paged: Vec<Arg> = [Arg::Int(f.limit), Arg::Int(f.offset)].into();
        let mut c = self.db.acquire().await?;
        let (total, items): (i64, Vec<Json<Value>>) = match c.conn() {
            Conn::Sqlite(c) => (
                bind_all!(sqlx::query_scalar(&count), &args)
                    .fetch_one(&mut *c)
                    .await?,
                bind_all!(sqlx::query_scalar(&page), args.iter().chain(&paged))
                    .fetch_all(&mut *c)
                    .await?,
            ),
            Conn::Postgres(c) => (
                bind_all!(sqlx::query_scalar(&count), &args)
                    .fetch_one(&mut *c)
                    .await?,
                bind_all!(sqlx::query_scalar(&page), args.iter().chain(&paged))
                    .fetch_all(&mut *c)
                    .await?,
            ),
        };
        Ok(Page {
            items: items.into_iter().map(|j| j.0).collect(),
            total,
        })
    }

    /// Open visits of the given technicians whose planned time overlaps the range.
    pub async fn list_visits(
        &self,
        entity: &EntityId,
        q: &VisitQuery,
    ) -> Result<Vec<VisitRow>, StoreError> {
        let mut c = self.db.acquire().await?;
        visits_in(&self.db, c.conn(), entity, q).await
    }

    /// The entity's set-up version and visit sequence number, and the work orders written or
    /// deleted after sequence number `since` (in sequence order), in one read.
    pub(crate) async fn versions_and_changes(
        &self,
        entity: &EntityId,
        since: i64,
    ) -> Result<((i64, i64), Vec<VisitChange>), StoreError> {
        let mut c = self.db.acquire().await?;
        versions_and_changes(c.conn(), entity, since).await
    }

    /// Work orders written or deleted after sequence number `since`, in sequence order.
    pub async fn visit_changes(
        &self,
        entity: &EntityId,
        since: i64,
    ) -> Result<Vec<VisitChange>, StoreError> {
        let mut c = self.db.acquire().await?;
        changes_since(c.conn(), entity, since).await
    }
}

/// Work orders written or deleted after sequence number `since`, in sequence order.
pub(super) async fn changes_since(
    conn: Conn<'_>,
    entity: &EntityId,
    since: i64,
) -> Result<Vec<VisitChange>, StoreError> {
    // One statement, so PostgreSQL reads both tables in one snapshot.
    let rows = sql!(conn, &format!(
        "SELECT {VISIT_COLUMNS}, seq, 0 AS gone FROM work_orders WHERE entity_id = $1 AND seq > $2 \
         UNION ALL SELECT order_num, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, seq, 1 \
         FROM work_order_tombstones WHERE entity_id = $1 AND seq > $2 ORDER BY seq"),
        entity.as_str(), since; all ChangeRow)?;
    Ok(rows.into_iter().map(ChangeRow::change).collect())
}

/// The entity's set-up version and visit sequence number (as [`versions_in`] reads them) and
/// the changes after `since` (as [`changes_since`]), in one statement: one round trip instead
/// of two for a booking's transaction, which SQLite runs while every other write waits.
///
/// [`versions_in`]: super::entities::versions_in
pub(super) async fn versions_and_changes(
    conn: Conn<'_>,
    entity: &EntityId,
    since: i64,
) -> Result<((i64, i64), Vec<VisitChange>), StoreError> {
    static STATEMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let statement = STATEMENT.get_or_init(|| {
        // The versions ride on a row of their own (`gone` = 2): the visit sequence number as
        // its `seq`, the set-up version as its `order_status`, the other columns empty.
        let empty = vec!["NULL"; VISIT_COLUMNS.split(',').count() - 1].join(", ");
        format!(
            "SELECT {VISIT_COLUMNS}, seq, order_status, 0 AS gone FROM work_orders WHERE entity_id = $1 AND seq > $2 \
             UNION ALL SELECT order_num, {empty}, seq, NULL, 1 \
             FROM work_order_tombstones WHERE entity_id = $1 AND seq > $2 \
             UNION ALL SELECT '', {empty}, visit_seq, setup_version, 2 FROM sched_versions WHERE entity_id = $1 \
             ORDER BY seq"
        )
    });
    let rows = sql!(conn, statement.as_str(), entity.as_str(), since; all ChangeRow)?;
    let mut versions = (0, 0);
    let mut changes = Vec::with_capacity(rows.len().saturating_sub(1));
    for r in rows {
        if r.gone == 2 {
            versions = (r.order_status.unwrap_or(0), r.seq);
        } else {
            changes.push(r.change());
        }
    }
    Ok((versions, changes))
}
