//! The outbox of outbound notifications (README, "Notifications"). The transactions that change
//! work orders call [`record`] before they commit, so an event exists exactly when its change
//! was committed; `crate::notify` delivers the events afterwards. The worker's side is here too:
//! claiming due events under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so that several
//! processes never deliver one event at once), recording each attempt, and the admin's reads and
//! replays.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sqlx::types::Json;

use super::{
    Store, StoreError,
    db::{Tx, sql},
    now_ms,
};
use crate::domain::{EntityId, workorder::WorkOrder};

/// The events Revisit reports ([Revisit]: the platform's own list is not published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    WorkOrderCreated,
    WorkOrderChanged,
    WorkOrderDeleted,
    FollowUpBooked,
    VisitMoved,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::WorkOrderCreated,
        EventKind::WorkOrderChanged,
        EventKind::WorkOrderDeleted,
        EventKind::FollowUpBooked,
        EventKind::VisitMoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::WorkOrderCreated => "WorkOrderCreated",
            EventKind::WorkOrderChanged => "WorkOrderChanged",
            EventKind::WorkOrderDeleted => "WorkOrderDeleted",
            EventKind::FollowUpBooked => "FollowUpBooked",
            EventKind::VisitMoved => "VisitMoved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Wakes the delivery worker of this process after a commit that recorded events.
#[derive(Default)]
pub(crate) struct OutboxSignal(Arc<tokio::sync::Notify>);

impl OutboxSignal {
    pub(crate) fn wake(&self) {
        self.0.notify_one();
    }
    pub(crate) fn handle(&self) -> Arc<tokio::sync::Notify> {
        self.0.clone()
    }
}

/// The events of a booking ([`booked`]) that the entity's configuration enables, as the caller
/// read it at the start of its request (its token's re-check reads the configuration): the
/// booking's transaction, which SQLite serialises with every other write, then need not read it
/// again. The same test as [`enabled`]'s: `Enabled` is JSON `true`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookingEvents {
    pub followup_booked: bool,
    pub visit_moved: bool,
}

impl BookingEvents {
    pub fn of(config: &Map<String, Value>) -> Self {
        let on = |kind: EventKind| {
            config
                .get("ExportNotifications")
                .and_then(|n| n.get("Notifications"))
                .and_then(|n| n.get(kind.as_str()))
                .and_then(|e| e.get("Enabled"))
                == Some(&Value::Bool(true))
        };
        Self {
            followup_booked: on(EventKind::FollowUpBooked),
            visit_moved: on(EventKind::VisitMoved),
        }
    }
}

/// Whether the entity's configuration enables `kind`, as the transaction sees it.
pub(super) async fn enabled(
    tx: &mut Tx,
    entity: &EntityId,
    kind: EventKind,
) -> Result<bool, StoreError> {
    let statement = if tx.is_postgres() {
        "SELECT COUNT(*) FROM entities WHERE id = $1 AND \
         config #> ARRAY['ExportNotifications', 'Notifications', $2, 'Enabled'] = 'true'::jsonb"
    } else {
        "SELECT COUNT(*) FROM entities WHERE id = $1 AND \
         json_type(config, '$.ExportNotifications.Notifications.' || $2 || '.Enabled') = 'true'"
    };
    Ok(sql!(tx.conn(), statement, entity.as_str(), kind.as_str(); scalar i64)? > 0)
}

