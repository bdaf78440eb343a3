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
    AddUser, ConfigFn, ListFilter, Page, Store, StoreError, StoreOptions, UserRecord, WriteFn,
    Written, millis,
};
use crate::domain::{
    EntityId, Role, UserName, WorkOrderNum, category::Category, workorder::WorkOrder,
};

pub struct SqliteStore {
    pool: SqlitePool,
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
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn ensure_entity(&self, entity: &EntityId) -> Result<(), StoreError> {
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
        let mut tx = self.begin_write().await?;
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

    async fn user_exists(&self, entity: &EntityId, name: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE entity_id = ? AND name = ? AND active = 1",
        )
        .bind(entity.as_str())
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn get_config(&self, entity: &EntityId) -> Result<Map<String, Value>, StoreError> {
        let text: Option<String> = sqlx::query_scalar("SELECT config FROM entities WHERE id = ?")
            .bind(entity.as_str())
            .fetch_optional(&self.pool)
            .await?;
        text.map(|t| parse_object(&t))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn update_config(
        &self,
        entity: &EntityId,
        f: ConfigFn,
    ) -> Result<Map<String, Value>, StoreError> {
        let mut tx = self.begin_write().await?;
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

    async fn get_category(
        &self,
        entity: &EntityId,
        code: &str,
    ) -> Result<Option<Category>, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT body FROM categories WHERE entity_id = ? AND code = ?")
                .bind(entity.as_str())
                .bind(code)
                .fetch_optional(&self.pool)
                .await?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Other(e.into())))
            .transpose()
    }

    async fn put_category(&self, entity: &EntityId, category: &Category) -> Result<(), StoreError> {
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
        let text: Option<String> = sqlx::query_scalar(
            "SELECT body FROM work_orders WHERE entity_id = ? AND order_num = ?",
        )
        .bind(entity.as_str())
        .bind(num.as_str())
        .fetch_optional(&self.pool)
        .await?;
        text.map(|t| {
            WorkOrder::parse(num, parse_object(&t)?)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("stored work order invalid: {e}")))
        })
        .transpose()
    }

    async fn write_work_order(
        &self,
        entity: &EntityId,
        num: &WorkOrderNum,
        f: WriteFn,
    ) -> Result<Written, StoreError> {
        let mut tx = self.begin_write().await?;
        let text: Option<String> = sqlx::query_scalar(
            "SELECT body FROM work_orders WHERE entity_id = ? AND order_num = ?",
        )
        .bind(entity.as_str())
        .bind(num.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let prev = text
            .map(|t| {
                WorkOrder::parse(num, parse_object(&t)?).map_err(|e| {
                    StoreError::Other(anyhow::anyhow!("stored work order invalid: {e}"))
                })
            })
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
        let r = sqlx::query("DELETE FROM work_orders WHERE entity_id = ? AND order_num = ?")
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

pub(crate) async fn upsert_work_order(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    entity: &EntityId,
    order: &WorkOrder,
) -> Result<(), StoreError> {
    let ix = order.indexed();
    sqlx::query(
        "INSERT INTO work_orders (entity_id, order_num, order_status, order_type, user_name, service_area_id, \
         planned_start, planned_end, original_order_num, body, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
    .bind(json_text(order.as_map())?)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
