//! PostgreSQL, for deployments with several Revisit processes on one database. Row-level
//! serialisation uses transaction-scoped advisory locks keyed on (entity, key), so concurrent
//! read-modify-write of one work order or configuration never loses an update.

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::{
    PgPool, Postgres, QueryBuilder, Row,
    postgres::{PgConnectOptions, PgPoolOptions},
    types::Json,
};

use super::{
    AddUser, BookingRequest, BookingResult, BookingView, CallerContext, ClaimOutcome, ConfigFn,
    DecideFn, Decision, FollowupDone, FollowupRecord, FollowupState, Judgement, ListFilter,
    NewClaim, Page, SchedKind, SchedStore, Store, StoreError, StoreOptions, UserRecord,
    VisitChange, VisitQuery, VisitRow, WriteFn, Written, judge_claim, millis, peek_claim,
    visit_change,
};
use crate::domain::{
    EntityId, Role, UserName, WorkOrderNum, category::Category, workorder::WorkOrder,
};

pub struct PgStore {
    pool: PgPool,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("stored data invalid: {e}"))
}

impl PgStore {
    pub async fn open(url: &str, opts: &StoreOptions) -> anyhow::Result<Self> {
        let timeout_ms = opts.statement_timeout.as_millis().to_string();
        let options: PgConnectOptions = url.parse::<PgConnectOptions>()?.options([
            ("statement_timeout", timeout_ms.as_str()),
            ("lock_timeout", timeout_ms.as_str()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.statement_timeout)
            // sqlx pings a connection when it goes back to the pool and drops it if broken.
            // Pinging it again before every use costs a round trip per query; only a
            // connection that sat idle for a while (say, through a database restart) is
            // checked before use, and a broken one replaced.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_CHECK_AFTER {
                        use sqlx::Connection;
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Takes several advisory locks in one round trip, in the order given (callers give keys in
/// their locking order). PostgreSQL evaluates a volatile function of the select list after the
/// sort, so the locks are taken in array order.
pub(crate) async fn lock_keys(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entity: &EntityId,
    keys: &[String],
) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || k, 0)) \
         FROM unnest($2::text[]) WITH ORDINALITY AS t(k, i) ORDER BY i",
    )
    .bind(entity.as_str())
    .bind(keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A pooled connection idle for longer than this is pinged before it is used.
const IDLE_CHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// How often a booking is decided again in one transaction when a technician's day changed
/// between the read and the lock.
const MAX_DECISIONS: u32 = 5;

/// The advisory lock key of a technician's visits: taken by every work-order write that assigns
/// an order to them, and by a booking before it commits.
fn tech_key(user: &str) -> String {
    format!("tech:{user}")
}

/// Serialises transactions on one (entity, key) until commit or rollback.
pub(crate) async fn lock_key(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entity: &EntityId,
    key: &str,
) -> Result<(), StoreError> {
    lock_keys(tx, entity, &[key.to_string()]).await
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn ensure_entity(&self, entity: &EntityId) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO entities (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(entity.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn add_user(
        &self,
        entity: &EntityId,
        name: &UserName,
        role: Role,
        password_hash: &str,
    ) -> Result<AddUser, StoreError> {
        // One statement: insert, or update only when the name belongs to this entity.
        let row = sqlx::query(
            "INSERT INTO users (name, entity_id, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, active = TRUE \
             WHERE users.entity_id = excluded.entity_id RETURNING (xmax = 0) AS inserted",
        )
        .bind(name.as_str())
        .bind(entity.as_str())
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Err(StoreError::Conflict(format!(
                "user name {name} is taken in another entity"
            ))),
            Some(r) if r.get::<bool, _>("inserted") => Ok(AddUser::Created),
            Some(_) => Ok(AddUser::Updated),
        }
    }

    async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, entity_id, role, password_hash, active FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(UserRecord {
                name: UserName::parse(r.get("name")).map_err(corrupt)?,
                entity: EntityId::parse(r.get("entity_id")).map_err(corrupt)?,
                role: Role::parse(r.get("role")).map_err(corrupt)?,
                password_hash: r.get("password_hash"),
                active: r.get("active"),
            })
        })
        .transpose()
    }

    async fn caller_context(
        &self,
        name: &str,
        entity: &EntityId,
        codes: &[&str],
    ) -> Result<CallerContext, StoreError> {
        // One row at least, whatever exists; one more per category found.
        let rows = sqlx::query(
            "SELECT u.name, u.entity_id, u.role, u.password_hash, u.active, e.config, c.body \
             FROM (SELECT 1) AS one LEFT JOIN users u ON u.name = $1 LEFT JOIN entities e ON e.id = $2 \
             LEFT JOIN categories c ON c.entity_id = $2 AND c.code = ANY($3)",
        )
        .bind(name)
        .bind(entity.as_str())
        .bind(codes)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(CallerContext::default());
        };
        let user = match first.get::<Option<String>, _>("name") {
            Some(n) => Some(UserRecord {
                name: UserName::parse(&n).map_err(corrupt)?,
                entity: EntityId::parse(first.get("entity_id")).map_err(corrupt)?,
                role: Role::parse(first.get("role")).map_err(corrupt)?,
                password_hash: first.get("password_hash"),
                active: first.get("active"),
            }),
            None => None,
        };
        let config = first
            .get::<Option<Json<Map<String, Value>>>, _>("config")
            .map(|j| j.0)
            .unwrap_or_default();
        let categories = rows
            .iter()
            .filter_map(|r| r.get::<Option<Json<Category>>, _>("body"))
            .map(|j| j.0)
            .collect();
        Ok(CallerContext {
            user,
            config,
            categories,
        })
    }

