//! Users as the admin API and `revisit init` manage them: within one entity, never across.
//! (Log-in's `find_user` and the token check's `caller_context` live in `entities.rs`.)

use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{
    SchedKind, Store, StoreError, corrupt,
    db::{Tx, sql},
    entities::{bump_setup_version, upsert_sched_in},
    now_ms,
};
use crate::domain::{DomainError, EntityId, Role, UserName};

/// A user as an admin sees it: never its password hash.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    pub name: UserName,
    pub role: Role,
    pub active: bool,
    /// Epoch milliseconds.
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct InfoRow {
    name: String,
    role: String,
    active: bool,
    created_at: i64,
}

impl InfoRow {
    fn info(self) -> Result<UserInfo, StoreError> {
        Ok(UserInfo {
            name: UserName::parse(&self.name).map_err(corrupt)?,
            role: Role::parse(&self.role).map_err(corrupt)?,
            active: self.active,
            created_at: self.created_at,
        })
    }
}

/// What [`Store::update_user`] changes; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserChange {
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
}

/// The entity as its admin sees it.
#[derive(Debug, Clone)]
pub(crate) struct EntityInfo {
    pub id: EntityId,
    pub created_at: i64,
}

const INFO: &str = "SELECT name, role, active, created_at FROM users";

async fn info_in(
    tx: &mut Tx,
    entity: &EntityId,
    name: &UserName,
) -> Result<Option<UserInfo>, StoreError> {
    sql!(tx.conn(), &format!("{INFO} WHERE entity_id = $1 AND name = $2"),
        entity.as_str(), name.as_str(); optional InfoRow)?
    .map(InfoRow::info)
    .transpose()
}

/// Inserts a new active user; a name taken anywhere in the installation is a conflict.
async fn insert_user_in(
    tx: &mut Tx,
    entity: &EntityId,
    name: &UserName,
    role: Role,
    password_hash: &str,
) -> Result<UserInfo, StoreError> {
    let created_at = now_ms();
    let inserted = sql!(tx.conn(), "INSERT INTO users (name, entity_id, role, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        name.as_str(), entity.as_str(), role.as_str(), password_hash, created_at; execute)?;
    if inserted == 0 {
        return Err(DomainError::conflict(
            "urn:revisit:error:user-exists",
            format!(
                "the user name {name} is taken (user names are unique across the installation)"
            ),
        )
        .into());
    }
    Ok(UserInfo {
        name: name.clone(),
        role,
        active: true,
        created_at,
    })
}

impl Store {
    /// Whether the entity exists.
    pub async fn entity_exists(&self, entity: &EntityId) -> Result<bool, StoreError> {
        Ok(self.entity_info(entity).await?.is_some())
    }

    pub(crate) async fn entity_info(
        &self,
        entity: &EntityId,
    ) -> Result<Option<EntityInfo>, StoreError> {
        let mut c = self.db.acquire().await?;
        let row = sql!(c.conn(), "SELECT created_at FROM entities WHERE id = $1",
            entity.as_str(); optional_scalar i64)?;
        Ok(row.map(|created_at| EntityInfo {
            id: entity.clone(),
            created_at,
        }))
    }

    /// The entity's users, by name.
    pub(crate) async fn list_users(&self, entity: &EntityId) -> Result<Vec<UserInfo>, StoreError> {
        let mut c = self.db.acquire().await?;
        sql!(c.conn(), &format!("{INFO} WHERE entity_id = $1 ORDER BY name"),
            entity.as_str(); all InfoRow)?
        .into_iter()
        .map(InfoRow::info)
        .collect()
    }

    /// One user of the entity (`None` also for a user of another entity).
    pub(crate) async fn user_info(
        &self,
        entity: &EntityId,
        name: &UserName,
    ) -> Result<Option<UserInfo>, StoreError> {
        let mut c = self.db.acquire().await?;
        sql!(c.conn(), &format!("{INFO} WHERE entity_id = $1 AND name = $2"),
            entity.as_str(), name.as_str(); optional InfoRow)?
        .map(InfoRow::info)
        .transpose()
    }

    /// Creates a user in an existing entity, and with it, in the same transaction, its
    /// scheduler technician profile when one is given (stored as given, already checked). A
    /// name taken anywhere in the installation is a conflict (user names are global).
    pub(crate) async fn create_user(
        &self,
        entity: &EntityId,
        name: &UserName,
        role: Role,
        password_hash: &str,
        profile: Option<&Value>,
    ) -> Result<UserInfo, StoreError> {
        let mut tx = self.db.begin().await?;
        let user = insert_user_in(&mut tx, entity, name, role, password_hash).await?;
        if let Some(body) = profile {
            upsert_sched_in(&mut tx, entity, SchedKind::Technicians, name.as_str(), body).await?;
            bump_setup_version(&mut tx, entity).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Creates a new entity with its configuration and its first admin, in one transaction: a
    /// failure leaves none of them. An entity that exists already, or a user name taken anywhere
    /// in the installation, is a conflict.
    pub async fn create_entity_with_admin(
        &self,
        entity: &EntityId,
        config: &Map<String, Value>,
        admin: &UserName,
        password_hash: &str,
    ) -> Result<UserInfo, StoreError> {
        let mut tx = self.db.begin().await?;
        let inserted = sql!(tx.conn(), "INSERT INTO entities (id, config, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
            entity.as_str(), Json(config), now_ms(); execute)?;
        if inserted == 0 {
            return Err(DomainError::conflict(
                "urn:revisit:error:entity-exists",
                format!("the entity {entity} exists already"),
            )
            .into());
        }
        let user = insert_user_in(&mut tx, entity, admin, Role::Admin, password_hash).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Changes a user of the entity; `None` if it has no such user. `guard` sees the user as
    /// stored and may refuse the change (inside the transaction, so two admins cannot both
    /// demote the entity's last admin).
    pub(crate) async fn update_user(
        &self,
        entity: &EntityId,
        name: &UserName,
        change: UserChange,
        guard: impl FnOnce(&UserInfo, i64) -> Result<(), DomainError> + Send,
    ) -> Result<Option<UserInfo>, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.lock(entity, &["users".into()]).await?;
        let Some(current) = info_in(&mut tx, entity, name).await? else {
            return Ok(None);
        };
        let admins = sql!(tx.conn(), "SELECT COUNT(*) FROM users WHERE entity_id = $1 AND role = 'admin' AND active = $2",
            entity.as_str(), true; scalar i64)?;
        guard(&current, admins)?;
        let role = change.role.unwrap_or(current.role);
        let active = change.active.unwrap_or(current.active);
        sql!(tx.conn(), "UPDATE users SET role = $3, active = $4, password_hash = COALESCE($5, password_hash) \
             WHERE entity_id = $1 AND name = $2",
            entity.as_str(), name.as_str(), role.as_str(), active, change.password_hash.as_deref(); execute)?;
        let after = info_in(&mut tx, entity, name).await?;
        tx.commit().await?;
        Ok(after)
    }
}
