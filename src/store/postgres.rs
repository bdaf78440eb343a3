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
    AddUser, ConfigFn, ListFilter, Page, Store, StoreError, StoreOptions, UserRecord, WriteFn,
    Written, millis,
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
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Serialises transactions on one (entity, key) until commit or rollback.
pub(crate) async fn lock_key(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entity: &EntityId,
    key: &str,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
        .bind(entity.as_str())
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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

    async fn user_exists(&self, entity: &EntityId, name: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM users WHERE entity_id = $1 AND name = $2 AND active)",
        )
        .bind(entity.as_str())
        .bind(name)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn get_config(&self, entity: &EntityId) -> Result<Map<String, Value>, StoreError> {
        let cfg: Option<Json<Map<String, Value>>> =
            sqlx::query_scalar("SELECT config FROM entities WHERE id = $1")
                .bind(entity.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(cfg.map(|j| j.0).unwrap_or_default())
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

    async fn get_category(
        &self,
        entity: &EntityId,
        code: &str,
    ) -> Result<Option<Category>, StoreError> {
        let body: Option<Json<Category>> =
            sqlx::query_scalar("SELECT body FROM categories WHERE entity_id = $1 AND code = $2")
                .bind(entity.as_str())
                .bind(code)
                .fetch_optional(&self.pool)
                .await?;
        Ok(body.map(|j| j.0))
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
        let body: Option<Json<Map<String, Value>>> = sqlx::query_scalar(
            "SELECT body FROM work_orders WHERE entity_id = $1 AND order_num = $2",
        )
        .bind(entity.as_str())
        .bind(num.as_str())
        .fetch_optional(&self.pool)
        .await?;
        body.map(|j| WorkOrder::parse(num, j.0).map_err(corrupt))
            .transpose()
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
        let body: Option<Json<Map<String, Value>>> = sqlx::query_scalar(
            "SELECT body FROM work_orders WHERE entity_id = $1 AND order_num = $2",
        )
        .bind(entity.as_str())
        .bind(num.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let prev = body
            .map(|j| WorkOrder::parse(num, j.0).map_err(corrupt))
            .transpose()?;
        let created = prev.is_none();
        let order = f(prev)?;
        upsert_work_order(&mut tx, entity, &order).await?;
        tx.commit().await?;
        Ok(Written { created, order })
    }

    async fn delete_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM work_orders WHERE entity_id = $1 AND order_num = $2")
            .bind(entity.as_str())
            .bind(num.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
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

pub(crate) async fn upsert_work_order(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entity: &EntityId,
    order: &WorkOrder,
) -> Result<(), StoreError> {
    let ix = order.indexed();
    sqlx::query(
        "INSERT INTO work_orders (entity_id, order_num, order_status, order_type, user_name, service_area_id, \
         planned_start, planned_end, original_order_num, body, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (entity_id, order_num) DO UPDATE SET order_status = excluded.order_status, \
         order_type = excluded.order_type, user_name = excluded.user_name, service_area_id = excluded.service_area_id, \
         planned_start = excluded.planned_start, planned_end = excluded.planned_end, \
         original_order_num = excluded.original_order_num, body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(entity.as_str())
    .bind(order.order_num())
    .bind(ix.order_status)
    .bind(ix.order_type)
    .bind(ix.user_name)
    .bind(ix.service_area_id)
    .bind(millis(ix.planned_start))
    .bind(millis(ix.planned_end))
    .bind(ix.original_order_num)
    .bind(Json(order.as_map()))
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
