//! Storage: one implementation over SQLite (the embedded default) and PostgreSQL (several
//! processes on one database). Every statement and every transaction flow is written once
//! (`db.rs` says how); the backends differ only in how a write transaction begins and the locks
//! it takes.
//!
//! Every call that reads or writes tenant data takes the `EntityId` first: there is no lookup
//! without it. The one exception is `find_user`, because a log-in names no entity (user names are
//! unique installation-wide).
//!
//! - `entities.rs`: entities, users, configuration, categories, the scheduler's set-up;
//! - `orders.rs`: work orders, the visits the scheduler reads, and the changes its cache follows;
//! - `followups.rs`: the follow-up ledger and the built-in scheduler's booking transaction;
//! - `moves.rs`: the re-optimiser's reads, its commits of moved visits, and their history;
//! - `outbox.rs`: the events of outbound notifications, recorded by the transactions above.

use std::{str::FromStr, time::Duration};

use serde_json::{Map, Value};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::domain::{
    DomainError, EntityId, Role, UserName, category::Category, followup::FollowupDone,
    workorder::WorkOrder,
};

mod board;
pub(crate) mod db;
mod entities;
mod followups;
mod moves;
mod orders;
mod outbox;
pub mod schema;
mod users;

pub(crate) use board::{BoardOrder, Refusal};
use db::Db;
pub use moves::PlannedMove;
pub(crate) use moves::{MoveCommit, MoveFilter};
pub(crate) use outbox::{
    AttemptEnd, AttemptRecord, BookingEvents, ClaimedEvent, EventFilter, EventKind, EventRecord,
    FinishedAttempt, SigningSecrets,
};
pub(crate) use users::UserChange;
pub use users::UserInfo;

/// Why a storage call failed. Each cause is its own variant, so that the layers above never
/// mistake one for another (a server fault is never answered as a client's conflict).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A domain rule, checked inside the write transaction, said no; nothing was written.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// A uniqueness constraint refused the write: what it would create exists already.
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// The database's double-booking check (trigger or exclusion constraint) refused a visit
    /// that overlaps another open visit of its technician.
    #[error("overlap: {0}")]
    Overlap(String),
    /// A pending follow-up claim was taken over (it looked abandoned): the booking it stood for
    /// must not be recorded.
    #[error("the follow-up claim is no longer held")]
    ClaimLost,
    /// A serialisation failure or deadlock: the transaction may be tried again.
    #[error("retry: {0}")]
    Retry(String),
    /// The database cannot be reached, is too busy, or the pool is exhausted: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Stored data that no longer parses.
    #[error("stored data invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Classifies a database error in one place.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) => {
                let msg = db.message().to_string();
                match db.code().unwrap_or_default().as_ref() {
                    // PostgreSQL unique violation; SQLite unique and primary key constraints.
                    "23505" | "2067" | "1555" => StoreError::Duplicate(msg),
                    // PostgreSQL exclusion constraint (and the trigger, which raises the same
                    // code); SQLite's trigger `RAISE(ABORT)`.
                    "23P01" | "1811" => StoreError::Overlap(msg),
                    "40001" | "40P01" => StoreError::Retry(msg),
                    // PostgreSQL: statement timeout, lock wait given up; SQLite busy or locked
                    // past the busy timeout; PostgreSQL cannot connect now or shutting down.
                    "57014" | "55P03" | "5" | "6" | "261" | "517" | "57P01" | "57P02" | "57P03"
                    | "08006" | "08001" | "08004" => StoreError::Unavailable(msg),
                    _ => StoreError::Other(anyhow::Error::new(e)),
                }
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Other(anyhow::Error::new(e)),
        }
    }
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Storage settings from the configuration.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// PostgreSQL statement and lock timeout; SQLite busy timeout; pool acquire timeout.
    pub statement_timeout: Duration,
}

/// The database, SQLite or PostgreSQL.
pub struct Store {
    db: Db,
    /// Wakes this process's notification worker after a commit that recorded events.
    outbox: outbox::OutboxSignal,
}

/// How much of a SQLite database file is read through a memory map.
const SQLITE_MMAP_BYTES: u64 = 256 << 20;

/// A pooled PostgreSQL connection idle for longer than this is pinged before it is used.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

