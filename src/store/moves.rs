//! The re-optimiser's reads and writes: the visits of a work center's coming days with their
//! work orders, the commit of one date's moves under the locks bookings and work-order writes
//! take (whoever writes first wins; a date that changed since it was read is not written), and
//! the history of moves.

use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{
    Store, StoreError, VisitQuery, VisitRow, corrupt,
    db::{Tx, sql},
    now_ms,
    orders::{VISIT_COLUMNS, order_key, read_order, tech_key, upsert_order, visits_in},
};
use crate::domain::{EntityId, WorkOrderNum, time::Time, workorder::WorkOrder};

/// A visit as the re-optimiser reads it: its row (what the commit compares) and its order.
pub(crate) struct PlannedVisit {
    pub row: VisitRow,
    pub order: WorkOrder,
}

#[derive(sqlx::FromRow)]
struct VisitBody {
    #[sqlx(flatten)]
    row: VisitRow,
    body: Json<Map<String, Value>>,
}

/// One visit that changes technician or time.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMove {
    pub order_num: String,
    pub from_tech: String,
    pub to_tech: String,
    pub from: (Time, Time),
    pub to: (Time, Time),
}

/// One date's moves, and what they were decided on.
#[derive(Debug, Clone)]
pub(crate) struct MoveCommit {
    /// The booking lock of the date (`book:{local date}`), which bookings of that day take.
    pub lock_key: String,
    /// The visits of every technician concerned, over the date, as read when deciding.
    pub visits: VisitQuery,
    pub seen: Vec<VisitRow>,
    pub moves: Vec<PlannedMove>,
    pub run_id: String,
    /// `reoptimize` or `repair`.
    pub reason: &'static str,
    pub travel_saved_minutes: i64,
}

/// A recorded move.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct MoveRecord {
    pub id: String,
    pub run_id: String,
    pub reason: String,
    pub order_num: String,
    pub moved_at: i64,
    pub from_tech: String,
    pub to_tech: String,
    pub from_start: i64,
    pub from_end: i64,
    pub to_start: i64,
    pub to_end: i64,
    pub travel_saved_minutes: i64,
}

/// Which moves to list.
#[derive(Debug, Clone, Default)]
pub(crate) struct MoveFilter {
    pub order_num: Option<String>,
    /// Moved at or after / before, epoch milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: i64,
}