/// Inserts one event about `order` in the transaction: its body is the work order as the API
/// returns it, with the event's id, name, time and entity, and `extra`.
pub(super) async fn insert(
    tx: &mut Tx,
    entity: &EntityId,
    kind: EventKind,
    order: &WorkOrder,
    extra: Map<String, Value>,
) -> Result<(), StoreError> {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let now = jiff::Timestamp::now();
    let mut body = Map::new();
    body.insert("EventID".into(), json!(id));
    body.insert("EventType".into(), json!(kind.as_str()));
    body.insert("EventTime".into(), json!(crate::domain::time::format(now)));
    body.insert("EntityID".into(), json!(entity.as_str()));
    body.insert(
        "WorkOrder".into(),
        serde_json::to_value(order).map_err(super::corrupt)?,
    );
    body.extend(extra);
    let payload = Value::Object(body).to_string();
    let at = now.as_millisecond();
    sql!(tx.conn(), "INSERT INTO outbox_events (entity_id, id, event, order_num, payload, created_at, state, \
         attempts, next_attempt_at, retry_from) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $6, $6)",
        entity.as_str(), &id, kind.as_str(), order.order_num().as_str(), &payload, at; execute)?;
    Ok(())
}

/// Records an event about `order` if the entity enables `kind`; `true` when one was recorded
/// (the caller wakes the worker after its commit).
pub(super) async fn record(
    tx: &mut Tx,
    entity: &EntityId,
    kind: EventKind,
    order: &WorkOrder,
    extra: impl FnOnce() -> Map<String, Value>,
) -> Result<bool, StoreError> {
    if !enabled(tx, entity, kind).await? {
        return Ok(false);
    }
    insert(tx, entity, kind, order, extra()).await?;
    Ok(true)
}

/// An event claimed for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClaimedEvent {
    pub seq: i64,
    pub entity_id: String,
    pub id: String,
    pub event: String,
    pub payload: String,
    pub created_at: i64,
    pub attempts: i32,
    pub retry_from: i64,
}

/// An event as the admin API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EventRecord {
    pub id: String,
    pub event: String,
    pub order_num: String,
    pub payload: String,
    pub created_at: i64,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AttemptRecord {
    pub n: i32,
    pub at: i64,
    pub duration_ms: i64,
    pub status: Option<i32>,
    pub error: Option<String>,
}

/// One attempt, finished.
#[derive(Debug, Clone)]
pub(crate) struct FinishedAttempt {
    pub event: ClaimedEvent,
    pub at: i64,
    pub duration_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub end: AttemptEnd,
}

/// What becomes of an event after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptEnd {
    Delivered,
    RetryAt(i64),
    Failed,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventFilter {
    pub state: Option<String>,
    pub order_num: Option<String>,
    /// Events older than this `seq` cursor (paging backwards).
    pub before: Option<i64>,
    pub limit: i64,
}

/// The entity's signing secrets.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SigningSecrets {
    pub secret: String,
    pub previous_secret: Option<String>,
    pub rotated_at: i64,
}

const EVENT_COLUMNS: &str = "id, event, order_num, payload, created_at, state, attempts, \
     next_attempt_at, delivered_at, last_status, last_error";

fn new_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

