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
/// A pending claim older than this is taken to be abandoned (its process died).
pub const CLAIM_STALE_MS: i64 = 60 * 1000;

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

pub type DecideFn = Box<dyn FnOnce(BookingView) -> Decision + Send>;

#[derive(Debug, Clone)]
pub enum BookingResult {
    Booked(FollowupDone),
    Unavailable(String),
}

/// What a claim meets, decided the same way on every backend.
#[derive(Debug)]
pub enum Judgement {
    Answer(Box<ClaimOutcome>),
    /// Record the claim, after deleting these expired or abandoned records.
    Insert {
        delete_ids: Vec<String>,
    },
}

/// The rules of §7.1: a key replays for 24 hours and must keep its body; without a key (or with
/// a new one) a second booking of the same original replays when the body is the same and is
/// refused when it differs.
pub fn judge_claim(
    claim: &NewClaim,
    by_key: Option<&FollowupRecord>,
    latest_for_original: Option<&FollowupRecord>,
    now_ms: i64,
) -> Judgement {
    let mut delete_ids = Vec::new();
    let stale = |r: &FollowupRecord| {
        r.state == FollowupState::Pending && now_ms - r.created_at_ms > CLAIM_STALE_MS
    };
    if let Some(r) = by_key {
        if now_ms - r.created_at_ms > IDEMPOTENCY_TTL_MS || stale(r) {
            delete_ids.push(r.id.clone());
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
    Judgement::Insert { delete_ids }
}