/// Copies the write-ahead log into the database file every second, off the request path. With
/// SQLite's automatic checkpoint, the commit that takes the log past 1,000 pages does it while
/// its request waits (copy and sync): the slowest percent of bookings. `PASSIVE` never blocks a
/// reader or a writer; the last connection to close checkpoints what is left, as before.
fn checkpoints(pool: sqlx::SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "SQLite checkpoint");
            }
        }
    });
}

impl Store {
    /// Opens the database named by the URL (`sqlite:` or `postgres://`) and brings its schema up
    /// to date.
    pub async fn open(url: &str, opts: &StoreOptions) -> anyhow::Result<Self> {
        let db = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(opts.statement_timeout)
                .foreign_keys(true)
                // Every write makes the other connections drop their page cache (WAL); reading
                // the pages again through a memory map costs no copy and no system call.
                .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
                // No checkpoint on commit: see `checkpoints` below.
                .pragma("wal_autocheckpoint", "0");
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.statement_timeout)
                // A SQLite connection is a file handle: a ping before handing one out (a hop to
                // the connection's worker thread) buys nothing.
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            checkpoints(pool.clone());
            Db::Sqlite {
                pool,
                writer: Default::default(),
            }
        } else {
            let timeout_ms = opts.statement_timeout.as_millis().to_string();
            let options = url.parse::<PgConnectOptions>()?.options([
                ("statement_timeout", timeout_ms.as_str()),
                ("lock_timeout", timeout_ms.as_str()),
            ]);
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.statement_timeout)
                // sqlx pings a connection when it goes back to the pool. Pinging it again before
                // every use costs a round trip per query; only a connection that sat idle for a
                // while (say, through a database restart) is checked, and a broken one replaced.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > IDLE_CHECK_AFTER {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Db::Postgres { pool }
        };
        Ok(Self {
            db,
            outbox: Default::default(),
        })
    }

    /// Cheap liveness check of the database.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.db.acquire().await?;
        db::sql!(c.conn(), "SELECT 1"; execute)?;
        Ok(())
    }

    /// Closes the pool: waits for connections in use to be returned, then closes them all.
    pub async fn close(&self) {
        self.db.close().await;
    }
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Epoch milliseconds of an optional wire time, as stored in the indexed columns.
fn millis(t: Option<crate::domain::time::Time>) -> Option<i64> {
    t.map(|t| t.as_millis())
}

// ---------------------------------------------------------------------------------------------
// The types of the contract.

/// See [`Store::caller_context`].
#[derive(Debug, Clone, Default)]
pub struct CallerContext {
    pub user: Option<UserRecord>,
    pub config: Map<String, Value>,
    pub categories: Vec<Category>,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub name: UserName,
    pub entity: EntityId,
    pub role: Role,
    pub password_hash: String,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddUser {
    Created,
    /// The user existed in the same entity; role and password were replaced.
    Updated,
}

/// Filters of `GET /seiapi/v3/trans/WorkOrders`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub user_name: Option<String>,
    pub statuses: Vec<i64>,
    pub service_area_id: Option<String>,
    /// Planned start at or after, epoch milliseconds.
    pub from_ms: Option<i64>,
    /// Planned start before, epoch milliseconds.
    pub to_ms: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    pub total: i64,
}

#[derive(Debug, Clone)]
pub struct Written {
    pub created: bool,
    pub order: WorkOrder,
}

/// Decides, inside the write transaction, what a work order becomes given what is stored.
pub(crate) type WriteFn =
    Box<dyn FnOnce(Option<WorkOrder>) -> Result<WorkOrder, DomainError> + Send>;
/// Decides, inside the write transaction, what the entity configuration becomes.
pub(crate) type ConfigFn =
    Box<dyn FnOnce(Map<String, Value>) -> Result<Map<String, Value>, DomainError> + Send>;

/// The kinds of the built-in scheduler's set-up.
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
        [Self::WorkCenters, Self::Technicians, Self::OrderTypes]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Which visits to read.
