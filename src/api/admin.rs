//! The admin API ([Revisit]): an entity's admin manages the users of that entity, and only of
//! that entity, over HTTP. Entities themselves are created on the server's host
//! (`revisit init`, or `revisit user add --create-entity`), with their first admin; from then on
//! that admin creates the others here.
//!
//! - `GET /admin/v1/entity`: the caller's entity;
//! - `GET|POST /admin/v1/users`, `GET|PATCH /admin/v1/users/{UserName}`: create, list, read,
//!   change role, reset password, deactivate or reactivate;
//! - `GET /admin/v1/technicians`: technician logins and the built-in scheduler's technician
//!   profiles side by side, with those missing their other half.
//!
//! A technician login and its scheduler profile are one person, joined by the user name: a
//! technician created here may carry its profile (`Technician`), written in the same
//! transaction; a login whose profile exists already is linked at once.

use std::collections::BTreeSet;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::extract::{JsonObject, PathOf};
use crate::{
    app::AppState,
    auth::{Caller, password},
    domain::{DomainError, Role, UserName, time},
    error::ApiError,
    store::{SchedKind, UserChange, UserInfo},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/entity", get(entity))
        .route("/admin/v1/users", get(list_users).post(create_user))
        .route("/admin/v1/users/{name}", get(get_user).patch(update_user))
        .route("/admin/v1/technicians", get(technicians))
}

/// A user as the admin API answers it; never its password or hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"UserName": "tech41", "Role": "technician", "Active": true,
    "CreatedAt": "2026-11-30T12:00:00.000Z", "TechnicianProfile": true}))]
