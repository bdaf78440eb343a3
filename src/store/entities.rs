//! Entities, users, the entity configuration, reason categories and the built-in scheduler's
//! set-up (work centers, technicians, order types).

use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{
    AddUser, CallerContext, ConfigFn, SchedKind, Store, StoreError, UserRecord, corrupt,
    db::{Conn, Tx, sql},
    now_ms,
};
use crate::domain::{EntityId, Role, UserName, category::Category};

#[derive(sqlx::FromRow)]
struct UserRow {
    name: String,
    entity_id: String,
    role: String,
    password_hash: String,
    active: bool,
}

impl UserRow {
    fn record(self) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            name: UserName::parse(&self.name).map_err(corrupt)?,
            entity: EntityId::parse(&self.entity_id).map_err(corrupt)?,
            role: Role::parse(&self.role).map_err(corrupt)?,
            password_hash: self.password_hash,
            active: self.active,
        })
    }
}

/// A user (if any), the entity's configuration and one of its categories: a row of
/// [`Store::caller_context`].
#[derive(sqlx::FromRow)]
struct ContextRow {
    name: Option<String>,
    entity_id: Option<String>,
    role: Option<String>,
    password_hash: Option<String>,
    active: Option<bool>,
    config: Option<Json<Map<String, Value>>>,
    body: Option<Json<Category>>,
}

