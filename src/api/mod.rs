//! Where requests enter: one module per seiapi resource, each exporting its routes.

pub mod admin;
pub mod board;
pub mod categories;
pub mod extract;
pub mod followup;
pub(crate) mod health;
pub(crate) mod iface;
pub mod metrics;
pub mod openapi;
pub mod reoptimize;
pub mod scheduling;
pub mod schemas;
pub mod session;
pub mod sysconfig;
pub mod workorders;

use axum::Router;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(session::routes())
        .merge(sysconfig::routes())
        .merge(categories::routes())
        .merge(workorders::routes())
        .merge(followup::routes())
        .merge(openapi::routes())
        .merge(scheduling::routes())
        .merge(reoptimize::routes())
        .merge(board::routes())
        .merge(iface::routes())
        .merge(metrics::routes())
        .merge(admin::routes())
}
