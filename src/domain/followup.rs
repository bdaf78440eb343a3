//! The follow-up record: the history of bookings (README, "Follow-up bookings") and the
//! idempotency ledger. Its rules are decided here, the same on every backend: the store reads
//! the records a request meets and writes what [`judge_claim`] says.

use serde_json::Value;

use super::WorkOrderNum;

/// How long an idempotency key is remembered.
pub(crate) const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

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
    /// Pass-through: the `Idempotency-Key` sent to the third party, the same on every attempt.
    pub outbound_key: Option<String>,
    /// Pass-through: until when the claim's call may still be under way (its deadline and a
    /// margin). After it, a pending claim's outcome is unknown.
    pub lease_until_ms: Option<i64>,
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
    /// The answer as the third party sent it (pass-through), replayed byte for byte.
    pub answer_raw: Option<String>,
    pub created_at_ms: i64,
    pub outbound_key: Option<String>,
    pub lease_until_ms: Option<i64>,
}

impl FollowupRecord {
    /// The key a pass-through booking sends: the recorded one, else (a claim recorded before
    /// keys were) its id.
    pub fn outbound_key(&self) -> &str {
        self.outbound_key.as_deref().unwrap_or(&self.id)
    }
}

/// What the ledger answers a booking request.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// Go ahead; the claim is recorded (pending, for a pass-through booking).
    New,
    /// The same request was answered before: give the same answer.
    Replay(FollowupRecord),
    /// The same key or request is still being processed, at the latest until `until_ms`.
    InFlight { until_ms: i64 },
    /// The same request was sent to a third party before, without a known outcome (a timeout,
    /// an answer that broke off, a crash): it is sent again, with the same key, under this
    /// claim, whose lease the ledger has renewed.
    Resume(FollowupRecord),
    /// Another request for the same original was sent to a third party without a known
    /// outcome: that one must be sent again first.
    Unknown,
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
    /// The answer as received, when a third party gave it.
    pub answer_raw: Option<String>,
}

/// What a claim meets.
#[derive(Debug)]
pub(crate) enum Judgement {
    /// The ledger answers the request itself.
    Answer(Box<ClaimOutcome>),
    /// Record the claim, after forgetting the keys of these records whose key expired (the
    /// booking itself stays on record).
    Insert { forget_key_ids: Vec<String> },
}

/// The retry rules (README, "Follow-up bookings"): a key replays for 24 hours and must keep its
/// body; without a key (or with a new or expired one) a second booking of the same original
/// replays when the body is the same and is refused when it differs. A pending claim is in
/// flight until its lease ends; after that its outcome is unknown, and only the same request may
/// go on, by sending it again under the same claim.
pub(crate) fn judge_claim(
    claim: &NewClaim,
    by_key: Option<&FollowupRecord>,
    latest_for_original: Option<&FollowupRecord>,
    now_ms: i64,
) -> Judgement {
    let answer = |a| Judgement::Answer(Box::new(a));
    let pending = |r: &FollowupRecord| match r.lease_until_ms {
        Some(until) if until > now_ms => ClaimOutcome::InFlight { until_ms: until },
        _ if r.request_hash == claim.request_hash => ClaimOutcome::Resume(r.clone()),
        _ => ClaimOutcome::Unknown,
    };
    let mut forget_key_ids = Vec::new();
    if let Some(r) = by_key {
        if r.state == FollowupState::Done && now_ms - r.created_at_ms > IDEMPOTENCY_TTL_MS {
            forget_key_ids.push(r.id.clone());
        } else if r.request_hash != claim.request_hash {
            return answer(ClaimOutcome::KeyReused);
        } else if r.state == FollowupState::Done {
            return answer(ClaimOutcome::Replay(r.clone()));
        } else {
            return answer(pending(r));
        }
    }
    if let Some(r) = latest_for_original {
        return answer(match r.state {
            FollowupState::Pending => pending(r),
            FollowupState::Done if r.request_hash == claim.request_hash => {
                ClaimOutcome::Replay(r.clone())
            }
            FollowupState::Done => ClaimOutcome::AlreadyBooked(r.clone()),
        });
    }
    Judgement::Insert { forget_key_ids }
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
            answer_raw: None,
            created_at_ms: now - age_ms,
            outbound_key: None,
            lease_until_ms: Some(now - age_ms + 10_000),
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
            outbound_key: Some("k".into()),
            lease_until_ms: Some(20_000),
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
    fn a_pending_claim_is_in_flight_until_its_lease_ends_then_only_its_own_request_resumes_it() {
        let now = 10 * IDEMPOTENCY_TTL_MS;
        // Within its lease: in flight, with the end of the lease.
        let live = record("a", "h1", FollowupState::Pending, 1_000, now);
        match judge_claim(&claim("h1"), Some(&live), Some(&live), now) {
            Judgement::Answer(a) => {
                assert!(
                    matches!(*a, ClaimOutcome::InFlight { until_ms } if until_ms == now + 9_000)
                )
            }
            other => panic!("{other:?}"),
        }
        // After it: the outcome is unknown. The same request resumes the claim; another body
        // without a key is told to finish the first.
        let lapsed = record("a", "h1", FollowupState::Pending, 60_000, now);
        match judge_claim(&claim("h1"), Some(&lapsed), Some(&lapsed), now) {
            Judgement::Answer(a) => {
                assert!(matches!(*a, ClaimOutcome::Resume(ref r) if r.id == "a"))
            }
            other => panic!("{other:?}"),
        }
        let mut keyless = claim("h2");
        keyless.idem_key = None;
        match judge_claim(&keyless, None, Some(&lapsed), now) {
            Judgement::Answer(a) => assert!(matches!(*a, ClaimOutcome::Unknown)),
            other => panic!("{other:?}"),
        }
    }
}