async fn ensure_entity_in(tx: &mut Tx, entity: &EntityId) -> Result<(), StoreError> {
    sql!(tx.conn(), "INSERT INTO entities (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        entity.as_str(), now_ms(); execute)?;
    Ok(())
}

/// A change of the set-up: the scheduler's caches reload it.
pub(super) async fn bump_setup_version(tx: &mut Tx, entity: &EntityId) -> Result<(), StoreError> {
    sql!(tx.conn(), "INSERT INTO sched_versions (entity_id, setup_version) VALUES ($1, 1) \
         ON CONFLICT (entity_id) DO UPDATE SET setup_version = sched_versions.setup_version + 1",
        entity.as_str(); execute)?;
    Ok(())
}

/// Inserts or replaces a set-up object (the caller bumps the set-up version once for all it
/// writes).
pub(super) async fn upsert_sched_in(
    tx: &mut Tx,
    entity: &EntityId,
    kind: SchedKind,
    id: &str,
    body: &Value,
) -> Result<(), StoreError> {
    sql!(tx.conn(), "INSERT INTO sched_objects (entity_id, kind, id, body) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (entity_id, kind, id) DO UPDATE SET body = excluded.body",
        entity.as_str(), kind.as_str(), id, Json(body); execute)?;
    Ok(())
}

impl Store {
    pub async fn ensure_entity(&self, entity: &EntityId) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        ensure_entity_in(&mut tx, entity).await?;
        tx.commit().await
    }

    /// Creates the user in the entity, or replaces role and password if it exists there; a
    /// name taken in another entity is a [`StoreError::Duplicate`].
    pub async fn add_user(
        &self,
        entity: &EntityId,
        name: &UserName,
        role: Role,
        password_hash: &str,
    ) -> Result<AddUser, StoreError> {
        let mut tx = self.db.begin().await?;
        let inserted = sql!(tx.conn(), "INSERT INTO users (name, entity_id, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
            name.as_str(), entity.as_str(), role.as_str(), password_hash, now_ms(); execute)?;
        let outcome = if inserted == 1 {
            AddUser::Created
        } else {
            let updated = sql!(tx.conn(), "UPDATE users SET role = $3, password_hash = $4, active = $5 \
                 WHERE name = $1 AND entity_id = $2",
                name.as_str(), entity.as_str(), role.as_str(), password_hash, true; execute)?;
            if updated == 0 {
                return Err(StoreError::Duplicate(format!(
                    "user name {name} is taken in another entity"
                )));
            }
            AddUser::Updated
        };
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut c = self.db.acquire().await?;
        sql!(c.conn(), "SELECT name, entity_id, role, password_hash, active FROM users WHERE name = $1",
            name; optional UserRow)?
        .map(UserRow::record)
        .transpose()
    }

    /// What an authenticated request needs, in one round trip: the token's user `name` as
    /// stored now, `entity`'s configuration and its own versions of the categories `codes`.
    pub async fn caller_context(
        &self,
        name: &str,
        entity: &EntityId,
        codes: &[&str],
    ) -> Result<CallerContext, StoreError> {
        // One row at least, whatever exists; one more per category found.
        let statement = format!(
            "SELECT u.name, u.entity_id, u.role, u.password_hash, u.active, e.config, c.body \
             FROM (SELECT 1) AS one LEFT JOIN users u ON u.name = $1 LEFT JOIN entities e ON e.id = $2 \
             LEFT JOIN categories c ON c.entity_id = $2 AND c.code IN (SELECT value FROM {}($3))",
            self.db.json_rows()
        );
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), &statement, name, entity.as_str(), Json(codes); all ContextRow)?;
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(CallerContext::default());
        };
        let user = match (first.name, first.entity_id, first.role, first.password_hash) {
            (Some(name), Some(entity_id), Some(role), Some(password_hash)) => Some(
                UserRow {
                    name,
                    entity_id,
                    role,
                    password_hash,
                    active: first.active.unwrap_or(false),
                }
                .record()?,
            ),
            _ => None,
        };
        Ok(CallerContext {
            user,
            config: first.config.map(|j| j.0).unwrap_or_default(),
            categories: first
                .body
                .into_iter()
                .chain(rows.filter_map(|r| r.body))
                .map(|j| j.0)
                .collect(),
        })
    }

    /// Read-modify-write of the entity configuration.
    pub async fn update_config(
        &self,
        entity: &EntityId,
        f: ConfigFn,
    ) -> Result<Map<String, Value>, StoreError> {
        let mut tx = self.db.begin().await?;
        ensure_entity_in(&mut tx, entity).await?;
        tx.lock(entity, &["config".into()]).await?;
        let Json(current) = sql!(tx.conn(), "SELECT config FROM entities WHERE id = $1",
            entity.as_str(); scalar Json<Map<String, Value>>)?;
        let next = f(current)?;
        sql!(tx.conn(), "UPDATE entities SET config = $2 WHERE id = $1",
            entity.as_str(), Json(&next); execute)?;
        tx.commit().await?;
        Ok(next)
    }

    pub async fn put_category(
        &self,
        entity: &EntityId,
        category: &Category,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        sql!(tx.conn(), "INSERT INTO categories (entity_id, code, body) VALUES ($1, $2, $3) \
             ON CONFLICT (entity_id, code) DO UPDATE SET body = excluded.body",
            entity.as_str(), &category.code, Json(category); execute)?;
        tx.commit().await
    }

    /// The set-up objects of one kind, as JSON, ordered by id.
    pub async fn list_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
    ) -> Result<Vec<Value>, StoreError> {
        let mut c = self.db.acquire().await?;
        let rows = sql!(c.conn(), "SELECT body FROM sched_objects WHERE entity_id = $1 AND kind = $2 ORDER BY id",
            entity.as_str(), kind.as_str(); scalars Json<Value>)?;
        Ok(rows.into_iter().map(|j| j.0).collect())
    }

    pub(crate) async fn get_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let mut c = self.db.acquire().await?;
        let row = sql!(c.conn(), "SELECT body FROM sched_objects WHERE entity_id = $1 AND kind = $2 AND id = $3",
            entity.as_str(), kind.as_str(), id; optional_scalar Json<Value>)?;
        Ok(row.map(|j| j.0))
    }

    /// Inserts or replaces a set-up object; returns whether it was created.
    pub async fn put_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
        body: &Value,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        ensure_entity_in(&mut tx, entity).await?;
        let created = sql!(tx.conn(), "INSERT INTO sched_objects (entity_id, kind, id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (entity_id, kind, id) DO NOTHING",
            entity.as_str(), kind.as_str(), id, Json(body); execute)?
            == 1;
        if !created {
            sql!(tx.conn(), "UPDATE sched_objects SET body = $4 WHERE entity_id = $1 AND kind = $2 AND id = $3",
                entity.as_str(), kind.as_str(), id, Json(body); execute)?;
        }
        bump_setup_version(&mut tx, entity).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub(crate) async fn delete_sched(
        &self,
        entity: &EntityId,
        kind: SchedKind,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let deleted = sql!(tx.conn(), "DELETE FROM sched_objects WHERE entity_id = $1 AND kind = $2 AND id = $3",
            entity.as_str(), kind.as_str(), id; execute)?;
        bump_setup_version(&mut tx, entity).await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Writes set-up objects (inserted or replaced) and work orders in one transaction: all of
    /// them, or none (the demo's seed and `revisit import`, which a crash must not leave half
    /// done).
    pub(crate) async fn import_setup(
        &self,
        entity: &EntityId,
        objects: &[(SchedKind, String, Value)],
        orders: &[crate::domain::workorder::WorkOrder],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        ensure_entity_in(&mut tx, entity).await?;
        for (kind, id, body) in objects {
            upsert_sched_in(&mut tx, entity, *kind, id, body).await?;
        }
        if !objects.is_empty() {
            bump_setup_version(&mut tx, entity).await?;
        }
        super::orders::write_orders(&mut tx, entity, orders).await?;
        tx.commit().await
    }

    /// The entity's set-up version and visit sequence number (0, 0 before any write).
    pub async fn sched_versions(&self, entity: &EntityId) -> Result<(i64, i64), StoreError> {
        let mut c = self.db.acquire().await?;
        versions_in(c.conn(), entity).await
    }
}

/// The entity's set-up version and visit sequence number.
pub(super) async fn versions_in(
    conn: Conn<'_>,
    entity: &EntityId,
) -> Result<(i64, i64), StoreError> {
    let row = sql!(conn, "SELECT setup_version, visit_seq FROM sched_versions WHERE entity_id = $1",
        entity.as_str(); optional (i64, i64))?;
    Ok(row.unwrap_or((0, 0)))
}