impl Store {
    /// The wake-up of this process's delivery worker.
    pub(crate) fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.handle()
    }

    /// Leases up to `limit` due events to `node` until `now + lease_ms`: the earliest pending
    /// event of each work order whose earlier events are all settled, oldest first, none leased
    /// by another worker. On PostgreSQL rows another worker is claiming are skipped, not waited
    /// for.
    pub(crate) async fn claim_events(
        &self,
        node: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedEvent>, StoreError> {
        let mut tx = self.db.begin().await?;
        let skip_locked = if tx.is_postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let statement = format!(
            "UPDATE outbox_events SET lease_until = $1 + $2, leased_by = $3 WHERE seq IN (\
             SELECT e.seq FROM outbox_events e WHERE e.state = 'pending' AND e.next_attempt_at <= $1 \
             AND (e.lease_until IS NULL OR e.lease_until <= $1) AND NOT EXISTS (SELECT 1 FROM outbox_events p \
             WHERE p.entity_id = e.entity_id AND p.order_num = e.order_num AND p.state = 'pending' AND p.seq < e.seq) \
             ORDER BY e.seq LIMIT $4{skip_locked}) \
             RETURNING seq, entity_id, id, event, order_num, payload, created_at, attempts, retry_from"
        );
        let mut rows =
            sql!(tx.conn(), &statement, now_ms(), lease_ms, node, limit; all ClaimedEvent)?;
        tx.commit().await?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Records attempts and what becomes of their events, in one transaction. An event whose
    /// lease its node lost meanwhile (another worker has it now) keeps its state; only the
    /// attempt is recorded.
    pub(crate) async fn finish_attempts(
        &self,
        node: &str,
        done: &[FinishedAttempt],
    ) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for d in done {
            let ev = &d.event;
            let status = d.status.map(i32::from);
            sql!(tx.conn(), "INSERT INTO outbox_attempts (entity_id, event_id, n, at, duration_ms, status, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (entity_id, event_id, n) DO NOTHING",
                &ev.entity_id, &ev.id, ev.attempts + 1, d.at, d.duration_ms, status, d.error.as_deref(); execute)?;
            let (state, next, delivered_at) = match d.end {
                AttemptEnd::Delivered => ("delivered", d.at, Some(now_ms())),
                AttemptEnd::RetryAt(t) => ("pending", t, None),
                AttemptEnd::Failed => ("failed", d.at, None),
            };
            sql!(tx.conn(), "UPDATE outbox_events SET state = $3, attempts = attempts + 1, next_attempt_at = $4, \
                 delivered_at = $5, last_status = $6, last_error = $7, lease_until = NULL, leased_by = NULL \
                 WHERE seq = $1 AND leased_by = $2 AND state = 'pending'",
                ev.seq, node, state, next, delivered_at, status, d.error.as_deref(); execute)?;
        }
        tx.commit().await
    }

    /// What a delivery of the entity's event needs, in one read: its configuration and its
    /// signing secrets (made on first use).
    pub(crate) async fn delivery_context(
        &self,
        entity: &EntityId,
    ) -> Result<(Map<String, Value>, SigningSecrets), StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            config: Json<Map<String, Value>>,
            secret: Option<String>,
            previous_secret: Option<String>,
            rotated_at: Option<i64>,
        }
        let row = {
            let mut c = self.db.acquire().await?;
            sql!(c.conn(), "SELECT e.config, s.secret, s.previous_secret, s.rotated_at FROM entities e \
                 LEFT JOIN notify_secrets s ON s.entity_id = e.id WHERE e.id = $1",
                entity.as_str(); optional Row)?
        };
        let Some(row) = row else {
            return Ok((Map::new(), self.signing_secrets(entity).await?));
        };
        let secrets = match (row.secret, row.rotated_at) {
            (Some(secret), Some(rotated_at)) => SigningSecrets {
                secret,
                previous_secret: row.previous_secret,
                rotated_at,
            },
            _ => self.signing_secrets(entity).await?,
        };
        Ok((row.config.0, secrets))
    }

    /// Forgets delivered and failed events committed before `before_ms`, with their attempts;
    /// how many events were removed.
    pub(crate) async fn purge_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        sql!(tx.conn(), "DELETE FROM outbox_attempts WHERE (entity_id, event_id) IN (SELECT entity_id, id \
             FROM outbox_events WHERE state <> 'pending' AND created_at < $1)", before_ms; execute)?;
        let n = sql!(tx.conn(), "DELETE FROM outbox_events WHERE state <> 'pending' AND created_at < $1",
            before_ms; execute)?;
        tx.commit().await?;
        Ok(n)
    }

    /// Events waiting for delivery, of every entity, and the oldest one's creation time.
    pub(crate) async fn pending_events(&self) -> Result<(i64, Option<i64>), StoreError> {
        let mut c = self.db.acquire().await?;
        Ok(
            sql!(c.conn(), "SELECT COUNT(*), MIN(created_at) FROM outbox_events WHERE state = 'pending'";
            one (i64, Option<i64>))?,
        )
    }

    /// The entity's events, newest first.
    pub(crate) async fn list_events(
        &self,
        entity: &EntityId,
        f: &EventFilter,
    ) -> Result<Vec<(i64, EventRecord)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            seq: i64,
            #[sqlx(flatten)]
            ev: EventRecord,
        }
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), &format!(
            "SELECT seq, {EVENT_COLUMNS} FROM outbox_events WHERE entity_id = $1 AND ($2 IS NULL OR state = $2) \
             AND ($3 IS NULL OR order_num = $3) AND ($4 IS NULL OR seq < $4) ORDER BY seq DESC LIMIT $5"),
            entity.as_str(), f.state.as_deref(), f.order_num.as_deref(), f.before, f.limit; all Row)?;
        Ok(rows.into_iter().map(|r| (r.seq, r.ev)).collect())
    }

    /// One event of the entity with its attempts, oldest first.
    pub(crate) async fn get_event(
        &self,
        entity: &EntityId,
        id: &str,
    ) -> Result<Option<(EventRecord, Vec<AttemptRecord>)>, StoreError> {
        let mut c = self.db.acquire().await?;
        let Some(ev) = sql!(c.conn(), &format!(
            "SELECT {EVENT_COLUMNS} FROM outbox_events WHERE entity_id = $1 AND id = $2"),
            entity.as_str(), id; optional EventRecord)?
        else {
            return Ok(None);
        };
        let attempts = sql!(c.conn(), "SELECT n, at, duration_ms, status, error FROM outbox_attempts \
             WHERE entity_id = $1 AND event_id = $2 ORDER BY n",
            entity.as_str(), id; all AttemptRecord)?;
        Ok(Some((ev, attempts)))
    }

    /// Sends an event again: pending now, with a new retry window (a delivered or failed event
    /// too; the receiver dedupes by its id). `None` when the entity has no such event.
    pub(crate) async fn replay_event(
        &self,
        entity: &EntityId,
        id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let mut tx = self.db.begin().await?;
        let now = now_ms();
        let n = sql!(tx.conn(), "UPDATE outbox_events SET state = 'pending', next_attempt_at = $3, retry_from = $3, \
             delivered_at = NULL WHERE entity_id = $1 AND id = $2",
            entity.as_str(), id, now; execute)?;
        if n == 0 {
            return Ok(None);
        }
        let ev = sql!(tx.conn(), &format!(
            "SELECT {EVENT_COLUMNS} FROM outbox_events WHERE entity_id = $1 AND id = $2"),
            entity.as_str(), id; one EventRecord)?;
        tx.commit().await?;
        self.outbox.wake();
        Ok(Some(ev))
    }

    /// The entity's signing secrets, made on first use.
    pub(crate) async fn signing_secrets(
        &self,
        entity: &EntityId,
    ) -> Result<SigningSecrets, StoreError> {
        {
            let mut c = self.db.acquire().await?;
            if let Some(s) = sql!(c.conn(), "SELECT secret, previous_secret, rotated_at FROM notify_secrets WHERE entity_id = $1",
                entity.as_str(); optional SigningSecrets)?
            {
                return Ok(s);
            }
        }
        let mut tx = self.db.begin().await?;
        sql!(tx.conn(), "INSERT INTO notify_secrets (entity_id, secret, rotated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (entity_id) DO NOTHING",
            entity.as_str(), new_secret(), now_ms(); execute)?;
        let s = sql!(tx.conn(), "SELECT secret, previous_secret, rotated_at FROM notify_secrets WHERE entity_id = $1",
            entity.as_str(); one SigningSecrets)?;
        tx.commit().await?;
        Ok(s)
    }

    /// Replaces the entity's signing secret; the one replaced still signs (as a second
    /// signature) for a grace period, so receivers can switch without losing events.
    pub(crate) async fn rotate_signing_secret(
        &self,
        entity: &EntityId,
    ) -> Result<SigningSecrets, StoreError> {
        self.signing_secrets(entity).await?;
        let mut tx = self.db.begin().await?;
        sql!(tx.conn(), "UPDATE notify_secrets SET previous_secret = secret, secret = $2, rotated_at = $3 \
             WHERE entity_id = $1",
            entity.as_str(), new_secret(), now_ms(); execute)?;
        let s = sql!(tx.conn(), "SELECT secret, previous_secret, rotated_at FROM notify_secrets WHERE entity_id = $1",
            entity.as_str(); one SigningSecrets)?;
        tx.commit().await?;
        Ok(s)
    }
}