#[derive(Debug, Clone, Default)]
pub struct VisitQuery {
    /// Empty = every technician of the entity.
    pub techs: Vec<String>,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// An open work order seen as a visit of its technician.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VisitRow {
    pub order_num: String,
    pub user_name: String,
    pub order_type: Option<String>,
    #[sqlx(rename = "planned_start")]
    pub start_ms: i64,
    #[sqlx(rename = "busy_end")]
    pub busy_end_ms: Option<i64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    #[sqlx(rename = "window_start")]
    pub window_start_ms: Option<i64>,
    #[sqlx(rename = "window_end")]
    pub window_end_ms: Option<i64>,
    pub order_status: Option<i64>,
    pub service_area_id: Option<String>,
    /// A dispatcher pinned the visit (`Pinned`).
    pub pinned: bool,
}

/// A change of a work order, as the scheduler's cache sees it: `row` is `None` when the order
/// is no longer a visit (deleted, closed, unassigned, unplanned).
#[derive(Debug, Clone)]
pub struct VisitChange {
    pub order_num: String,
    pub seq: i64,
    pub row: Option<VisitRow>,
}

/// The built-in scheduler's booking transaction: what it locks and reads.
#[derive(Debug, Clone)]
pub struct BookingTx {
    /// The ledger's view of the request; recorded, as done, with the booking.
    pub claim: crate::domain::followup::NewClaim,
    pub visits: VisitQuery,
    /// Bookings with the same key are serialised (PostgreSQL; SQLite serialises all writes).
    pub lock_key: String,
    /// The notifications the booking records with itself.
    pub events: BookingEvents,
}

/// A booking prepared on a cached schedule, as of `since` (set-up version, visit sequence
/// number): its transaction reads only what changed since, and `decide` decides on the cache
/// brought up to date with it (or answers [`Decision::ReadVisits`]). On SQLite, whose write
/// transaction shuts out every other writer, that decision stands. On PostgreSQL it stands once
/// `same` finds the technicians' visits, read again under their locks, as the cache had them;
/// otherwise the booking is decided again on the visits as read.
pub(crate) struct FromCache<'a> {
    pub since: (i64, i64),
    pub decide: ChangesFn<'a>,
    pub same: SameFn<'a>,
}

/// Whether the visits of the booked technicians (`techs`) of the day, as [`VisitQuery`] reads
/// them, are the ones the cached decision was taken on.
pub(crate) type SameFn<'a> = &'a (dyn Fn(&[&str], &[VisitRow]) -> bool + Send + Sync);

/// Decides a booking on the versions now and the orders written after [`FromCache::since`]
/// (each as it is now).
pub(crate) type ChangesFn<'a> = &'a (dyn Fn((i64, i64), &[VisitChange]) -> Decision + Send + Sync);

/// What `decide` wants written.
#[derive(Debug, Clone)]
pub struct BookingWrite {
    pub new_order: WorkOrder,
    /// Existing visits of the booked technician whose times change: (order number, new planned
    /// start, new planned end). Later, unless `moved` is not empty (a repair may also move
    /// them earlier).
    pub shifted: Vec<(String, jiff::Timestamp, jiff::Timestamp)>,
    /// A repair's changes on other technicians' days: visits given to another technician, or
    /// whose time changes. Recorded as moves (reason `repair`).
    pub moved: Vec<Reassigned>,
    pub part_order: Option<(String, Value)>,
    pub done: FollowupDone,
}

/// A booked visit a booking's repair gives from `from_tech` to `to_tech` (or, when they are the
/// same, whose time it changes), to start and end as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Reassigned {
    pub order_num: String,
    pub from_tech: String,
    pub to_tech: String,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
}

pub enum Decision {
    Write(Box<BookingWrite>),
    /// Nothing fits any more; the string says why.
    Unavailable(String),
    /// The changes cannot be applied to the cache the booking was prepared on (it moved on, or
    /// does not cover the day): decide on the day's visits instead.
    ReadVisits,
}

/// Decides a booking on the visits as read in its transaction. Called again, in the same
/// transaction, when what it decided on changed before the transaction could lock it
/// (PostgreSQL).
pub(crate) type DecideFn<'a> = &'a (dyn Fn(&[VisitRow]) -> Decision + Send + Sync);

#[derive(Debug, Clone)]
pub enum BookingResult {
    Booked(FollowupDone),
    Unavailable(String),
    /// The ledger answered the request itself (a replay, a reused key, ...); nothing written.
    Answered(Box<crate::domain::followup::ClaimOutcome>),
}