pub(crate) struct UserAnswer {
    pub user_name: String,
    /// `admin`, `dispatcher` or `technician`.
    pub role: String,
    /// An inactive user cannot log in, and the tokens it holds are refused.
    pub active: bool,
    pub created_at: String,
    /// Whether the built-in scheduler has a technician of this user name.
    pub technician_profile: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UserList {
    pub users: Vec<UserAnswer>,
}

/// `POST /admin/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[schema(example = json!({"UserName": "tech41", "Role": "technician", "Password": "a long secret",
    "Technician": {"Name": "Tech 41", "ServiceAreaIDs": ["CHI-N"], "Skills": [{"Code": "HVAC", "Level": 2}],
    "Home": {"Lat": 41.94, "Lon": -87.65}, "Shifts": [{"Days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "Start": "08:00", "End": "17:00"}]}}))]
pub(crate) struct NewUser {
    pub user_name: String,
    /// `admin`, `dispatcher` or `technician`.
    #[schema(pattern = "^(admin|dispatcher|technician)$")]
    pub role: String,
    /// 8 to 1024 characters; stored as an argon2id hash, never returned.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// For a technician: its built-in scheduler profile, as `PUT /scheduling/v1/technicians/{id}`
    /// takes it (`UserName` may be left out).
    #[schema(value_type = Option<Object>)]
    pub technician: Option<Map<String, Value>>,
}

/// `PATCH /admin/v1/users/{UserName}`: each property given is changed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[schema(example = json!({"Active": false}))]
pub(crate) struct UserPatch {
    #[schema(pattern = "^(admin|dispatcher|technician)$")]
    pub role: Option<String>,
    /// `false` deactivates (log-in and existing tokens refused), `true` reactivates.
    pub active: Option<bool>,
    /// A new password (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct EntityAnswer {
    #[serde(rename = "EntityID")]
    pub entity_id: String,
    pub created_at: String,
}

/// Technician logins and scheduler profiles, joined by user name.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TechnicianReport {
    /// Technician logins that have a scheduler profile.
    pub linked: Vec<String>,
    /// Technician logins the built-in scheduler knows nothing of: it never offers them work.
    pub without_profile: Vec<String>,
    /// Scheduler profiles without a technician login (or whose user has another role): the
    /// scheduler gives them work nobody can open.
    pub without_login: Vec<String>,
}

fn parse_body<T: DeserializeOwned>(body: Map<String, Value>) -> Result<T, ApiError> {
    Ok(serde_path_to_error::deserialize(Value::Object(body))?)
}

fn field_err(path: &str, reason: impl Into<String>) -> ApiError {
    DomainError::invalid(path, reason).into()
}

fn check_password(pw: &str, path: &str) -> Result<(), ApiError> {
    password::check_length(pw).map_err(|reason| field_err(path, reason))
}

async fn hash(pw: String) -> Result<String, ApiError> {
    password::hash_blocking(pw)
        .await
        .map_err(ApiError::internal)
}

async fn profiles(state: &AppState, caller: &Caller) -> Result<BTreeSet<String>, ApiError> {
    Ok(state
        .store
        .list_sched(&caller.entity, SchedKind::Technicians)
        .await?
        .iter()
        .filter_map(|t| t["UserName"].as_str().map(str::to_string))
        .collect())
}

fn answer(u: UserInfo, profiles: &BTreeSet<String>) -> UserAnswer {
    UserAnswer {
        technician_profile: profiles.contains(u.name.as_str()),
        user_name: u.name.to_string(),
        role: u.role.as_str().to_string(),
        active: u.active,
        created_at: time::format_millis(u.created_at).unwrap_or_default(),
    }
}

fn admin(caller: &Caller) -> Result<(), ApiError> {
    Ok(caller.require(&[Role::Admin], "manage users")?)
}

fn user_path(raw: &str) -> Result<UserName, ApiError> {
    UserName::parse(raw).map_err(ApiError::bad_request)
}

/// The caller's entity.
#[utoipa::path(get, path = "/admin/v1/entity", tag = "admin",
    responses((status = 200, body = EntityAnswer), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn entity(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<EntityAnswer>, ApiError> {
    admin(&caller)?;
    let info = state
        .store
        .entity_info(&caller.entity)
        .await?
        .ok_or_else(|| ApiError::not_found("the entity no longer exists"))?;
    Ok(Json(EntityAnswer {
        entity_id: info.id.to_string(),
        created_at: time::format_millis(info.created_at).unwrap_or_default(),
    }))
}

/// The users of the caller's entity, by name.
#[utoipa::path(get, path = "/admin/v1/users", tag = "admin",
    responses((status = 200, body = UserList), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn list_users(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<UserList>, ApiError> {
    admin(&caller)?;
    let profiles = profiles(&state, &caller).await?;
    let users = state.store.list_users(&caller.entity).await?;
    Ok(Json(UserList {
        users: users.into_iter().map(|u| answer(u, &profiles)).collect(),
    }))
}

/// Creates a user in the caller's entity; a technician may bring its scheduler profile, written
/// with it. A user name taken anywhere in the installation is a 409.
#[utoipa::path(post, path = "/admin/v1/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = UserAnswer, headers(("Location" = String))),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn create_user(
    caller: Caller,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let new: NewUser = parse_body(body)?;
    let name = UserName::parse(&new.user_name).map_err(|e| field_err("$.UserName", e))?;
    let role = Role::parse(&new.role).map_err(|e| field_err("$.Role", e))?;
    check_password(&new.password, "$.Password")?;
    let profile = match new.technician {
        None => None,
        Some(_) if role != Role::Technician => {
            return Err(field_err(
                "$.Technician",
                "only a technician has a scheduler profile",
            ));
        }
        Some(p) => Some(super::scheduling::check_object(
            SchedKind::Technicians,
            name.as_str(),
            p,
        )?),
    };
    let hash = hash(new.password).await?;
    let user = state
        .store
        .create_user(&caller.entity, &name, role, &hash, profile.as_ref())
        .await?;
    tracing::info!(admin = %caller.user, user = %name, role = role.as_str(), "user created");
    let profiles = profiles(&state, &caller).await?;
    let location = format!(
        "/admin/v1/users/{}",
        percent_encoding::utf8_percent_encode(name.as_str(), percent_encoding::NON_ALPHANUMERIC)
    );
    let mut resp = (StatusCode::CREATED, Json(answer(user, &profiles))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// One user of the caller's entity; a user of another entity is not found.
#[utoipa::path(get, path = "/admin/v1/users/{UserName}", tag = "admin",
    params(("UserName" = String, Path)),
    responses((status = 200, body = UserAnswer), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn get_user(
    caller: Caller,
    State(state): State<AppState>,
    PathOf(raw): PathOf<String>,
) -> Result<Json<UserAnswer>, ApiError> {
    admin(&caller)?;
    let name = user_path(&raw)?;
    let user = state
        .store
        .user_info(&caller.entity, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {name} in this entity")))?;
    let profiles = profiles(&state, &caller).await?;
    Ok(Json(answer(user, &profiles)))
}

/// Changes a user's role, activity or password. A deactivated user cannot log in and its
/// tokens are refused at once. The entity's last active admin cannot be demoted or
/// deactivated (409).
#[utoipa::path(patch, path = "/admin/v1/users/{UserName}", tag = "admin",
    params(("UserName" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = UserAnswer), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn update_user(
    caller: Caller,
    State(state): State<AppState>,
    PathOf(raw): PathOf<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<UserAnswer>, ApiError> {
    admin(&caller)?;
    let name = user_path(&raw)?;
    let patch: UserPatch = parse_body(body)?;
    let role = patch
        .role
        .as_deref()
        .map(Role::parse)
        .transpose()
        .map_err(|e| field_err("$.Role", e))?;
    let password_hash = match patch.password {
        Some(pw) => {
            check_password(&pw, "$.Password")?;
            Some(hash(pw).await?)
        }
        None => None,
    };
    let change = UserChange {
        role,
        active: patch.active,
        password_hash,
    };
    let (new_role, new_active) = (change.role, change.active);
    let user = state
        .store
        .update_user(&caller.entity, &name, change, move |current, admins| {
            let stays_admin = new_role.unwrap_or(current.role) == Role::Admin
                && new_active.unwrap_or(current.active);
            if current.role == Role::Admin && current.active && !stays_admin && admins <= 1 {
                return Err(DomainError::conflict(
                    "urn:revisit:error:last-admin",
                    format!(
                        "{} is the entity's last active admin: make another admin first",
                        current.name
                    ),
                ));
            }
            Ok(())
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {name} in this entity")))?;
    tracing::info!(admin = %caller.user, user = %name, role = ?new_role, active = ?new_active, "user changed");
    let profiles = profiles(&state, &caller).await?;
    Ok(Json(answer(user, &profiles)))
}

/// Technician logins and the scheduler's technician profiles, with those missing their other
/// half.
#[utoipa::path(get, path = "/admin/v1/technicians", tag = "admin",
    responses((status = 200, body = TechnicianReport), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn technicians(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<TechnicianReport>, ApiError> {
    admin(&caller)?;
    let profiles = profiles(&state, &caller).await?;
    let users = state.store.list_users(&caller.entity).await?;
    Ok(Json(report(&users, &profiles)))
}

/// Joins logins and profiles by user name.
pub fn report(users: &[UserInfo], profiles: &BTreeSet<String>) -> TechnicianReport {
    let techs: BTreeSet<String> = users
        .iter()
        .filter(|u| u.role == Role::Technician)
        .map(|u| u.name.to_string())
        .collect();
    TechnicianReport {
        linked: techs.intersection(profiles).cloned().collect(),
        without_profile: techs.difference(profiles).cloned().collect(),
        without_login: profiles.difference(&techs).cloned().collect(),
    }
}
