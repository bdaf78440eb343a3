//! `serve --demo`: the demo entity, seeded idempotently (a restart adds nothing twice).

use serde_json::json;

use crate::{
    auth::password,
    domain::{EntityId, Role, UserName},
    store::Store,
};

pub const ENTITY: &str = "demo";

/// The demo users: `admin`, `dispatcher`, `tech01`..`tech40`; each password is the user name.
pub fn users() -> Vec<(String, Role)> {
    let mut v = vec![
        ("admin".to_string(), Role::Admin),
        ("dispatcher".to_string(), Role::Dispatcher),
    ];
    v.extend((1..=40).map(|i| (format!("tech{i:02}"), Role::Technician)));
    v
}

pub async fn seed(store: &dyn Store) -> anyhow::Result<()> {
    let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;
    store.ensure_entity(&entity).await?;
    let mut created = 0;
    for (name, role) in users() {
        if store.find_user(&name).await?.is_some() {
            continue;
        }
        let n = name.clone();
        let hash = tokio::task::spawn_blocking(move || password::hash(&n)).await??;
        store
            .add_user(
                &entity,
                &UserName::parse(&name).map_err(anyhow::Error::msg)?,
                role,
                &hash,
            )
            .await?;
        created += 1;
    }
    // The configuration is set once; an admin's later changes are kept across restarts.
    store
        .update_config(
            &entity,
            Box::new(|current| {
                if !current.is_empty() {
                    return Ok(current);
                }
                let cfg = json!({
                    "RestApi": {"SearchAppts": "builtin:", "BookJob": "builtin:"},
                    "WorkOrderRules": {"Default": {"CanScheduleFollowup": true}},
                });
                Ok(cfg.as_object().cloned().unwrap_or_default())
            }),
        )
        .await?;
    tracing::info!(entity = ENTITY, users_created = created, "demo data ready");
    Ok(())
}
