//! The follow-up ledger (the record of every booking, which is also the idempotency ledger) and
//! the built-in scheduler's booking transaction, which records its booking in the same commit.

use serde_json::Value;
use sqlx::types::Json;

use super::{
    BookingResult, BookingTx, DecideFn, Decision, FromCache, SameFn, Store, StoreError, VisitQuery,
    VisitRow,
    db::{Conn, Tx, sql},
    now_ms,
    orders::{order_key, read_order, tech_key, upsert_order, versions_and_changes, visits_in},
};
use crate::domain::{
    EntityId, WorkOrderNum,
    followup::{
        ClaimOutcome, FollowupDone, FollowupRecord, FollowupState, Judgement, NewClaim, judge_claim,
    },
    workorder::WorkOrder,
};

/// What a booking's decision was taken on, for [`Store::confirm`].
#[derive(Clone, Copy)]
enum Seen<'a> {
    /// The visits its transaction read.
    Rows(&'a [VisitRow]),
    /// The cache ([`FromCache::same`] compares).
    Cache(Option<SameFn<'a>>),
}

/// How many times a booking is decided in all: again when a technician's day changed between
/// its read and its locks (PostgreSQL), or when its transaction lost a deadlock.
const MAX_DECISIONS: u32 = 5;

const FOLLOWUP_COLUMNS: &str = "id, original_order_num, idem_key, request_hash, state, order_num, \
     user_name, scheduler, endpoint_host, slot_start, slot_end, status_code, answer, answer_raw, \
     created_at, outbound_key, lease_until";

#[derive(sqlx::FromRow)]
struct FollowupRow {
    id: String,
    original_order_num: String,
    idem_key: Option<String>,
    request_hash: String,
    state: String,
    order_num: Option<String>,
    user_name: String,
    scheduler: String,
    endpoint_host: Option<String>,
    slot_start: i64,
    slot_end: i64,
    status_code: Option<i32>,
    answer: Option<Json<Value>>,
    answer_raw: Option<String>,
    created_at: i64,
    outbound_key: Option<String>,
    lease_until: Option<i64>,
}

impl From<FollowupRow> for FollowupRecord {
    fn from(r: FollowupRow) -> Self {
        FollowupRecord {
            id: r.id,
            original_order_num: r.original_order_num,
            idem_key: r.idem_key,
            request_hash: r.request_hash,
            state: if r.state == "done" {
                FollowupState::Done
            } else {
                FollowupState::Pending
            },
            order_num: r.order_num,
            user_name: r.user_name,
            scheduler: r.scheduler,
            endpoint_host: r.endpoint_host,
            slot_start_ms: r.slot_start,
            slot_end_ms: r.slot_end,
            status_code: r.status_code.and_then(|c| u16::try_from(c).ok()),
            answer: r.answer.map(|j| j.0),
            answer_raw: r.answer_raw,
            created_at_ms: r.created_at,
            outbound_key: r.outbound_key,
            lease_until_ms: r.lease_until,
        }
    }
}

/// The records a claim is judged against, in one query: the one with its idempotency key
/// (`which` = 0) and the latest for its original order (`which` = 1).
async fn claim_records(
    conn: Conn<'_>,
    entity: &EntityId,
    claim: &NewClaim,
) -> Result<(Option<FollowupRecord>, Option<FollowupRecord>), StoreError> {
    #[derive(sqlx::FromRow)]
    struct Which {
        which: i32,
        #[sqlx(flatten)]
        row: FollowupRow,
    }
    let rows = sql!(conn, &format!(
        "SELECT 0 AS which, {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = $1 AND idem_key = $2 \
         UNION ALL SELECT * FROM (SELECT 1 AS which, {FOLLOWUP_COLUMNS} FROM followups \
         WHERE entity_id = $1 AND original_order_num = $3 ORDER BY created_at DESC LIMIT 1) AS latest"),
        entity.as_str(), &claim.idem_key, claim.original.as_str(); all Which)?;
    let (mut by_key, mut latest) = (None, None);
    for r in rows {
        match r.which {
            0 => by_key = Some(r.row.into()),
            _ => latest = Some(r.row.into()),
        }
    }
    Ok((by_key, latest))
}

/// The lock keys of a claim: claims for one original order are serialised, whatever key they
/// carry, and so are claims with one key.
fn claim_keys(claim: &NewClaim) -> Vec<String> {
    let mut keys = vec![format!("followup:{}", claim.original)];
    keys.extend(claim.idem_key.iter().map(|k| format!("idem:{k}")));
    keys
}

/// The ledger's judgement of `claim` (in a transaction that holds its locks, or a peek).
async fn judge(
    conn: Conn<'_>,
    entity: &EntityId,
    claim: &NewClaim,
) -> Result<Judgement, StoreError> {
    let (by_key, latest) = claim_records(conn, entity, claim).await?;
    Ok(judge_claim(
        claim,
        by_key.as_ref(),
        latest.as_ref(),
        now_ms(),
    ))
}

/// Records `claim` as the judgement allows: pending, or done with `done`.
async fn record_claim(
    tx: &mut Tx,
    entity: &EntityId,
    claim: &NewClaim,
    forget_key_ids: Vec<String>,
    done: Option<&FollowupDone>,
) -> Result<(), StoreError> {
    for id in &forget_key_ids {
        sql!(tx.conn(), "UPDATE followups SET idem_key = NULL WHERE entity_id = $1 AND id = $2",
            entity.as_str(), id; execute)?;
    }
    sql!(tx.conn(), "INSERT INTO followups (entity_id, id, original_order_num, idem_key, request_hash, state, \
         user_name, scheduler, endpoint_host, slot_start, slot_end, created_at, order_num, status_code, answer, \
         answer_raw, outbound_key, lease_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        entity.as_str(), &claim.id, claim.original.as_str(), &claim.idem_key, &claim.request_hash,
        if done.is_some() { "done" } else { "pending" }, &claim.user_name, claim.scheduler,
        &claim.endpoint_host, claim.slot_start_ms, claim.slot_end_ms, now_ms(),
        done.and_then(|d| d.order_num.as_deref()), done.map(|d| i32::from(d.status_code)),
        done.map(|d| Json(&d.answer)), done.and_then(|d| d.answer_raw.as_deref()),
        &claim.outbound_key, claim.lease_until_ms; execute)?;
    Ok(())
}

impl Store {
    /// Starts a booking made elsewhere (pass-through): replays, refuses, records a pending
    /// claim and answers [`ClaimOutcome::New`], or takes over a pending claim of the same request
    /// whose outcome is unknown (renewing its lease to `claim`'s) and answers
    /// [`ClaimOutcome::Resume`].
    pub(crate) async fn claim_followup(
        &self,
        entity: &EntityId,
        claim: &NewClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.lock(entity, &claim_keys(claim)).await?;
        let outcome = match judge(tx.conn(), entity, claim).await? {
            Judgement::Answer(a) => match *a {
                ClaimOutcome::Resume(mut r) => {
                    sql!(tx.conn(), "UPDATE followups SET lease_until = $3 WHERE entity_id = $1 AND id = $2",
                        entity.as_str(), &r.id, claim.lease_until_ms; execute)?;
                    r.lease_until_ms = claim.lease_until_ms;
                    ClaimOutcome::Resume(r)
                }
                other => return Ok(other),
            },
            Judgement::Insert { forget_key_ids } => {
                record_claim(&mut tx, entity, claim, forget_key_ids, None).await?;
                ClaimOutcome::New
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Marks a pending claim whose call may have reached the third party without a known
    /// outcome: its lease ends now, so the same request sends it again with the same key.
    pub(crate) async fn unknown_followup(
        &self,
        entity: &EntityId,
        id: &str,
    ) -> Result<(), StoreError> {
        let (mut c, _turn) = self.db.write_one().await?;
        sql!(c.conn(), "UPDATE followups SET lease_until = $3 WHERE entity_id = $1 AND id = $2 AND state = 'pending'",
            entity.as_str(), id, now_ms(); execute)?;
        Ok(())
    }

    /// What the ledger would answer `claim`, without recording anything: `None` when it would
    /// let it go ahead. For a request about to be refused, so that a refusal writes nothing.
    pub(crate) async fn peek_followup(
        &self,
        entity: &EntityId,
        claim: &NewClaim,
    ) -> Result<Option<ClaimOutcome>, StoreError> {
        let mut c = self.db.acquire().await?;
        Ok(match judge(c.conn(), entity, claim).await? {
            Judgement::Answer(a) => Some(*a),
            Judgement::Insert { .. } => None,
        })
    }

    /// Records the answer of a claimed booking made elsewhere (pass-through).
    pub(crate) async fn finish_followup(
        &self,
        entity: &EntityId,
        id: &str,
        done: &FollowupDone,
    ) -> Result<(), StoreError> {
        // One statement: it commits by itself (an explicit transaction would cost two more
        // round trips on the pass-through booking's path).
        let (mut c, _turn) = self.db.write_one().await?;
        let updated = sql!(c.conn(), "UPDATE followups SET state = 'done', order_num = $3, status_code = $4, answer = $5, \
             answer_raw = $6 WHERE entity_id = $1 AND id = $2 AND state = 'pending'",
            entity.as_str(), id, done.order_num.as_deref(), i32::from(done.status_code),
            Json(&done.answer), done.answer_raw.as_deref(); execute)?;
        if updated != 1 {
            return Err(StoreError::ClaimLost);
        }
        Ok(())
    }

    /// Drops a pending claim whose booking did not happen, so that a retry may try again.
    /// Harmless when the claim is gone already.
    pub(crate) async fn abandon_followup(
        &self,
        entity: &EntityId,
        id: &str,
    ) -> Result<(), StoreError> {
        let (mut c, _turn) = self.db.write_one().await?;
        sql!(c.conn(), "DELETE FROM followups WHERE entity_id = $1 AND id = $2 AND state = 'pending'",
            entity.as_str(), id; execute)?;
        Ok(())
    }

    /// The follow-ups booked from an original order, oldest first.
    pub async fn list_followups(
        &self,
        entity: &EntityId,
        original: &WorkOrderNum,
    ) -> Result<Vec<FollowupRecord>, StoreError> {
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), &format!(
            "SELECT {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = $1 AND original_order_num = $2 \
             AND state = 'done' ORDER BY created_at"),
            entity.as_str(), original.as_str(); all FollowupRow)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The built-in scheduler's booking, in one write transaction: takes the claim's locks and
    /// the booking lock, lets the ledger answer if it can, reads the technicians' visits (on
    /// SQLite, what changed since the booking's cached schedule), lets `decide` place the visit, and writes the new order, the orders it moved, the part order
    /// and the follow-up record together, or nothing. A lost deadlock is retried, and a decision
    /// whose technicians' days changed before they were locked is taken again, within one budget
    /// of [`MAX_DECISIONS`].
    pub async fn commit_booking(
        &self,
        entity: &EntityId,
        req: &BookingTx,
        decide: DecideFn<'_>,
    ) -> Result<BookingResult, StoreError> {
        self.commit_booking_cached(entity, req, None, decide).await
    }

    /// [`Store::commit_booking`] of a booking prepared on a cached schedule: on SQLite it is
    /// decided by `cached` on what changed since, unless that answers
    /// [`Decision::ReadVisits`].
    pub(crate) async fn commit_booking_cached(
        &self,
        entity: &EntityId,
        req: &BookingTx,
        cached: Option<&FromCache<'_>>,
        decide: DecideFn<'_>,
    ) -> Result<BookingResult, StoreError> {
        let mut decisions = 0;
        loop {
            match self
                .try_booking(entity, req, cached, decide, &mut decisions)
                .await
            {
                Err(StoreError::Retry(why)) if decisions < MAX_DECISIONS => {
                    tracing::debug!(%why, decisions, "booking transaction retried");
                }
                other => return other,
            }
        }
    }

    async fn try_booking(
        &self,
        entity: &EntityId,
        req: &BookingTx,
        cached: Option<&FromCache<'_>>,
        decide: DecideFn<'_>,
        decisions: &mut u32,
    ) -> Result<BookingResult, StoreError> {
        let mut tx = self.db.begin().await?;
        // Requests for the same original or key, then bookings that could touch the same
        // technicians' days, queue here; the database's overlap check backs the lock up.
        let mut keys = claim_keys(&req.claim);
        keys.push(req.lock_key.clone());
        tx.lock(entity, &keys).await?;
        let forget_key_ids = match judge(tx.conn(), entity, &req.claim).await? {
            Judgement::Answer(a) => return Ok(BookingResult::Answered(a)),
            Judgement::Insert { forget_key_ids } => forget_key_ids,
        };
        // The first decision may be taken on the cache; one it does not confirm is taken again
        // on the visits as read.
        let mut cached = cached;
        let write = loop {
            *decisions += 1;
            let mut decision = Decision::ReadVisits;
            // What changed since the booking's cached schedule, applied to it: on SQLite, where
            // no one else writes until this transaction ends, the schedule the booking commits
            // on; on PostgreSQL, one its technicians' locks confirm (below).
            if let Some(cached) = cached {
                let (versions, changes) =
                    versions_and_changes(tx.conn(), entity, cached.since.1).await?;
                if versions.0 == cached.since.0 {
                    decision = (cached.decide)(versions, &changes);
                }
            }
            let visits: Vec<VisitRow>;
            let mut seen = Seen::Cache(cached.map(|c| c.same));
            if let Decision::ReadVisits = decision {
                visits = visits_in(&self.db, tx.conn(), entity, &req.visits).await?;
                decision = decide(&visits);
                seen = Seen::Rows(&visits);
            }
            let write = match decision {
                Decision::Write(w) => w,
                Decision::Unavailable(why) => return Ok(BookingResult::Unavailable(why)),
                Decision::ReadVisits => {
                    return Err(StoreError::Other(anyhow::anyhow!(
                        "the booking could not be decided on its technicians' visits"
                    )));
                }
            };
            if self
                .confirm(&mut tx, entity, &req.visits, seen, &write)
                .await?
            {
                break write;
            }
            cached = None;
            if *decisions >= MAX_DECISIONS {
                return Err(StoreError::Retry(
                    "the technicians' days kept changing while the booking was decided".into(),
                ));
            }
        };
        let shifted = write_moves(&mut tx, entity, &write, &req.claim.id).await?;
        upsert_order(&mut tx, entity, &write.new_order, Some("scheduler")).await?;
        if let Some((num, parts)) = &write.part_order {
            sql!(tx.conn(), "INSERT INTO part_orders (entity_id, part_order_num, order_num, parts, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                entity.as_str(), num, write.new_order.order_num().as_str(), Json(parts), now_ms(); execute)?;
        }
        let notify = super::outbox::booked(
            &mut tx,
            entity,
            &req.claim.original,
            &write,
            &shifted,
            req.events,
        )
        .await?;
        record_claim(
            &mut tx,
            entity,
            &req.claim,
            forget_key_ids,
            Some(&write.done),
        )
        .await?;
        tx.commit().await?;
        if notify {
            self.outbox.wake();
        }
        Ok(BookingResult::Booked(write.done))
    }

    /// The locking hook of a booking. On SQLite the transaction holds the only write lock since
    /// its first statement: what was read stands. On PostgreSQL the decision stands once the
    /// orders it writes and the technicians whose days it changes are locked (as every
    /// work-order write locks them) and those days read again unchanged; otherwise the locks are
    /// released (they were taken after a savepoint, so a new decision takes its own in the one
    /// order every writer uses) and the booking is decided again.
    async fn confirm(
        &self,
        tx: &mut Tx,
        entity: &EntityId,
        q: &VisitQuery,
        seen: Seen<'_>,
        write: &super::BookingWrite,
    ) -> Result<bool, StoreError> {
        if !tx.is_postgres() {
            return Ok(true);
        }
        let mut nums: Vec<&str> = write
            .shifted
            .iter()
            .map(|m| m.0.as_str())
            .chain(write.moved.iter().map(|m| m.order_num.as_str()))
            .collect();
        nums.push(write.new_order.order_num().as_str());
        nums.sort_unstable();
        // The technicians whose days change: the booked one and, with a repair, those whose
        // visits it moves. (A decision on the cache whose moved visits belonged to someone else
        // fails the comparison below.)
        let rows: &[VisitRow] = match seen {
            Seen::Rows(r) => r,
            Seen::Cache(_) => &[],
        };
        let mut techs: Vec<&str> = rows
            .iter()
            .filter(|v| write.shifted.iter().any(|m| m.0 == v.order_num))
            .map(|v| v.user_name.as_str())
            .chain(
                write
                    .moved
                    .iter()
                    .flat_map(|m| [m.from_tech.as_str(), m.to_tech.as_str()]),
            )
            .chain(write.new_order.user_name())
            .collect();
        techs.sort_unstable();
        techs.dedup();
        let keys: Vec<String> = nums
            .iter()
            .map(|n| order_key(n))
            .chain(techs.iter().map(|t| tech_key(t)))
            .collect();
        tx.run("SAVEPOINT decided").await?;
        tx.lock(entity, &keys).await?;
        let again = VisitQuery {
            techs: techs.iter().map(|t| t.to_string()).collect(),
            ..q.clone()
        };
        let now_seen = visits_in(&self.db, tx.conn(), entity, &again).await?;
        let same = match seen {
            Seen::Rows(rows) => now_seen.iter().eq(rows
                .iter()
                .filter(|v| techs.contains(&v.user_name.as_str()))),
            Seen::Cache(Some(same)) => same(&techs, &now_seen),
            Seen::Cache(None) => false,
        };
        if same {
            return Ok(true);
        }
        tx.run("ROLLBACK TO SAVEPOINT decided").await?;
        tx.run("RELEASE SAVEPOINT decided").await?;
        Ok(false)
    }
}

/// Writes the visits a booking moves (the new order aside) and, for a repair, records each
/// move (reason `repair`, run id the claim's); returns each order before and after, and the
/// reason. The visits were read in this transaction under their technicians' locks: they are
/// there.
async fn write_moves(
    tx: &mut Tx,
    entity: &EntityId,
    write: &super::BookingWrite,
    run_id: &str,
) -> Result<Vec<(WorkOrder, WorkOrder, &'static str)>, StoreError> {
    let read = async |tx: &mut Tx, num: &str| {
        let num = WorkOrderNum::parse(num).map_err(super::corrupt)?;
        read_order(tx.conn(), entity, &num)
            .await?
            .ok_or_else(|| StoreError::Retry(format!("work order {num} vanished")))
    };
    let mut out = Vec::with_capacity(write.shifted.len() + write.moved.len());
    if write.moved.is_empty() {
        // Without a repair visits only move later: writing the latest first never overlaps
        // transiently.
        let mut moves = write.shifted.clone();
        moves.sort_by_key(|m| std::cmp::Reverse(m.1));
        for (num, start, end) in &moves {
            let order = read(tx, num).await?;
            let moved = order.clone().moved(*start, *end);
            upsert_order(tx, entity, &moved, Some("scheduler")).await?;
            out.push((order, moved, "booking"));
        }
        return Ok(out);
    }
    // A repair may swap technicians and move visits earlier: every visit it changes leaves its
    // place first, so that no write meets one about to move away (the database checks each
    // written row at once).
    let mut before = Vec::with_capacity(out.capacity());
    for num in write
        .shifted
        .iter()
        .map(|m| m.0.as_str())
        .chain(write.moved.iter().map(|m| m.order_num.as_str()))
    {
        before.push(read(tx, num).await?);
    }
    let nums: Vec<&str> = before.iter().map(|o| o.order_num().as_str()).collect();
    super::moves::vacate(tx, entity, &nums).await?;
    let moved_at = now_ms();
    let mut before = before.into_iter();
    for ((_, start, end), order) in write.shifted.iter().zip(before.by_ref()) {
        let moved = order.clone().moved(*start, *end);
        upsert_order(tx, entity, &moved, Some("scheduler")).await?;
        out.push((order, moved, "booking"));
    }
    for (m, order) in write.moved.iter().zip(before) {
        let moved = order.clone().assigned(&m.to_tech, m.start, m.end);
        upsert_order(tx, entity, &moved, Some("scheduler")).await?;
        let ix = order.indexed();
        // A visit has a planned start; its end is its start when nothing says how long it lasts.
        let from_start = ix.planned_start.unwrap_or_else(|| m.start.into());
        let from_end = ix.busy_end.unwrap_or(from_start);
        let planned = super::PlannedMove {
            order_num: m.order_num.clone(),
            from_tech: m.from_tech.clone(),
            to_tech: m.to_tech.clone(),
            from: (from_start, from_end),
            to: (m.start.into(), m.end.into()),
        };
        // A repair makes room for a booking: the travel it changes is the booking's.
        super::moves::record(tx, entity, run_id, "repair", &planned, moved_at, 0).await?;
        out.push((order, moved, "repair"));
    }
    Ok(out)
}
