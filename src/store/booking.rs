//! Types of the scheduler's part of the storage contract: visits, follow-up records (the
//! idempotency ledger and the history of §7.1) and the booking transaction.

use serde_json::Value;

use crate::domain::{WorkOrderNum, workorder::WorkOrder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedKind {
    WorkCenters,
    Technicians,
    OrderTypes,
}

impl SchedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SchedKind::WorkCenters => "workcenters",
            SchedKind::Technicians => "technicians",
            SchedKind::OrderTypes => "ordertypes",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "workcenters" => Some(SchedKind::WorkCenters),
            "technicians" => Some(SchedKind::Technicians),
            "ordertypes" => Some(SchedKind::OrderTypes),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct VisitQuery {
    /// Empty = every technician of the entity.
    pub techs: Vec<String>,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// An open work order seen as a visit of its technician.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitRow {
    pub order_num: String,
    pub user_name: String,
    pub order_type: Option<String>,
    pub start_ms: i64,
    pub busy_end_ms: Option<i64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub window_start_ms: Option<i64>,
    pub window_end_ms: Option<i64>,
}

/// A change of a work order, as the scheduler's cache sees it.
#[derive(Debug, Clone)]
pub struct VisitChange {
    pub order_num: String,
    pub seq: i64,
    pub row: Option<VisitRow>,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// A pending claim older than this is taken to be abandoned (its process died). Longer than
/// the longest outbound call (`RestApi.TimeoutMs` allows 120 s), so a slow pass-through booking
/// is never taken over while it may still succeed.
pub const CLAIM_STALE_MS: i64 = 180 * 1000;

#[derive(Debug, Clone)]
pub struct NewClaim {
    pub id: String,
    pub original: WorkOrderNum,
    pub idem_key: Option<String>,
    /// SHA-256 of the canonical request body.
    pub request_hash: String,
    pub user_name: String,
    pub scheduler: String,
    pub endpoint_host: Option<String>,
    pub slot_start_ms: i64,
    pub slot_end_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowupState {
    Pending,
    Done,
}

#[derive(Debug, Clone)]
pub struct FollowupRecord {
    pub id: String,
    pub original_order_num: String,
    pub idem_key: Option<String>,
    pub request_hash: String,
    pub state: FollowupState,
    pub order_num: Option<String>,
    pub user_name: String,
    pub scheduler: String,
    pub endpoint_host: Option<String>,
    pub slot_start_ms: i64,
    pub slot_end_ms: i64,
    pub status_code: Option<u16>,
    pub answer: Option<Value>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// Go ahead; the claim is recorded as pending.
    New,
    /// The same request was answered before: give the same answer.
    Replay(FollowupRecord),
    /// The same key or request is still being processed.
    InFlight,
    /// The key was used before with another body.
    KeyReused,
    /// The original order already has a follow-up booked with another request.
    AlreadyBooked(FollowupRecord),
}

#[derive(Debug, Clone)]
pub struct FollowupDone {
    pub order_num: Option<String>,
    pub status_code: u16,
    pub answer: Value,
}

#[derive(Debug, Clone)]
pub struct BookingRequest {
    /// The pending claim this booking completes.
    pub claim_id: String,
    pub visits: VisitQuery,
    /// Bookings with the same lock key are serialised (PostgreSQL; SQLite serialises all writes).
    pub lock_key: String,
}

/// What the booking transaction shows `decide`.
#[derive(Debug, Clone)]
pub struct BookingView {
    pub visits: Vec<VisitRow>,
}

/// What `decide` wants written.
#[derive(Debug, Clone)]
pub struct BookingWrite {
    pub new_order: WorkOrder,
    /// Existing visits moved later: (order number, new planned start, new planned end).
    pub shifted: Vec<(String, jiff::Timestamp, jiff::Timestamp)>,
    pub part_order: Option<(String, Value)>,
    pub done: FollowupDone,
}

pub enum Decision {
    Write(Box<BookingWrite>),
    /// Nothing fits any more; the string says why.
    Unavailable(String),
}

/// Called once per decision: again, in the same transaction, when what it decided on changed
/// before the transaction could lock it (PostgreSQL).
pub type DecideFn = Box<dyn Fn(BookingView) -> Decision + Send + Sync>;

#[derive(Debug, Clone)]
pub enum BookingResult {
    Booked(FollowupDone),
    Unavailable(String),
}

/// What a claim meets, decided the same way on every backend.
#[derive(Debug)]
pub enum Judgement {
    Answer(Box<ClaimOutcome>),
    /// Record the claim, after deleting these abandoned claims and forgetting the keys of these
    /// records whose key expired (the booking itself stays on record).
    Insert {
        delete_ids: Vec<String>,
        forget_key_ids: Vec<String>,
    },
}

/// The rules of §7.1: a key replays for 24 hours and must keep its body; without a key (or with
/// a new or expired one) a second booking of the same original replays when the body is the same
/// and is refused when it differs.
pub fn judge_claim(
    claim: &NewClaim,
    by_key: Option<&FollowupRecord>,
    latest_for_original: Option<&FollowupRecord>,
    now_ms: i64,
) -> Judgement {
    let (mut delete_ids, mut forget_key_ids) = (Vec::new(), Vec::new());
    let stale = |r: &FollowupRecord| {
        r.state == FollowupState::Pending && now_ms - r.created_at_ms > CLAIM_STALE_MS
    };
    if let Some(r) = by_key {
        if stale(r) {
            delete_ids.push(r.id.clone());
        } else if now_ms - r.created_at_ms > IDEMPOTENCY_TTL_MS {
            forget_key_ids.push(r.id.clone());
        } else if r.request_hash != claim.request_hash {
            return Judgement::Answer(Box::new(ClaimOutcome::KeyReused));
        } else if r.state == FollowupState::Done {
            return Judgement::Answer(Box::new(ClaimOutcome::Replay(r.clone())));
        } else {
            return Judgement::Answer(Box::new(ClaimOutcome::InFlight));
        }
    }
    if let Some(r) = latest_for_original.filter(|r| !delete_ids.contains(&r.id)) {
        if stale(r) {
            delete_ids.push(r.id.clone());
        } else if r.state == FollowupState::Pending {
            return Judgement::Answer(Box::new(ClaimOutcome::InFlight));
        } else if r.request_hash == claim.request_hash {
            return Judgement::Answer(Box::new(ClaimOutcome::Replay(r.clone())));
        } else {
            return Judgement::Answer(Box::new(ClaimOutcome::AlreadyBooked(r.clone())));
        }
    }
    Judgement::Insert {
        delete_ids,
        forget_key_ids,
    }
}

/// What `judge_claim` would answer without recording anything: `None` when it would record
/// a new claim (`Store::peek_followup`).
pub fn peek_claim(
    claim: &NewClaim,
    by_key: Option<&FollowupRecord>,
    latest_for_original: Option<&FollowupRecord>,
    now_ms: i64,
) -> Option<ClaimOutcome> {
    match judge_claim(claim, by_key, latest_for_original, now_ms) {
        Judgement::Answer(a) => Some(*a),
        Judgement::Insert { .. } => None,
    }
}

/// Whether a stored row is a visit of its technician: open (not 4096, 4097 or 1001), assigned
/// and planned. The same test as the SQL of `list_visits`, for `visit_changes`.
pub fn visit_change(
    order_num: String,
    seq: i64,
    gone: bool,
    status: Option<i64>,
    row: VisitRow,
) -> VisitChange {
    let open = status
        .and_then(crate::domain::status::OrderStatus::from_code)
        .is_none_or(|s| s.is_open());
    VisitChange {
        order_num,
        seq,
        row: (!gone && open && !row.user_name.is_empty()).then_some(row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WorkOrderNum;

    fn record(id: &str, hash: &str, state: FollowupState, age_ms: i64, now: i64) -> FollowupRecord {
        FollowupRecord {
            id: id.into(),
            original_order_num: "WO-1".into(),
            idem_key: Some("k".into()),
            request_hash: hash.into(),
            state,
            order_num: Some("WO-1-F1".into()),
            user_name: "u".into(),
            scheduler: "builtin".into(),
            endpoint_host: None,
            slot_start_ms: 0,
            slot_end_ms: 1,
            status_code: Some(200),
            answer: None,
            created_at_ms: now - age_ms,
        }
    }

    fn claim(hash: &str) -> NewClaim {
        NewClaim {
            id: "new".into(),
            original: WorkOrderNum::parse("WO-1").unwrap(),
            idem_key: Some("k".into()),
            request_hash: hash.into(),
            user_name: "u".into(),
            scheduler: "builtin".into(),
            endpoint_host: None,
            slot_start_ms: 0,
            slot_end_ms: 1,
        }
    }

    #[test]
    fn an_expired_key_is_forgotten_but_its_booking_still_refuses_a_second_one() {
        let now = 10 * IDEMPOTENCY_TTL_MS;
        let old = record("a", "h1", FollowupState::Done, IDEMPOTENCY_TTL_MS + 1, now);
        // Same body after the key expired: the booking is replayed, not made twice.
        match judge_claim(&claim("h1"), Some(&old), Some(&old), now) {
            Judgement::Answer(a) => assert!(matches!(*a, ClaimOutcome::Replay(_))),
            other => panic!("{other:?}"),
        }
        // Another body with the old key: refused as a second follow-up.
        match judge_claim(&claim("h2"), Some(&old), Some(&old), now) {
            Judgement::Answer(a) => assert!(matches!(*a, ClaimOutcome::AlreadyBooked(_))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stale_pending_claim_is_taken_over() {
        let now = 10 * IDEMPOTENCY_TTL_MS;
        let pending = record("a", "h1", FollowupState::Pending, CLAIM_STALE_MS + 1, now);
        match judge_claim(&claim("h1"), Some(&pending), Some(&pending), now) {
            Judgement::Insert { delete_ids, .. } => assert_eq!(delete_ids, vec!["a".to_string()]),
            other => panic!("{other:?}"),
        }
    }
}
