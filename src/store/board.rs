//! The dispatcher's board: a work center's day in two statements (every order of its
//! technicians planned that day, with the columns the board draws; the follow-ups booked into
//! it), read-only.

use serde_json::Value;
use sqlx::types::Json;

use super::{Store, StoreError, VisitRow, db::sql, orders::VISIT_COLUMNS};
use crate::domain::EntityId;

/// A work order planned in the day, whatever its status (a closed visit stays on the board):
/// the columns the scheduler reads of a visit, and those only the board draws.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BoardOrder {
    #[sqlx(flatten)]
    pub visit: VisitRow,
    pub order_status: Option<i64>,
    pub service_area_id: Option<String>,
    pub original_order_num: Option<String>,
    pub body: Json<Value>,
}

impl Store {
    /// The orders of `techs` whose planned start lies in `[from_ms, to_ms)`, by technician and
    /// start.
    pub(crate) async fn board_orders(
        &self,
        entity: &EntityId,
        techs: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<BoardOrder>, StoreError> {
        if techs.is_empty() {
            return Ok(Vec::new());
        }
        let statement = format!(
            "SELECT {VISIT_COLUMNS}, order_status, service_area_id, original_order_num, body FROM work_orders \
             WHERE entity_id = $1 AND user_name IN (SELECT value FROM {}($2)) \
             AND planned_start >= $3 AND planned_start < $4 ORDER BY user_name, planned_start, order_num",
            self.db.json_rows()
        );
        let mut c = self.db.acquire().await?;
        Ok(
            sql!(c.conn(), &statement, entity.as_str(), Json(techs), from_ms, to_ms; all BoardOrder)?,
        )
    }

    /// How many follow-ups were booked into `area` between `from_ms` and `to_ms` (when they were
    /// booked, not when they are planned).
    pub(crate) async fn followups_booked(
        &self,
        entity: &EntityId,
        area: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut c = self.db.acquire().await?;
        Ok(
            sql!(c.conn(), "SELECT COUNT(*) FROM followups f JOIN work_orders w \
             ON w.entity_id = f.entity_id AND w.order_num = f.order_num \
             WHERE f.entity_id = $1 AND f.state = 'done' AND w.service_area_id = $2 \
             AND f.created_at >= $3 AND f.created_at < $4",
            entity.as_str(), area, from_ms, to_ms; scalar i64)?,
        )
    }
}

/// What a request refused as fully booked was (`refusals.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A booking refused because its window is no longer available (409 slot-unavailable).
    Booking,
    /// A slot search that offered nothing because every window is booked.
    Search,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Booking => "booking",
            Refusal::Search => "search",
        }
    }
}

impl Store {
    /// Counts one request refused as fully booked in `area` on the local `day` (YYYY-MM-DD):
    /// one self-committing upsert, outside any booking's transaction.
    pub(crate) async fn count_refusal(
        &self,
        entity: &EntityId,
        area: &str,
        day: &str,
        kind: Refusal,
    ) -> Result<(), StoreError> {
        let mut c = self.db.acquire().await?;
        sql!(c.conn(), "INSERT INTO refusals (entity_id, service_area_id, day, kind, count) \
             VALUES ($1, $2, $3, $4, 1) ON CONFLICT (entity_id, service_area_id, day, kind) \
             DO UPDATE SET count = refusals.count + 1",
            entity.as_str(), area, day, kind.as_str(); execute)?;
        Ok(())
    }

    /// How many requests were refused as fully booked in `area` on the local `day`.
    pub async fn refusals(
        &self,
        entity: &EntityId,
        area: &str,
        day: &str,
    ) -> Result<i64, StoreError> {
        let mut c = self.db.acquire().await?;
        Ok(
            sql!(c.conn(), "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM refusals \
             WHERE entity_id = $1 AND service_area_id = $2 AND day = $3",
            entity.as_str(), area, day; scalar i64)?,
        )
    }
}
