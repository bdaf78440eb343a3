//! The follow-up record: the history of bookings (README, "Follow-up bookings") and the
//! idempotency ledger. Its rules are decided here, the same on every backend: the store reads
//! the records a request meets and writes what [`judge_claim`] says.

use serde_json::Value;

use super::WorkOrderNum;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// A pending pass-through claim older than this is taken to be abandoned (its process died).
/// Longer than the longest outbound call (`RestApi.TimeoutMs` allows 120 s), so a slow booking is
/// never taken over while it may still succeed. (A built-in booking never leaves a pending
/// claim: its record is written in its own transaction.)
pub const CLAIM_STALE_MS: i64 = 180 * 1000;

/// A booking request as the ledger sees it.
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub id: String,
    pub original: WorkOrderNum,
    pub idem_key: Option<String>,
    /// SHA-256 of the canonical request body.
    pub request_hash: String,
    pub user_name: String,
    /// `builtin` or `passthrough`.
    pub scheduler: &'static str,
    pub endpoint_host: Option<String>,
    pub slot_start_ms: i64,
    pub slot_end_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What the ledger answers a booking request.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// Go ahead; the claim is recorded (pending, for a pass-through booking).
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

/// The answer a booking ended with, as recorded.
#[derive(Debug, Clone)]
pub struct FollowupDone {
    pub order_num: Option<String>,
    pub status_code: u16,
    pub answer: Value,
}

/// What a claim meets.
#[derive(Debug)]
pub enum Judgement {
    /// The ledger answers the request itself.
    Answer(Box<ClaimOutcome>),
    /// Record the claim, after deleting these abandoned claims and forgetting the keys of these
    /// records whose key expired (the booking itself stays on record).
    Insert {
        delete_ids: Vec<String>,
        forget_key_ids: Vec<String>,
    },
}

/// The retry rules (README, "Follow-up bookings"): a key replays for 24 hours and must keep its
/// body; without a key (or with a new or expired one) a second booking of the same original
/// replays when the body is the same and is refused when it differs.
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

#[cfg(test)]
mod tests {
    use super::*;

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
            scheduler: "builtin",
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
