//! `GET | POST /seiapi/v3/SysConfig/{System}`: the entity configuration (README, "Configuration of
//! an entity").

use axum::{Json, Router, extract::State, routing::get};
use serde_json::{Map, Value};

use super::extract::{JsonObject, PathText};
use crate::{
    app::AppState,
    auth::Caller,
    domain::{DomainError, InvalidParam, Role, sysconfig},
    error::ApiError,
};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/seiapi/v3/SysConfig/{system}",
        get(get_config).post(post_config),
    )
}

fn check_system(system: &str) -> Result<(), ApiError> {
    if system == "mobility" {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no configuration system {system:?}: Revisit serves only \"mobility\""
        )))
    }
}

/// The caller's entity configuration. For a technician ([Revisit]) third-party endpoints and
/// credentials are redacted: every http(s) URL reads `"[redacted]"`, and properties that hold
/// credentials (`Headers`, `Authentication`, names with `Secret`, `Password`, `Token` or `Key`)
/// are left out.
#[utoipa::path(get, path = "/seiapi/v3/SysConfig/{System}", tag = "configuration",
    params(("System" = String, Path, description = "mobility")),
    responses((status = 200, body = super::schemas::SysConfig), (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get_config(
    caller: Caller,
    PathText(system): PathText,
) -> Result<Json<Map<String, Value>>, ApiError> {
    check_system(&system)?;
    // Secrets of ExportNotifications read back redacted for everyone; technicians see no
    // third-party targets at all.
    let config = crate::notify::config::redacted(caller.settings.config.clone());
    if caller.role == Role::Technician {
        return Ok(Json(redacted(config)));
    }
    Ok(Json(config))
}

/// What a technician may read of the configuration: see [`get_config`].
pub fn redacted(config: Map<String, Value>) -> Map<String, Value> {
    fn secret_name(k: &str) -> bool {
        let k = k.to_ascii_lowercase();
        k == "headers"
            || k == "authentication"
            || ["secret", "password", "token", "key"]
                .iter()
                .any(|w| k.contains(w))
    }
    fn walk(v: Value) -> Value {
        match v {
            Value::String(s) => {
                let lower = s.trim_start().to_ascii_lowercase();
                if lower.starts_with("http://") || lower.starts_with("https://") {
                    Value::String("[redacted]".into())
                } else {
                    Value::String(s)
                }
            }
            Value::Array(a) => Value::Array(a.into_iter().map(walk).collect()),
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| !secret_name(k))
                    .map(|(k, v)| (k, walk(v)))
                    .collect(),
            ),
            other => other,
        }
    }
    match walk(Value::Object(config)) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Creates or updates the configuration (admin). Absent properties keep their value; `null`
/// removes one; a rejected body changes nothing.
#[utoipa::path(post, path = "/seiapi/v3/SysConfig/{System}", tag = "configuration",
    params(("System" = String, Path, description = "mobility")), request_body = super::schemas::SysConfig,
    responses((status = 200, body = super::schemas::SysConfig), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn post_config(
    caller: Caller,
    State(state): State<AppState>,
    PathText(system): PathText,
    JsonObject(body): JsonObject,
) -> Result<Json<Map<String, Value>>, ApiError> {
    check_system(&system)?;
    caller.require(&[Role::Admin], "change the entity configuration")?;
    let body = sysconfig::normalize_names(body)?;
    // A target the outbound policy would refuse at call time is refused now, naming the setting
    // that allows it.
    let mut refused = Vec::new();
    for (path, uri) in sysconfig::endpoints(&body) {
        if let Err(blocked) = state.gateway.check_target(&uri).await {
            refused.push(InvalidParam::new(
                path,
                format!(
                    "{blocked}; Revisit calls such endpoints only when its operator allows private networks (REVISIT_OUTBOUND_ALLOW_PRIVATE_NETWORKS=true, or allow_private_networks in [outbound] of the configuration file)"
                ),
            ));
        }
    }
    if !refused.is_empty() {
        return Err(DomainError::Invalid(refused).into());
    }
    let merged = state
        .store
        .update_config(
            &caller.entity,
            Box::new(move |mut current| {
                let mut body = body;
                // A redacted secret written back as read keeps its stored value.
                crate::notify::config::keep_redacted(&mut body, &current);
                sysconfig::merge(&mut current, body);
                sysconfig::validate(&current)?;
                Ok(current)
            }),
        )
        .await?;
    Ok(Json(crate::notify::config::redacted(merged)))
}
