//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::{Json, Router, routing::get};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
};

use crate::app::AppState;

struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-access-token"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Revisit: seiapi v3", description = "Follow-up visits for field service. See README.md for Revisit's decisions."),
    paths(
        super::health::healthz, super::health::readyz,
        super::session::create_jwt,
        super::sysconfig::get_config, super::sysconfig::post_config,
        super::categories::get_category, super::categories::put_category,
        super::workorders::get_order, super::workorders::put_order, super::workorders::post_order,
        super::workorders::patch_order, super::workorders::delete_order, super::workorders::list_orders,
        super::followup::open_slots, super::followup::book_followup, super::followup::list_followups,
        super::iface::open_slots, super::iface::book,
        super::scheduling::list, super::scheduling::get_one, super::scheduling::put_one, super::scheduling::delete_one,
        super::reoptimize::reoptimize, super::reoptimize::moves,
        super::admin::entity, super::admin::list_users, super::admin::create_user,
        super::admin::get_user, super::admin::update_user, super::admin::technicians,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::InvalidParam)),
    modifiers(&TokenScheme)
)]
pub struct ApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/seiapi/v3/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
