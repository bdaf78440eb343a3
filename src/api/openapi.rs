//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::{Json, Router, routing::get};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
};

use crate::app::AppState;

struct TokenScheme;

/// What every operation of a kind can answer, added where the handler's annotation does not say
/// it already: a protected route 401 (no, bad or stale token) and 503 (the database
/// unavailable: `Retry-After`) and 403 (a role that may not); a route with a body 400 (malformed JSON), 413 (over the body
/// limit) and 415 (not `application/json`); a route with parameters 400, and with path
/// parameters 404.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            Ref, RefOr,
            response::{Response, ResponseBuilder},
        };
        let error = |description: &str| -> RefOr<Response> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in api.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description));
                };
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add(
                        "401",
                        "no token, or a token that is invalid, expired, or whose user is inactive or has another role: log in again",
                    );
                    add("403", "the caller's role may not do this");
                    add(
                        "503",
                        "the database is unavailable: retry after Retry-After",
                    );
                }
                let params = op.parameters.as_deref().unwrap_or_default();
                if !params.is_empty() {
                    add("400", "a path, query or header parameter is invalid");
                }
                if params
                    .iter()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path))
                {
                    add("404", "nothing of that name in the caller's entity");
                }
                if op.request_body.is_some() {
                    add(
                        "400",
                        "the body is not valid JSON, or a property is invalid (invalidParams names it)",
                    );
                    add("413", "the body is over the configured limit");
                    add("415", "the body is not application/json");
                }
            }
        }
        // The license comes from Cargo.toml (`license`); should it ever be empty, the document
        // names none rather than an empty one, which is invalid OpenAPI.
        if api.info.license.as_ref().is_some_and(|l| l.name.is_empty()) {
            api.info.license = None;
        }
    }
}

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
        super::health::healthz, super::health::readyz, super::metrics::metrics,
        super::session::create_jwt,
        super::sysconfig::get_config, super::sysconfig::post_config,
        super::categories::get_category, super::categories::put_category,
        super::workorders::get_order, super::workorders::put_order, super::workorders::post_order,
        super::workorders::patch_order, super::workorders::delete_order, super::workorders::list_orders,
        super::followup::open_slots, super::followup::book_followup, super::followup::list_followups,
        super::iface::open_slots, super::iface::book,
        super::scheduling::list, super::scheduling::get_one, super::scheduling::put_one, super::scheduling::delete_one,
        super::reoptimize::reoptimize, super::reoptimize::moves, super::board::board,
        super::admin::entity, super::admin::list_users, super::admin::create_user,
        super::admin::get_user, super::admin::update_user, super::admin::technicians,
        crate::notify::api::list, crate::notify::api::one, crate::notify::api::replay,
        crate::notify::api::secret, crate::notify::api::rotate,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::InvalidParam)),
    modifiers(&TokenScheme, &CommonAnswers)
)]
pub(crate) struct ApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/seiapi/v3/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
