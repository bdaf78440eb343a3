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
    auth::token::Keys,
    booking::Followups,
    config::Config,
    error::ApiError,
    gateway::Gateway,
    metrics::Metrics,
    schedule::{builtin::Builtin, passthrough::Passthrough},
    store::Store,
};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub keys: Arc<Keys>,
    pub config: Arc<Config>,
    /// Slot search and booking (the built-in and pass-through schedulers behind them).
    pub followups: Arc<Followups>,
    /// Re-optimisation of booked days: on demand, after bookings, nightly.
    pub reoptimizer: Arc<crate::reoptimize::Reoptimizer>,
    /// The one outbound client (pass-through calls).
    pub gateway: Arc<Gateway>,
    pub metrics: Arc<Metrics>,
    /// Delivers outbound notifications from the outbox.
    pub notifier: Arc<crate::notify::Notifier>,
    /// Set when shutdown begins: `/readyz` then fails so a load balancer stops sending work.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Opens the store named by the configuration and wires every service; `serve` and the
    /// tests build the server the same way.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let secret = config.require_jwt_secret()?.clone();
        let store =
            Arc::new(Store::open(config.database_url.expose(), &config.store_options()).await?);
        let keys = Keys::new(
            secret.expose().as_bytes(),
            &config.jwt_issuer,
            &config.jwt_audience,
            config.token_lifetime,
        );
        let metrics = Arc::new(Metrics::new());
        let gateway = Arc::new(Gateway::new(config.outbound.clone(), metrics.clone())?);
        let reoptimizer =
            crate::reoptimize::Reoptimizer::new(store.clone(), config.reoptimize.clone());
        let touch = reoptimizer.clone();
        let builtin = Builtin::new(store.clone(), config.booking_queue_wait).on_booked(Arc::new(
            move |entity, area, date| touch.touch(entity, area, date),
        ));
        let followups = Arc::new(Followups::new(
            store.clone(),
            builtin,
            Passthrough::new(gateway.clone()),
        ));
        let notifier = crate::notify::Notifier::new(
            store.clone(),
            gateway.clone(),
            metrics.clone(),
            config.notify.clone(),
        );
        Ok(Self {
            notifier,
            reoptimizer,
            store,
            keys: Arc::new(keys),
            config: Arc::new(config),
            followups,
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
        .merge(crate::notify::api::routes())
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::not_found("no such route; the API is described at /seiapi/v3/openapi.json") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
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
/// grace period (`crate::server` holds the connections to their limits and timeouts).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.config.clone();
    let limits = crate::server::Limits {
        max_connections: config.max_connections,
        max_connections_per_client: config.max_connections_per_client,
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
    };
    state.reoptimizer.start();
    state.notifier.start();
    let draining = state.draining.clone();
    let shutdown = async move {
        shutdown.await;
        draining.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    crate::server::serve(
        listener,
        router(state),
        limits,
        shutdown,
        config.shutdown_grace,
    )
    .await;
    Ok(())
}