/// A run lock held until dropped (see [`Store::exclusive`]).
pub struct Exclusive(#[allow(dead_code)] Option<super::db::Tx>);

/// Takes the visits `nums` off their technicians' days before they are written elsewhere, so
/// that no write meets a visit about to move away (the database checks each written row at
/// once): for moves that may swap technicians or move visits earlier.
pub(super) async fn vacate(
    tx: &mut Tx,
    entity: &EntityId,
    nums: &[&str],
) -> Result<(), StoreError> {
    let statement = format!(
        "UPDATE work_orders SET user_name = NULL WHERE entity_id = $1 \
         AND order_num IN (SELECT value FROM {}($2))",
        tx.json_rows()
    );
    sql!(tx.conn(), &statement, entity.as_str(), Json(nums); execute)?;
    Ok(())
}

/// Records a move in the history (`GET /scheduling/v1/moves`).
pub(super) async fn record(
    tx: &mut Tx,
    entity: &EntityId,
    run_id: &str,
    reason: &str,
    m: &PlannedMove,
    moved_at: i64,
    travel_saved_minutes: i64,
) -> Result<(), StoreError> {
    sql!(tx.conn(), "INSERT INTO visit_moves (entity_id, id, run_id, reason, order_num, moved_at, \
         from_tech, to_tech, from_start, from_end, to_start, to_end, travel_saved_minutes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        entity.as_str(), uuid::Uuid::new_v4().to_string(), run_id, reason, &m.order_num,
        moved_at, &m.from_tech, &m.to_tech, m.from.0.as_millis(), m.from.1.as_millis(),
        m.to.0.as_millis(), m.to.1.as_millis(), travel_saved_minutes; execute)?;
    Ok(())
}

impl Store {
    /// Takes the run lock `key` of `entity` across processes if no one holds it, for as long as
    /// the result is kept: on PostgreSQL an advisory lock held by a transaction that does nothing
    /// else; on SQLite (one process) nothing, the caller's own lock is enough. `None` when
    /// another process holds it.
    pub async fn exclusive(
        &self,
        entity: &EntityId,
        key: &str,
    ) -> Result<Option<Exclusive>, StoreError> {
        let super::db::Db::Postgres { pool } = &self.db else {
            return Ok(Some(Exclusive(None)));
        };
        let mut tx = super::db::Tx::postgres(pool.begin().await?);
        let taken = sql!(tx.conn(), "SELECT pg_try_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))",
            entity.as_str(), key; scalar bool)?;
        Ok(taken.then_some(Exclusive(Some(tx))))
    }

    /// Every work center of every entity (the nightly re-optimisation).
    pub(crate) async fn all_work_centers(
        &self,
    ) -> Result<Vec<(EntityId, revisit_scheduler::WorkCenter)>, StoreError> {
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), "SELECT entity_id, body FROM sched_objects WHERE kind = 'workcenters' ORDER BY entity_id, id";
            all (String, Json<Value>))?;
        Ok(rows
            .into_iter()
            .filter_map(|(e, Json(body))| {
                Some((
                    EntityId::parse(&e).ok()?,
                    serde_json::from_value(body).ok()?,
                ))
            })
            .collect())
    }

    /// The open visits of `q`'s technicians overlapping its range, with their work orders.
    pub(crate) async fn planned_visits(
        &self,
        entity: &EntityId,
        q: &VisitQuery,
    ) -> Result<Vec<PlannedVisit>, StoreError> {
        let statement = format!(
            "SELECT {VISIT_COLUMNS}, body FROM work_orders WHERE entity_id = $1 AND user_name IS NOT NULL \
             AND planned_start IS NOT NULL AND (order_status IS NULL OR order_status NOT IN (4096, 4097, 1001)) \
             AND COALESCE(busy_end, planned_start) > $2 AND planned_start < $3 \
             AND user_name IN (SELECT value FROM {}($4)) ORDER BY user_name, planned_start, order_num",
            self.db.json_rows()
        );
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), &statement, entity.as_str(), q.from_ms, q.to_ms, Json(&q.techs);
            all VisitBody)?;
        rows.into_iter()
            .map(|r| {
                let num = WorkOrderNum::parse(&r.row.order_num).map_err(corrupt)?;
                let order = WorkOrder::from_stored(&num, r.body.0).map_err(corrupt)?;
                Ok(PlannedVisit { row: r.row, order })
            })
            .collect()
    }

    /// The technician each order was with before its first recorded move: the one the customer
    /// was told. Orders never moved are absent.
    pub(crate) async fn first_technicians(
        &self,
        entity: &EntityId,
        orders: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let statement = format!(
            "SELECT order_num, from_tech FROM visit_moves WHERE entity_id = $1 \
             AND order_num IN (SELECT value FROM {}($2)) ORDER BY order_num, moved_at",
            self.db.json_rows()
        );
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), &statement, entity.as_str(), Json(orders); all (String, String))?;
        let mut first: Vec<(String, String)> = Vec::new();
        for (order, tech) in rows {
            if first.last().is_none_or(|(o, _)| *o != order) {
                first.push((order, tech));
            }
        }
        Ok(first)
    }

    /// Commits one date's moves if the technicians' days are still as they were read; `false`
    /// (nothing written) when a booking or another write came first. The moved orders are
    /// written as the scheduler's (the database's double-booking check applies), and each move
    /// is recorded.
    pub(crate) async fn commit_moves(
        &self,
        entity: &EntityId,
        commit: &MoveCommit,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let mut nums: Vec<&str> = commit.moves.iter().map(|m| m.order_num.as_str()).collect();
        nums.sort_unstable();
        let mut techs = commit.visits.techs.clone();
        techs.sort();
        let keys: Vec<String> = std::iter::once(commit.lock_key.clone())
            .chain(nums.iter().map(|n| order_key(n)))
            .chain(techs.iter().map(|t| tech_key(t)))
            .collect();
        tx.lock(entity, &keys).await?;
        let now = visits_in(&self.db, tx.conn(), entity, &commit.visits).await?;
        if now != commit.seen {
            return Ok(false);
        }
        // Moves may swap technicians or times.
        vacate(&mut tx, entity, &nums).await?;
        let moved_at = now_ms();
        let mut moved_orders = Vec::with_capacity(commit.moves.len());
        for m in &commit.moves {
            let num = WorkOrderNum::parse(&m.order_num).map_err(corrupt)?;
            let order = read_order(tx.conn(), entity, &num)
                .await?
                .ok_or_else(|| StoreError::Retry(format!("work order {num} vanished")))?;
            let moved = order.assigned(&m.to_tech, m.to.0.to_timestamp(), m.to.1.to_timestamp());
            upsert_order(&mut tx, entity, &moved, Some("scheduler")).await?;
            moved_orders.push((m, moved));
            record(
                &mut tx,
                entity,
                &commit.run_id,
                commit.reason,
                m,
                moved_at,
                commit.travel_saved_minutes,
            )
            .await?;
        }
        let notify = super::outbox::moved(
            &mut tx,
            entity,
            commit.reason,
            &commit.run_id,
            &moved_orders,
        )
        .await?;
        tx.commit().await?;
        if notify {
            self.outbox.wake();
        }
        Ok(true)
    }

    /// Recorded moves, newest first.
    pub(crate) async fn list_moves(
        &self,
        entity: &EntityId,
        f: &MoveFilter,
    ) -> Result<Vec<MoveRecord>, StoreError> {
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), "SELECT id, run_id, reason, order_num, moved_at, from_tech, to_tech, \
             from_start, from_end, to_start, to_end, travel_saved_minutes FROM visit_moves \
             WHERE entity_id = $1 AND ($2 IS NULL OR order_num = $2) AND ($3 IS NULL OR moved_at >= $3) \
             AND ($4 IS NULL OR moved_at < $4) ORDER BY moved_at DESC, order_num LIMIT $5",
            entity.as_str(), f.order_num.as_deref(), f.from_ms, f.to_ms, f.limit; all MoveRecord)?;
        Ok(rows)
    }
}
