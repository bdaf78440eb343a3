//! The embedded default: one SQLite file in WAL mode. Every write transaction begins
//! `IMMEDIATE`, so writers queue on the database lock instead of failing with SQLITE_BUSY when a
//! deferred transaction tries to upgrade from read to write.

use std::str::FromStr;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::{
    QueryBuilder, Row, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
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

pub struct SqliteStore {
    pool: SqlitePool,
    /// SQLite has one writer at a time. Queueing this process's writers here, in FIFO order,
    /// is much cheaper than letting them poll the database lock (busy timeout); writers of
    /// other processes (`revisit user add`) still queue on the lock itself.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn json_text(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(e.into()))
}

fn parse_object(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("stored JSON is corrupt: {e}")))
}

impl SqliteStore {
    pub async fn open(url: &str, opts: &StoreOptions) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(opts.statement_timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.statement_timeout)
            // A SQLite connection is a file handle: the ping sqlx sends before handing one out
            // (a hop to the connection's worker thread) buys nothing.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            writer: Default::default(),
        })
    }

    /// Starts a write transaction; keep the guard alive until the transaction ends.
    async fn begin_write(
        &self,
    ) -> Result<
        (
            tokio::sync::OwnedMutexGuard<()>,
            sqlx::Transaction<'static, Sqlite>,
        ),
        StoreError,
    > {
        let guard = self.writer.clone().lock_owned().await;
        Ok((guard, self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn ensure_entity(&self, entity: &EntityId) -> Result<(), StoreError> {
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM entities WHERE id = ?")
            .bind(entity.as_str())
            .fetch_optional(&self.pool)
            .await?;
        if known.is_some() {
            return Ok(());
        }
        let _writer = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO entities (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
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
        let (_writer, mut tx) = self.begin_write().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT entity_id FROM users WHERE name = ?")
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let outcome = match existing {
            Some(e) if e != entity.as_str() => {
                return Err(StoreError::Conflict(format!(
                    "user name {name} is taken in another entity"
                )));
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE users SET role = ?, password_hash = ?, active = 1 WHERE name = ?",
                )
                .bind(role.as_str())
                .bind(password_hash)
                .bind(name.as_str())
                .execute(&mut *tx)
                .await?;
                AddUser::Updated
            }
            None => {
                sqlx::query("INSERT INTO users (name, entity_id, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)")
                    .bind(name.as_str())
                    .bind(entity.as_str())
                    .bind(role.as_str())
                    .bind(password_hash)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
                AddUser::Created
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, entity_id, role, password_hash, active FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(UserRecord {
                name: UserName::parse(r.get("name"))
                    .map_err(|e| StoreError::Other(anyhow::anyhow!(e)))?,
                entity: EntityId::parse(r.get("entity_id"))
                    .map_err(|e| StoreError::Other(anyhow::anyhow!(e)))?,
                role: Role::parse(r.get("role"))
                    .map_err(|e| StoreError::Other(anyhow::anyhow!(e)))?,
                password_hash: r.get("password_hash"),
                active: r.get::<i64, _>("active") != 0,
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
             FROM (SELECT 1) AS one LEFT JOIN users u ON u.name = ?1 LEFT JOIN entities e ON e.id = ?2 \
             LEFT JOIN categories c ON c.entity_id = ?2 AND c.code IN (SELECT value FROM json_each(?3))",
        )
        .bind(name)
        .bind(entity.as_str())
        .bind(json_text(&codes)?)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(CallerContext::default());
        };
        let bad = |e: String| StoreError::Other(anyhow::anyhow!(e));
        let user = match first.get::<Option<String>, _>("name") {
            Some(n) => Some(UserRecord {
                name: UserName::parse(&n).map_err(bad)?,
                entity: EntityId::parse(first.get("entity_id")).map_err(bad)?,
                role: Role::parse(first.get("role")).map_err(bad)?,
                password_hash: first.get("password_hash"),
                active: first.get::<i64, _>("active") != 0,
            }),
            None => None,
        };
        let config = match first.get::<Option<String>, _>("config") {
            Some(text) => parse_object(&text)?,
            None => Map::new(),
        };
        let categories = rows
            .iter()
            .filter_map(|r| r.get::<Option<String>, _>("body"))
            .map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Other(e.into())))
            .collect::<Result<_, _>>()?;
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
        let (_writer, mut tx) = self.begin_write().await?;
        let text: Option<String> = sqlx::query_scalar("SELECT config FROM entities WHERE id = ?")
            .bind(entity.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let current = text
            .map(|t| parse_object(&t))
            .transpose()?
            .unwrap_or_default();
        let next = f(current)?;
        sqlx::query("INSERT INTO entities (id, config, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET config = excluded.config")
            .bind(entity.as_str())
            .bind(json_text(&next)?)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(next)
    }

    async fn put_category(&self, entity: &EntityId, category: &Category) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        sqlx::query("INSERT INTO categories (entity_id, code, body) VALUES (?, ?, ?) ON CONFLICT (entity_id, code) DO UPDATE SET body = excluded.body")
            .bind(entity.as_str())
            .bind(&category.code)
            .bind(json_text(category)?)
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
        let (_writer, mut tx) = self.begin_write().await?;
        let prev = read_order(&mut tx, entity, num).await?;
        let created = prev.is_none();
        let order = f(prev)?;
        upsert_work_order_by(&mut tx, entity, &order, None).await?;
        tx.commit().await?;
        Ok(Written { created, order })
    }

    async fn import_work_orders(
        &self,
        entity: &EntityId,
        orders: &[WorkOrder],
    ) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
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
        let (_writer, mut tx) = self.begin_write().await?;
        // sched_versions first, as every other writer does, so no two transactions wait on
        // each other in opposite orders.
        let seq = next_visit_seq(&mut tx, entity).await?;
        let r = sqlx::query("DELETE FROM work_orders WHERE entity_id = ? AND order_num = ?")
            .bind(entity.as_str())
            .bind(num.as_str())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO work_order_tombstones (entity_id, order_num, seq) VALUES (?, ?, ?)",
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
        fn filtered<'a>(q: &mut QueryBuilder<'a, Sqlite>, entity: &'a EntityId, f: &'a ListFilter) {
            q.push(" FROM work_orders WHERE entity_id = ")
                .push_bind(entity.as_str());
            if let Some(u) = &f.user_name {
                q.push(" AND user_name = ").push_bind(u);
            }
            if !f.statuses.is_empty() {
                q.push(" AND order_status IN (");
                let mut sep = q.separated(", ");
                for s in &f.statuses {
                    sep.push_bind(*s);
                }
                q.push(")");
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
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        filtered(&mut count, entity, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = QueryBuilder::<Sqlite>::new("SELECT body");
        filtered(&mut q, entity, filter);
        q.push(" ORDER BY planned_start IS NULL, planned_start, order_num LIMIT ")
            .push_bind(filter.limit)
            .push(" OFFSET ")
            .push_bind(filter.offset);
        let rows: Vec<String> = q.build_query_scalar().fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|t| serde_json::from_str(t).map_err(|e| StoreError::Other(e.into())))
            .collect::<Result<_, _>>()?;
        Ok(Page { items, total })
    }
}

pub(crate) async fn upsert_work_order_by(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    entity: &EntityId,
    order: &WorkOrder,
    booked_by: Option<&str>,
) -> Result<(), StoreError> {
    let ix = order.indexed();
    let seq = next_visit_seq(tx, entity).await?;
    sqlx::query(
        "INSERT INTO work_orders (entity_id, order_num, order_status, order_type, user_name, service_area_id, \
         planned_start, planned_end, original_order_num, body, updated_at, busy_end, lat, lon, window_start, window_end, booked_by, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
    .bind(json_text(order)?)
    .bind(now_ms())
    .bind(millis(ix.busy_end))
    .bind(ix.lat)
    .bind(ix.lon)
    .bind(ix.window.map(|w| w.0.as_millisecond()))
    .bind(ix.window.map(|w| w.1.as_millisecond()))
    .bind(booked_by)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn followup_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<FollowupRecord, StoreError> {
    let answer: Option<String> = r.get("answer");
    Ok(FollowupRecord {
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
        status_code: r.get::<Option<i64>, _>("status_code").map(|c| c as u16),
        answer: answer
            .map(|a| serde_json::from_str(&a))
            .transpose()
            .map_err(|e| StoreError::Other(e.into()))?,
        created_at_ms: r.get("created_at"),
    })
}

const FOLLOWUP_COLUMNS: &str = "id, original_order_num, idem_key, request_hash, state, order_num, user_name, scheduler, \
     endpoint_host, slot_start, slot_end, status_code, answer, created_at";

fn visit_from_row(r: &sqlx::sqlite::SqliteRow) -> VisitRow {
    VisitRow {
        order_num: r.get("order_num"),
        user_name: r.get("user_name"),
        order_type: r.get("order_type"),
        start_ms: r.get("planned_start"),
        busy_end_ms: r.get("busy_end"),
        lat: r.get("lat"),
        lon: r.get("lon"),
        window_start_ms: r.get("window_start"),
        window_end_ms: r.get("window_end"),
    }
}

async fn visits_in<'c, E: sqlx::Executor<'c, Database = Sqlite>>(
    exec: E,
    entity: &EntityId,
    q: &VisitQuery,
) -> Result<Vec<VisitRow>, StoreError> {
    let mut b = QueryBuilder::<Sqlite>::new(
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
        b.push(" AND user_name IN (");
        let mut sep = b.separated(", ");
        for t in &q.techs {
            sep.push_bind(t.as_str());
        }
        b.push(")");
    }
    b.push(" ORDER BY user_name, planned_start, order_num");
    let rows = b.build().fetch_all(exec).await?;
    Ok(rows.iter().map(visit_from_row).collect())
}

impl SqliteStore {
    async fn write_followup_done(
        tx: &mut sqlx::Transaction<'static, Sqlite>,
        entity: &EntityId,
        id: &str,
        done: &FollowupDone,
    ) -> Result<(), StoreError> {
        let r = sqlx::query("UPDATE followups SET state = 'done', order_num = ?, status_code = ?, answer = ? WHERE entity_id = ? AND id = ?")
            .bind(&done.order_num)
            .bind(done.status_code as i64)
            .bind(json_text(&done.answer)?)
            .bind(entity.as_str())
            .bind(id)
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
}

#[async_trait]
impl SchedStore for SqliteStore {
    async fn list_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
    ) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM sched_objects WHERE entity_id = ? AND kind = ? ORDER BY id",
        )
        .bind(entity.as_str())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|t| serde_json::from_str(t).map_err(|e| StoreError::Other(e.into())))
            .collect()
    }

    async fn get_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT body FROM sched_objects WHERE entity_id = ? AND kind = ? AND id = ?",
        )
        .bind(entity.as_str())
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Other(e.into())))
            .transpose()
    }

    async fn put_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
        body: &Value,
    ) -> Result<bool, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO entities (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(entity.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let existed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sched_objects WHERE entity_id = ? AND kind = ? AND id = ?",
        )
        .bind(entity.as_str())
        .bind(kind.as_str())
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO sched_objects (entity_id, kind, id, body) VALUES (?, ?, ?, ?) ON CONFLICT (entity_id, kind, id) DO UPDATE SET body = excluded.body")
            .bind(entity.as_str())
            .bind(kind.as_str())
            .bind(id)
            .bind(json_text(body)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sched_versions (entity_id, setup_version) VALUES (?, 1) ON CONFLICT (entity_id) DO UPDATE SET setup_version = sched_versions.setup_version + 1")
            .bind(entity.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(existed == 0)
    }

    async fn delete_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        let r =
            sqlx::query("DELETE FROM sched_objects WHERE entity_id = ? AND kind = ? AND id = ?")
                .bind(entity.as_str())
                .bind(kind.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        sqlx::query("INSERT INTO sched_versions (entity_id, setup_version) VALUES (?, 1) ON CONFLICT (entity_id) DO UPDATE SET setup_version = sched_versions.setup_version + 1")
            .bind(entity.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn sched_versions(&self, entity: &EntityId) -> Result<(i64, i64), StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT setup_version, visit_seq FROM sched_versions WHERE entity_id = ?",
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
        // One statement, as on PostgreSQL (where it makes both reads one snapshot).
        let rows = sqlx::query(
            "SELECT order_num, seq, user_name, order_type, planned_start, busy_end, lat, lon, window_start, window_end, order_status, 0 AS gone \
             FROM work_orders WHERE entity_id = ? AND seq > ? \
             UNION ALL SELECT order_num, seq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1 \
             FROM work_order_tombstones WHERE entity_id = ? AND seq > ? ORDER BY seq",
        )
        .bind(entity.as_str())
        .bind(since)
        .bind(entity.as_str())
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let gone: i64 = r.get("gone");
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
        let (_writer, mut tx) = self.begin_write().await?;
        let (by_key, latest) = claim_records(&mut tx, entity, claim).await?;
        let now = now_ms();
        match judge_claim(claim, by_key.as_ref(), latest.as_ref(), now) {
            Judgement::Answer(a) => Ok(*a),
            Judgement::Insert {
                delete_ids,
                forget_key_ids,
            } => {
                for id in forget_key_ids {
                    sqlx::query(
                        "UPDATE followups SET idem_key = NULL WHERE entity_id = ? AND id = ?",
                    )
                    .bind(entity.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                for id in delete_ids {
                    sqlx::query("DELETE FROM followups WHERE entity_id = ? AND id = ?")
                        .bind(entity.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO followups (entity_id, id, original_order_num, idem_key, request_hash, state, user_name, scheduler, \
                     endpoint_host, slot_start, slot_end, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
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
        let (_writer, mut tx) = self.begin_write().await?;
        Self::write_followup_done(&mut tx, entity, id, done).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn abandon_followup(&self, entity: &EntityId, id: &str) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut conn = self.pool.acquire().await?;
        drop_pending_claim(&mut conn, entity, id).await
    }

    async fn list_followups(
        &self,
        entity: &EntityId,
        original: &WorkOrderNum,
    ) -> Result<Vec<FollowupRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = ? AND original_order_num = ? AND state = 'done' ORDER BY created_at"
        ))
        .bind(entity.as_str())
        .bind(original.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(followup_from_row).collect()
    }

    async fn commit_booking(
        &self,
        entity: &EntityId,
        req: &BookingRequest,
        decide: DecideFn,
    ) -> Result<BookingResult, StoreError> {
        // BEGIN IMMEDIATE takes the database's write lock first, so the visits read below
        // cannot change before this transaction commits.
        let (_writer, mut tx) = self.begin_write().await?;
        let visits = visits_in(&mut *tx, entity, &req.visits).await?;
        match decide(BookingView { visits }) {
            Decision::Unavailable(why) => {
                drop_pending_claim(&mut tx, entity, &req.claim_id).await?;
                tx.commit().await?;
                Ok(BookingResult::Unavailable(why))
            }
            Decision::Write(w) => {
                // Moved visits only move later: writing the latest first never overlaps transiently.
                let mut moves = w.shifted.clone();
                moves.sort_by_key(|m| std::cmp::Reverse(m.1));
                for (num, start, end) in &moves {
                    let num = WorkOrderNum::parse(num)
                        .map_err(|e| StoreError::Other(anyhow::anyhow!(e)))?;
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
                    sqlx::query("INSERT INTO part_orders (entity_id, part_order_num, order_num, parts, created_at) VALUES (?, ?, ?, ?, ?)")
                        .bind(entity.as_str())
                        .bind(num)
                        .bind(w.new_order.order_num().as_str())
                        .bind(json_text(parts)?)
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                }
                Self::write_followup_done(&mut tx, entity, &req.claim_id, &w.done).await?;
                tx.commit().await?;
                Ok(BookingResult::Booked(w.done))
            }
        }
    }
}

/// The entity's next visit sequence number. On PostgreSQL the row lock taken here is held to
/// commit, so sequence numbers become visible in the order they were taken.
async fn next_visit_seq(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    entity: &EntityId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("INSERT INTO sched_versions (entity_id, visit_seq) VALUES (?, 1) ON CONFLICT (entity_id) DO UPDATE SET visit_seq = sched_versions.visit_seq + 1 RETURNING visit_seq")
        .bind(entity.as_str())
        .fetch_one(&mut **tx)
        .await?)
}

/// The records a claim is judged against: the one with its idempotency key, and the latest
/// for its original order.
async fn claim_records(
    conn: &mut sqlx::SqliteConnection,
    entity: &EntityId,
    claim: &NewClaim,
) -> Result<(Option<FollowupRecord>, Option<FollowupRecord>), StoreError> {
    let by_key = match &claim.idem_key {
        Some(k) => sqlx::query(&format!(
            "SELECT {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = ? AND idem_key = ?"
        ))
        .bind(entity.as_str())
        .bind(k)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| followup_from_row(&r))
        .transpose()?,
        None => None,
    };
    let latest = sqlx::query(&format!(
        "SELECT {FOLLOWUP_COLUMNS} FROM followups WHERE entity_id = ? AND original_order_num = ? ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(entity.as_str())
    .bind(claim.original.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| followup_from_row(&r))
    .transpose()?;
    Ok((by_key, latest))
}

/// A stored work order, on the pool's connection or in a transaction.
async fn read_order(
    conn: &mut sqlx::SqliteConnection,
    entity: &EntityId,
    num: &WorkOrderNum,
) -> Result<Option<WorkOrder>, StoreError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT body FROM work_orders WHERE entity_id = ? AND order_num = ?")
            .bind(entity.as_str())
            .bind(num.as_str())
            .fetch_optional(conn)
            .await?;
    text.map(|t| {
        WorkOrder::parse(num, parse_object(&t)?)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("stored work order invalid: {e}")))
    })
    .transpose()
}

/// Deletes a claim that is still pending (a booking that did not happen).
async fn drop_pending_claim(
    conn: &mut sqlx::SqliteConnection,
    entity: &EntityId,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM followups WHERE entity_id = ? AND id = ? AND state = 'pending'")
        .bind(entity.as_str())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