    async fn update_config(
        &self,
        entity: &EntityId,
        f: ConfigFn,
    ) -> Result<Map<String, Value>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO entities (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(entity.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let Json(current): Json<Map<String, Value>> =
            sqlx::query_scalar("SELECT config FROM entities WHERE id = $1 FOR UPDATE")
                .bind(entity.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let next = f(current)?;
        sqlx::query("UPDATE entities SET config = $2 WHERE id = $1")
            .bind(entity.as_str())
            .bind(Json(&next))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(next)
    }

    async fn put_category(&self, entity: &EntityId, category: &Category) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO categories (entity_id, code, body) VALUES ($1, $2, $3) ON CONFLICT (entity_id, code) DO UPDATE SET body = excluded.body")
            .bind(entity.as_str())
            .bind(&category.code)
            .bind(Json(category))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
    ) -> Result<Option<WorkOrder>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_order(&mut conn, entity, num).await
    }

    async fn write_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
        f: WriteFn,
    ) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The row may not exist yet, so FOR UPDATE alone cannot serialise two creators.
        lock_key(&mut tx, entity, &format!("wo:{num}")).await?;
        let prev = read_order(&mut tx, entity, num).await?;
        let created = prev.is_none();
        let order = f(prev)?;
        if let Some(user) = order.user_name() {
            // A booking for this technician decided on their day as it was before this write:
            // it re-reads the day under this lock before it commits (see commit_booking).
            lock_key(&mut tx, entity, &tech_key(user)).await?;
        }
        upsert_work_order_by(&mut tx, entity, &order, None).await?;
        tx.commit().await?;
        Ok(Written { created, order })
    }

    async fn import_work_orders(
        &self,
        entity: &EntityId,
        orders: &[WorkOrder],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The locks a work-order write takes, in the same order: every order, then every
        // technician they are assigned to, each sorted.
        let nums: std::collections::BTreeSet<&str> =
            orders.iter().map(|o| o.order_num().as_str()).collect();
        let techs: std::collections::BTreeSet<&str> =
            orders.iter().filter_map(WorkOrder::user_name).collect();
        let keys: Vec<String> = nums
            .into_iter()
            .map(|n| format!("wo:{n}"))
            .chain(techs.into_iter().map(tech_key))
            .collect();
        lock_keys(&mut tx, entity, &keys).await?;
        for order in orders {
            upsert_work_order_by(&mut tx, entity, order, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // sched_versions before the row, as every other writer does (after its advisory
        // locks), so no two transactions wait on each other in opposite orders.
        let seq = next_visit_seq(&mut tx, entity).await?;
        let r = sqlx::query("DELETE FROM work_orders WHERE entity_id = $1 AND order_num = $2")
            .bind(entity.as_str())
            .bind(num.as_str())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO work_order_tombstones (entity_id, order_num, seq) VALUES ($1, $2, $3)",
        )
        .bind(entity.as_str())
        .bind(num.as_str())
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_work_orders(
        &self,
        entity: &EntityId,
        filter: &ListFilter,
    ) -> Result<Page, StoreError> {
        fn filtered<'a>(
            q: &mut QueryBuilder<'a, Postgres>,
            entity: &'a EntityId,
            f: &'a ListFilter,
        ) {
            q.push(" FROM work_orders WHERE entity_id = ")
                .push_bind(entity.as_str());
            if let Some(u) = &f.user_name {
                q.push(" AND user_name = ").push_bind(u);
            }
            if !f.statuses.is_empty() {
                q.push(" AND order_status = ANY(")
                    .push_bind(&f.statuses)
                    .push(")");
            }
            if let Some(a) = &f.service_area_id {
                q.push(" AND service_area_id = ").push_bind(a);
            }
            if let Some(t) = f.from_ms {
                q.push(" AND planned_start >= ").push_bind(t);
            }
            if let Some(t) = f.to_ms {
                q.push(" AND planned_start < ").push_bind(t);
            }
        }
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
        filtered(&mut count, entity, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = QueryBuilder::<Postgres>::new("SELECT body");
        filtered(&mut q, entity, filter);
        q.push(" ORDER BY planned_start IS NULL, planned_start, order_num LIMIT ")
            .push_bind(filter.limit)
            .push(" OFFSET ")
            .push_bind(filter.offset);
        let rows: Vec<Json<Value>> = q.build_query_scalar().fetch_all(&self.pool).await?;
        Ok(Page {
            items: rows.into_iter().map(|j| j.0).collect(),
            total,
        })
    }
}

/// A stored work order, on the pool's connection or in a transaction.
async fn read_order(
    conn: &mut sqlx::PgConnection,
    entity: &EntityId,
    num: &WorkOrderNum,
) -> Result<Option<WorkOrder>, StoreError> {
    let body: Option<Json<Map<String, Value>>> =
        sqlx::query_scalar("SELECT body FROM work_orders WHERE entity_id = $1 AND order_num = $2")
            .bind(entity.as_str())
            .bind(num.as_str())
            .fetch_optional(conn)
            .await?;
    body.map(|j| WorkOrder::parse(num, j.0).map_err(corrupt))
        .transpose()
}

/// Deletes a claim that is still pending (a booking that did not happen).
async fn drop_pending_claim(
    conn: &mut sqlx::PgConnection,
    entity: &EntityId,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM followups WHERE entity_id = $1 AND id = $2 AND state = 'pending'")
        .bind(entity.as_str())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn upsert_work_order_by(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entity: &EntityId,
    order: &WorkOrder,
    booked_by: Option<&str>,
) -> Result<(), StoreError> {
    let ix = order.indexed();
    // The entity's next visit sequence number is taken in the same statement (one round trip);
    // its row lock is held to commit, so sequence numbers become visible in the order taken.
    sqlx::query(
        "WITH s AS (INSERT INTO sched_versions (entity_id, visit_seq) VALUES ($1, 1) ON CONFLICT (entity_id) \
         DO UPDATE SET visit_seq = sched_versions.visit_seq + 1 RETURNING visit_seq) \
         INSERT INTO work_orders (entity_id, order_num, order_status, order_type, user_name, service_area_id, \
         planned_start, planned_end, original_order_num, body, updated_at, busy_end, lat, lon, window_start, window_end, booked_by, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, (SELECT visit_seq FROM s)) \
         ON CONFLICT (entity_id, order_num) DO UPDATE SET order_status = excluded.order_status, \
         order_type = excluded.order_type, user_name = excluded.user_name, service_area_id = excluded.service_area_id, \
         planned_start = excluded.planned_start, planned_end = excluded.planned_end, \
         original_order_num = excluded.original_order_num, body = excluded.body, updated_at = excluded.updated_at, \
         busy_end = excluded.busy_end, lat = excluded.lat, lon = excluded.lon, window_start = excluded.window_start, \
         window_end = excluded.window_end, booked_by = COALESCE(excluded.booked_by, work_orders.booked_by), seq = excluded.seq",
    )
    .bind(entity.as_str())
    .bind(order.order_num().as_str())
    .bind(ix.order_status)
    .bind(ix.order_type)
    .bind(ix.user_name)
    .bind(ix.service_area_id)
    .bind(millis(ix.planned_start))
    .bind(millis(ix.planned_end))
    .bind(ix.original_order_num)
    .bind(Json(order))
    .bind(now_ms())
    .bind(millis(ix.busy_end))
    .bind(ix.lat)
    .bind(ix.lon)
    .bind(ix.window.map(|w| w.0.as_millisecond()))
    .bind(ix.window.map(|w| w.1.as_millisecond()))
    .bind(booked_by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn followup_from_row(r: &sqlx::postgres::PgRow) -> FollowupRecord {
    let answer: Option<Json<Value>> = r.get("answer");
    FollowupRecord {
        id: r.get("id"),
        original_order_num: r.get("original_order_num"),
        idem_key: r.get("idem_key"),
        request_hash: r.get("request_hash"),
        state: if r.get::<String, _>("state") == "done" {
            FollowupState::Done
        } else {
            FollowupState::Pending
        },
        order_num: r.get("order_num"),
        user_name: r.get("user_name"),
        scheduler: r.get("scheduler"),
        endpoint_host: r.get("endpoint_host"),
        slot_start_ms: r.get("slot_start"),
        slot_end_ms: r.get("slot_end"),
        status_code: r.get::<Option<i32>, _>("status_code").map(|c| c as u16),
        answer: answer.map(|j| j.0),
        created_at_ms: r.get("created_at"),
    }
}

const FOLLOWUP_COLUMNS: &str = "id, original_order_num, idem_key, request_hash, state, order_num, user_name, scheduler, \
     endpoint_host, slot_start, slot_end, status_code, answer, created_at";

async fn visits_in<'c, E: sqlx::Executor<'c, Database = Postgres>>(
    exec: E,
    entity: &EntityId,
    q: &VisitQuery,
) -> Result<Vec<VisitRow>, StoreError> {
    let mut b = QueryBuilder::<Postgres>::new(
        "SELECT order_num, user_name, order_type, planned_start, busy_end, lat, lon, window_start, window_end \
         FROM work_orders WHERE entity_id = ",
    );
    b.push_bind(entity.as_str());
    b.push(" AND user_name IS NOT NULL AND planned_start IS NOT NULL AND (order_status IS NULL OR order_status NOT IN (4096, 4097, 1001))");
    // Overlapping the range, so a long visit that began before it still counts.
    b.push(" AND COALESCE(busy_end, planned_start) > ")
        .push_bind(q.from_ms);
    b.push(" AND planned_start < ").push_bind(q.to_ms);
    if !q.techs.is_empty() {
        b.push(" AND user_name = ANY(")
            .push_bind(&q.techs)
            .push(")");
    }
    b.push(" ORDER BY user_name, planned_start, order_num");
    let rows = b.build().fetch_all(exec).await?;
    Ok(rows
        .iter()
        .map(|r| VisitRow {
            order_num: r.get("order_num"),
            user_name: r.get("user_name"),
            order_type: r.get("order_type"),
            start_ms: r.get("planned_start"),
            busy_end_ms: r.get("busy_end"),
            lat: r.get("lat"),
            lon: r.get("lon"),
            window_start_ms: r.get("window_start"),
            window_end_ms: r.get("window_end"),
        })
        .collect())
}

/// The records a claim is judged against, in one query: the one with its idempotency key
/// (`which` = 0), and the latest for its original order (`which` = 1).
async fn claim_records(
    conn: &mut sqlx::PgConnection,
    entity: &EntityId,
    claim: &NewClaim,
) -> Result<(Option<FollowupRecord>, Option<FollowupRecord>), StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT 0 AS which, {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = $1 AND idem_key = $2 \
         UNION ALL (SELECT 1, {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = $1 AND original_order_num = $3 \
         ORDER BY created_at DESC LIMIT 1)"
    ))
    .bind(entity.as_str())
    .bind(&claim.idem_key)
    .bind(claim.original.as_str())
    .fetch_all(conn)
    .await?;
    let pick = |which: i32| {
        rows.iter()
            .find(|r| r.get::<i32, _>("which") == which)
            .map(followup_from_row)
    };
    Ok((pick(0), pick(1)))
}

async fn write_followup_done(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entity: &EntityId,
    id: &str,
    done: &FollowupDone,
) -> Result<(), StoreError> {
    let r = sqlx::query("UPDATE followups SET state = 'done', order_num = $3, status_code = $4, answer = $5 WHERE entity_id = $1 AND id = $2")
        .bind(entity.as_str())
        .bind(id)
        .bind(&done.order_num)
        .bind(done.status_code as i32)
        .bind(Json(&done.answer))
        .execute(&mut **tx)
        .await?;
    if r.rows_affected() != 1 {
        // The claim was taken over (it looked abandoned): this booking must not be recorded.
        return Err(StoreError::Conflict(
            "the follow-up claim is no longer held".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl SchedStore for PgStore {
    async fn list_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
    ) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<Json<Value>> = sqlx::query_scalar(
            "SELECT body FROM sched_objects WHERE entity_id = $1 AND kind = $2 ORDER BY id",
        )
        .bind(entity.as_str())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|j| j.0).collect())
    }

    async fn get_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let row: Option<Json<Value>> = sqlx::query_scalar(
            "SELECT body FROM sched_objects WHERE entity_id = $1 AND kind = $2 AND id = $3",
        )
        .bind(entity.as_str())
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|j| j.0))
    }

    async fn put_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
        body: &Value,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO entities (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(entity.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let created: bool = sqlx::query_scalar(
            "INSERT INTO sched_objects (entity_id, kind, id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (entity_id, kind, id) DO UPDATE SET body = excluded.body RETURNING (xmax = 0)",
        )
        .bind(entity.as_str())
        .bind(kind.as_str())
        .bind(id)
        .bind(Json(body))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO sched_versions (entity_id, setup_version) VALUES ($1, 1) ON CONFLICT (entity_id) DO UPDATE SET setup_version = sched_versions.setup_version + 1")
            .bind(entity.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn delete_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let r =
            sqlx::query("DELETE FROM sched_objects WHERE entity_id = $1 AND kind = $2 AND id = $3")
                .bind(entity.as_str())
                .bind(kind.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        sqlx::query("INSERT INTO sched_versions (entity_id, setup_version) VALUES ($1, 1) ON CONFLICT (entity_id) DO UPDATE SET setup_version = sched_versions.setup_version + 1")
            .bind(entity.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn sched_versions(&self, entity: &EntityId) -> Result<(i64, i64), StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT setup_version, visit_seq FROM sched_versions WHERE entity_id = $1",
        )
        .bind(entity.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.unwrap_or((0, 0)))
    }

    async fn visit_changes(
        &self,
        entity: &EntityId,
        since: i64,
    ) -> Result<Vec<VisitChange>, StoreError> {
        // One statement, so PostgreSQL reads both tables in one snapshot.
        let rows = sqlx::query(
            "SELECT order_num, seq, user_name, order_type, planned_start, busy_end, lat, lon, window_start, window_end, order_status, 0 AS gone \
             FROM work_orders WHERE entity_id = $1 AND seq > $2 \
             UNION ALL SELECT order_num, seq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1 \
             FROM work_order_tombstones WHERE entity_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(entity.as_str())
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let gone: i32 = r.get("gone");
                let row = VisitRow {
                    order_num: r.get("order_num"),
                    user_name: r.get::<Option<String>, _>("user_name").unwrap_or_default(),
                    order_type: r.get("order_type"),
                    start_ms: r.get::<Option<i64>, _>("planned_start").unwrap_or(i64::MIN),
                    busy_end_ms: r.get("busy_end"),
                    lat: r.get("lat"),
                    lon: r.get("lon"),
                    window_start_ms: r.get("window_start"),
                    window_end_ms: r.get("window_end"),
                };
                let unplanned = row.start_ms == i64::MIN;
                visit_change(
                    r.get("order_num"),
                    r.get("seq"),
                    gone != 0 || unplanned,
                    r.get("order_status"),
                    row,
                )
            })
            .collect())
    }

    async fn list_visits(
        &self,
        entity: &EntityId,
        q: &VisitQuery,
    ) -> Result<Vec<VisitRow>, StoreError> {
        visits_in(&self.pool, entity, q).await
    }

    async fn claim_followup(
        &self,
        entity: &EntityId,
        claim: &NewClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Claims for one original order are serialised, whatever key they carry.
        let mut keys = vec![format!("followup:{}", claim.original)];
        keys.extend(claim.idem_key.iter().map(|k| format!("idem:{k}")));
        lock_keys(&mut tx, entity, &keys).await?;
        let (by_key, latest) = claim_records(&mut tx, entity, claim).await?;
        let now = now_ms();
        match judge_claim(claim, by_key.as_ref(), latest.as_ref(), now) {
            Judgement::Answer(a) => Ok(*a),
            Judgement::Insert {
                delete_ids,
                forget_key_ids,
            } => {
                if !forget_key_ids.is_empty() {
                    sqlx::query("UPDATE followups SET idem_key = NULL WHERE entity_id = $1 AND id = ANY($2)")
                        .bind(entity.as_str())
                        .bind(&forget_key_ids)
                        .execute(&mut *tx)
                        .await?;
                }
                if !delete_ids.is_empty() {
                    sqlx::query("DELETE FROM followups WHERE entity_id = $1 AND id = ANY($2)")
                        .bind(entity.as_str())
                        .bind(&delete_ids)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO followups (entity_id, id, original_order_num, idem_key, request_hash, state, user_name, scheduler, \
                     endpoint_host, slot_start, slot_end, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11)",
                )
                .bind(entity.as_str())
                .bind(&claim.id)
                .bind(claim.original.as_str())
                .bind(&claim.idem_key)
                .bind(&claim.request_hash)
                .bind(&claim.user_name)
                .bind(&claim.scheduler)
                .bind(&claim.endpoint_host)
                .bind(claim.slot_start_ms)
                .bind(claim.slot_end_ms)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(ClaimOutcome::New)
            }
        }
    }

    async fn peek_followup(
        &self,
        entity: &EntityId,
        claim: &NewClaim,
    ) -> Result<Option<ClaimOutcome>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let (by_key, latest) = claim_records(&mut conn, entity, claim).await?;
        Ok(peek_claim(
            claim,
            by_key.as_ref(),
            latest.as_ref(),
            now_ms(),
        ))
    }

    async fn finish_followup(
        &self,
        entity: &EntityId,
        id: &str,
        done: &FollowupDone,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        write_followup_done(&mut tx, entity, id, done).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn abandon_followup(&self, entity: &EntityId, id: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        drop_pending_claim(&mut conn, entity, id).await
    }

    async fn list_followups(
        &self,
        entity: &EntityId,
        original: &WorkOrderNum,
    ) -> Result<Vec<FollowupRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = $1 AND original_order_num = $2 AND state = 'done' ORDER BY created_at"
        ))
        .bind(entity.as_str())
        .bind(original.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(followup_from_row).collect())
    }

    async fn commit_booking(
        &self,
        entity: &EntityId,
        req: &BookingRequest,
        decide: DecideFn,
    ) -> Result<BookingResult, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Bookings that could touch the same technicians' days queue here; the overlap trigger
        // backs the lock up.
        lock_key(&mut tx, entity, &req.lock_key).await?;
        // The decision is taken on the visits as read; it stands once the technicians it
        // changes are locked and their days read again unchanged. Work-order writes take the
        // same technician locks (after their own `wo:` lock, as here), so from then on no
        // dispatcher or CRM write can change those days until this commits; one that committed
        // after the first read shows in the second, and the booking is decided again.
        let mut attempt = 0;
        let w = loop {
            attempt += 1;
            let visits = visits_in(&mut *tx, entity, &req.visits).await?;
            let seen = visits.clone();
            let w = match decide(BookingView { visits }) {
                Decision::Write(w) => w,
                Decision::Unavailable(why) => {
                    drop_pending_claim(&mut tx, entity, &req.claim_id).await?;
                    tx.commit().await?;
                    return Ok(BookingResult::Unavailable(why));
                }
            };
            // The orders this booking writes are locked as a work-order write locks them, so a
            // concurrent PATCH cannot overwrite a moved visit with what it read before.
            let mut nums: Vec<String> = w.shifted.iter().map(|m| m.0.clone()).collect();
            nums.push(w.new_order.order_num().to_string());
            nums.sort();
            let mut keys: Vec<String> = nums.iter().map(|n| format!("wo:{n}")).collect();
            let mut techs: std::collections::BTreeSet<String> = seen
                .iter()
                .filter(|v| w.shifted.iter().any(|m| m.0 == v.order_num))
                .map(|v| v.user_name.clone())
                .collect();
            techs.extend(w.new_order.user_name().map(str::to_string));
            keys.extend(techs.iter().map(|t| tech_key(t)));
            // Locks taken after a savepoint are released when it is rolled back to: a decision
            // taken again starts from the booking lock alone, so its locks too are taken in
            // the order every writer takes them (`wo:` before `tech:`, each sorted).
            sqlx::query("SAVEPOINT decided").execute(&mut *tx).await?;
            lock_keys(&mut tx, entity, &keys).await?;
            let now_seen = visits_in(
                &mut *tx,
                entity,
                &VisitQuery {
                    techs: techs.iter().cloned().collect(),
                    ..req.visits.clone()
                },
            )
            .await?;
            let then_seen = seen.iter().filter(|v| techs.contains(&v.user_name));
            if now_seen.iter().eq(then_seen) {
                break w;
            }
            for step in ["ROLLBACK TO SAVEPOINT decided", "RELEASE SAVEPOINT decided"] {
                sqlx::query(step).execute(&mut *tx).await?;
            }
            if attempt >= MAX_DECISIONS {
                return Err(StoreError::Retry(
                    "the technicians' days kept changing while the booking was decided".into(),
                ));
            }
        };
        // Moved visits only move later: writing the latest first never overlaps transiently.
        let mut moves = w.shifted.clone();
        moves.sort_by_key(|m| std::cmp::Reverse(m.1));
        for (num, start, end) in &moves {
            let num =
                WorkOrderNum::parse(num).map_err(|e| StoreError::Other(anyhow::anyhow!(e)))?;
            let Some(order) = read_order(&mut tx, entity, &num).await? else {
                return Err(StoreError::Conflict(format!(
                    "work order {num} vanished during booking"
                )));
            };
            let moved = order.moved(*start, *end);
            upsert_work_order_by(&mut tx, entity, &moved, Some("scheduler")).await?;
        }
        upsert_work_order_by(&mut tx, entity, &w.new_order, Some("scheduler")).await?;
        if let Some((num, parts)) = &w.part_order {
            sqlx::query("INSERT INTO part_orders (entity_id, part_order_num, order_num, parts, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(entity.as_str())
                .bind(num)
                .bind(w.new_order.order_num().as_str())
                .bind(Json(parts))
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        write_followup_done(&mut tx, entity, &req.claim_id, &w.done).await?;
        tx.commit().await?;
        Ok(BookingResult::Booked(w.done))
    }
}

/// The entity's next visit sequence number. On PostgreSQL the row lock taken here is held to
/// commit, so sequence numbers become visible in the order they were taken.
async fn next_visit_seq(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entity: &EntityId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("INSERT INTO sched_versions (entity_id, visit_seq) VALUES ($1, 1) ON CONFLICT (entity_id) DO UPDATE SET visit_seq = sched_versions.visit_seq + 1 RETURNING visit_seq")
        .bind(entity.as_str())
        .fetch_one(&mut **tx)
        .await?)
}