/// `{"Changes": [...]}`: the top-level properties of the work order that differ.
pub(super) fn changes(before: &WorkOrder, after: &WorkOrder) -> Map<String, Value> {
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Map::new();
    };
    let mut names: Vec<&String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .collect();
    names.sort();
    names.dedup();
    let mut out = Map::new();
    out.insert("Changes".into(), json!(names));
    out
}

/// `{"Move": {...}}` of a visit that changed technician or time.
fn move_extra(
    reason: &str,
    run_id: Option<&str>,
    from: (Option<&str>, Option<String>, Option<String>),
    to: (Option<&str>, Option<String>, Option<String>),
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "Move".into(),
        json!({
            "Reason": reason,
            "RunID": run_id,
            "FromUserName": from.0,
            "ToUserName": to.0,
            "From": {"Start": from.1, "End": from.2},
            "To": {"Start": to.1, "End": to.2},
        }),
    );
    out
}

fn planned(o: &WorkOrder) -> (Option<&str>, Option<String>, Option<String>) {
    let ix = o.indexed();
    (
        o.user_name(),
        ix.planned_start.map(|t| t.to_string()),
        ix.planned_end.map(|t| t.to_string()),
    )
}

/// The events of a built-in booking: `FollowUpBooked` for the new order (with its original and
/// part order), `VisitMoved` for each visit it shifted (`(before, after)`).
pub(super) async fn booked(
    tx: &mut Tx,
    entity: &EntityId,
    original: &crate::domain::WorkOrderNum,
    write: &super::BookingWrite,
    shifted: &[(WorkOrder, WorkOrder, &'static str)],
    events: BookingEvents,
) -> Result<bool, StoreError> {
    let mut any = false;
    if events.followup_booked {
        let orig = super::orders::read_order(tx.conn(), entity, original).await?;
        let mut extra = Map::new();
        extra.insert(
            "OriginalWorkOrder".into(),
            serde_json::to_value(orig).map_err(super::corrupt)?,
        );
        extra.insert(
            "PartOrder".into(),
            match &write.part_order {
                Some((num, parts)) => json!({"PartOrderNum": num, "Parts": parts}),
                None => Value::Null,
            },
        );
        insert(
            tx,
            entity,
            EventKind::FollowUpBooked,
            &write.new_order,
            extra,
        )
        .await?;
        any = true;
    }
    if !shifted.is_empty() && events.visit_moved {
        for (before, after, reason) in shifted {
            let extra = move_extra(reason, None, planned(before), planned(after));
            insert(tx, entity, EventKind::VisitMoved, after, extra).await?;
        }
        any = true;
    }
    Ok(any)
}

/// The `VisitMoved` events of a re-optimiser's commit.
pub(super) async fn moved(
    tx: &mut Tx,
    entity: &EntityId,
    reason: &str,
    run_id: &str,
    moves: &[(&super::PlannedMove, WorkOrder)],
) -> Result<bool, StoreError> {
    if moves.is_empty() || !enabled(tx, entity, EventKind::VisitMoved).await? {
        return Ok(false);
    }
    for (m, order) in moves {
        let extra = move_extra(
            reason,
            Some(run_id),
            (
                Some(&m.from_tech),
                Some(m.from.0.to_string()),
                Some(m.from.1.to_string()),
            ),
            (
                Some(&m.to_tech),
                Some(m.to.0.to_string()),
                Some(m.to.1.to_string()),
            ),
        );
        insert(tx, entity, EventKind::VisitMoved, order, extra).await?;
    }
    Ok(true)
}
