//! Process set-up: shared state, the router with its cross-cutting layers, and serving with a
//! graceful shutdown.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Request, Response},
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::Span;

use crate::{
    api::metrics::Metrics, auth::token::Keys, config::Config, error::ApiError, gateway::Gateway,
    schedule::Schedulers, store::Store,
};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<Keys>,
    pub config: Arc<Config>,
    pub schedulers: Schedulers,
    /// The one outbound client (pass-through calls).
    pub gateway: Arc<Gateway>,
    pub metrics: Arc<Metrics>,
    /// Set when shutdown begins: `/readyz` then fails so a load balancer stops sending work.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Opens the store named by the configuration and wires every service; `serve` and the
    /// tests build the server the same way.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let secret = config.require_jwt_secret()?.clone();
        let store = crate::store::open(
            config.database_url.expose(),
            &crate::cli::store_options(&config),
        )
        .await?;
        let keys = Keys::new(
            secret.expose().as_bytes(),
            &config.jwt_issuer,
            &config.jwt_audience,
            config.token_lifetime,
        );
        let metrics = Arc::new(Metrics::new());
        let gateway = Arc::new(Gateway::new(config.outbound.clone(), metrics.clone())?);
        let schedulers = Schedulers {
            builtin: Arc::new(crate::schedule::builtin::Builtin::new(
                store.clone(),
                config.booking_queue_wait,
            )),
            passthrough: Arc::new(crate::schedule::passthrough::Passthrough::new(
                gateway.clone(),
                store.clone(),
            )),
        };
        Ok(Self {
            store,
            keys: Arc::new(keys),
            config: Arc::new(config),
            schedulers,
            gateway,
            metrics,
            draining: Default::default(),
        })
    }
}

/// The whole HTTP surface with its layers: request ids in and out, tracing, metrics, body cap,
/// panics turned into the error object.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let metrics = state.metrics.clone();
    crate::api::routes()
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::not_found("no such route; the API is described at /seiapi/v3/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "urn:revisit:error:method-not-allowed",
                "Method not allowed",
                "this route does not accept that method",
            )
        })
        .with_state(state)
        // Applied to each route (and the fallback), where the matched route template is known.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::api::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            let id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                        })
                        .on_response(|res: &Response<_>, latency: Duration, _span: &Span| {
                            tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_millis() as u64, "response");
                        }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    use axum::response::IntoResponse;
                    ApiError::internal("a handler panicked").into_response()
                })),
        )
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for up to the configured
/// grace period.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.shutdown_grace;
    let draining = state.draining.clone();
    let app = router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        draining.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    // Once shutdown begins, in-flight requests get `grace` to finish.
    let drained = async {
        let _ = rx.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r.map_err(std::io::Error::other)?,
        _ = drained => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "shutdown grace period over; dropping remaining requests");
            Ok(())
        }
    }
}
