//! The storage contract and its two implementations. Every call that reads or writes tenant
//! data takes the `EntityId` first: there is no lookup without it. The one exception is
//! `find_user`, because a log-in names no entity (user names are unique installation-wide).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::domain::{
    DomainError, EntityId, Role, UserName, WorkOrderNum, category::Category, workorder::WorkOrder,
};

pub mod booking;
pub mod postgres;
pub mod sqlite;

pub use booking::*;

/// The storage layer's error type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A domain rule, checked inside the write transaction, said no; nothing was written.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// A uniqueness or overlap constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A serialisation failure or deadlock: the transaction may be tried again.
    #[error("retry: {0}")]
    Retry(String),
    /// The database cannot be reached or the pool is exhausted: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Classifies a database error in one place: unique/exclusion violations are conflicts, pool
/// and connection failures are unavailability, everything else is a fault.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                match code.as_ref() {
                    // PostgreSQL unique / exclusion; SQLite constraint codes.
                    "23505" | "23P01" | "2067" | "1555" | "1811" => {
                        StoreError::Conflict(db.message().to_string())
                    }
                    "40001" | "40P01" => StoreError::Retry(db.message().to_string()),
                    // PostgreSQL: statement timeout or lock wait given up; the server is busy.
                    "57014" | "55P03" => StoreError::Unavailable(db.message().to_string()),
                    // SQLite busy or locked past the busy timeout.
                    "5" | "6" | "261" | "517" => StoreError::Unavailable(db.message().to_string()),
                    // PostgreSQL: cannot connect now, admin shutdown, crash shutdown.
                    "57P01" | "57P02" | "57P03" | "08006" | "08001" | "08004" => {
                        StoreError::Unavailable(db.message().to_string())
                    }
                    _ => StoreError::Other(anyhow::Error::new(e)),
                }
            }
            _ => StoreError::Other(anyhow::Error::new(e)),
        }
    }
}

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
pub type WriteFn = Box<dyn FnOnce(Option<WorkOrder>) -> Result<WorkOrder, DomainError> + Send>;
/// Decides, inside the write transaction, what the entity configuration becomes.
pub type ConfigFn =
    Box<dyn FnOnce(Map<String, Value>) -> Result<Map<String, Value>, DomainError> + Send>;

#[async_trait]
pub trait Store: SchedStore + Send + Sync + 'static {
    /// Cheap liveness check of the database.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the pool: waits for connections in use to be returned, then closes them all.
    async fn close(&self);
    async fn ensure_entity(&self, entity: &EntityId) -> Result<(), StoreError>;
    /// Creates the user in the entity, or replaces role and password if it exists there; a name
    /// taken in another entity is a conflict.
    async fn add_user(
        &self,
        entity: &EntityId,
        name: &UserName,
        role: Role,
        password_hash: &str,
    ) -> Result<AddUser, StoreError>;
    async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// What an authenticated request needs, in one round trip: the token's user `name` as
    /// stored now, `entity`'s configuration and its own versions of the categories `codes`.
    async fn caller_context(
        &self,
        name: &str,
        entity: &EntityId,
        codes: &[&str],
    ) -> Result<CallerContext, StoreError>;
    async fn update_config(
        &self,
        entity: &EntityId,
        f: ConfigFn,
    ) -> Result<Map<String, Value>, StoreError>;

    async fn put_category(&self, entity: &EntityId, category: &Category) -> Result<(), StoreError>;

    async fn get_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
    ) -> Result<Option<WorkOrder>, StoreError>;
    /// Read-modify-write of one work order in one write transaction.
    async fn write_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
        f: WriteFn,
    ) -> Result<Written, StoreError>;
    /// Inserts or replaces many orders in one transaction (demo data, imports, benchmarks).
    async fn import_work_orders(
        &self,
        entity: &EntityId,
        orders: &[WorkOrder],
    ) -> Result<(), StoreError>;
    async fn delete_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
    ) -> Result<bool, StoreError>;
    async fn list_work_orders(
        &self,
        entity: &EntityId,
        filter: &ListFilter,
    ) -> Result<Page, StoreError>;
}

/// The built-in scheduler's part of the contract.
#[async_trait]
pub trait SchedStore: Send + Sync {
    // Its set-up: work centers, technicians, order types, as JSON objects.
    async fn list_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
    ) -> Result<Vec<Value>, StoreError>;
    async fn get_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<Option<Value>, StoreError>;
    /// Returns whether the object was created.
    async fn put_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
        body: &Value,
    ) -> Result<bool, StoreError>;
    async fn delete_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<bool, StoreError>;

    /// Open visits (orders not closed or rejected, with a technician and a planned start) of the
    /// given technicians whose planned start lies in the range.
    async fn list_visits(
        &self,
        entity: &EntityId,
        q: &VisitQuery,
    ) -> Result<Vec<VisitRow>, StoreError>;

    /// The entity's set-up version and visit sequence number (0, 0 before any write).
    async fn sched_versions(&self, entity: &EntityId) -> Result<(i64, i64), StoreError>;
    /// Work orders written or deleted after sequence number `since`, in sequence order; `row`
    /// is `None` when the order is no longer a visit (deleted, closed, unassigned, unplanned).
    async fn visit_changes(
        &self,
        entity: &EntityId,
        since: i64,
    ) -> Result<Vec<VisitChange>, StoreError>;

    /// Starts a follow-up booking: replays, refuses, or records a pending claim (seiapi.md §7.1).
    async fn claim_followup(
        &self,
        entity: &EntityId,
        claim: &NewClaim,
    ) -> Result<ClaimOutcome, StoreError>;
    /// What `claim_followup` would answer, without recording anything: `None` when it would
    /// record a new claim. For a request about to be refused, so a refusal writes nothing.
    async fn peek_followup(
        &self,
        entity: &EntityId,
        claim: &NewClaim,
    ) -> Result<Option<ClaimOutcome>, StoreError>;
    /// Records the answer of a claimed booking made elsewhere (pass-through).
    async fn finish_followup(
        &self,
        entity: &EntityId,
        id: &str,
        done: &FollowupDone,
    ) -> Result<(), StoreError>;
    /// Drops a claim whose booking failed, so a retry may try again.
    async fn abandon_followup(&self, entity: &EntityId, id: &str) -> Result<(), StoreError>;
    async fn list_followups(
        &self,
        entity: &EntityId,
        original: &WorkOrderNum,
    ) -> Result<Vec<FollowupRecord>, StoreError>;

    /// The built-in scheduler's booking, in one write transaction: reads the technicians' visits
    /// under the booking lock, lets `decide` place the visit, then writes the new order, the
    /// moved orders, the part order and the finished follow-up record, or nothing.
    async fn commit_booking(
        &self,
        entity: &EntityId,
        req: &BookingRequest,
        decide: DecideFn,
    ) -> Result<BookingResult, StoreError>;
}

/// Storage settings from the configuration.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub statement_timeout: Duration,
}

/// Opens the database named by the URL (`sqlite:` or `postgres://`) and brings its schema up to
/// date.
pub async fn open(url: &str, opts: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, opts).await?))
    } else {
        Ok(Arc::new(postgres::PgStore::open(url, opts).await?))
    }
}

/// Epoch milliseconds of an optional timestamp, as stored in the indexed columns.
pub(crate) fn millis(t: Option<jiff::Timestamp>) -> Option<i64> {
    t.map(|t| t.as_millisecond())
}
