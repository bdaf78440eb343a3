//! `revisit-bench notify`: delivery of outbound notifications under a write load. Concurrent
//! dispatcher clients change seeded work orders (`PUT WorkOrder`, each change one
//! `WorkOrderChanged` event) on one node or several sharing the database, while a receiver on
//! loopback records every delivery: the latency from the event's commit (its `EventTime`, taken
//! in the transaction just before the commit) to its arrival, the events delivered per second,
//! and any event delivered twice.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{Router, body::Bytes, extract::State, http::HeaderMap};
use clap::Args;
use revisit::{app::AppState, config::Config, domain::EntityId};
use serde_json::{Map, Value, json};

use crate::{
    check::OPEN_STATUSES,
    harness::{Bench, DataArgs, http_client, serve},
    report::Lat,
};

/// The entity `Bench::start` seeds.
const ENTITY: &str = "bench";

#[derive(Args, Debug)]
pub(crate) struct NotifyArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Concurrent HTTP clients writing work orders.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Work-order changes made (each one event).
    #[arg(long, default_value_t = 3000)]
    writes: usize,
    /// Revisit nodes sharing the database, each with its own delivery worker (PostgreSQL).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

#[derive(Default)]
struct Received {
    /// (webhook-id, latency from EventTime, arrival).
    events: Vec<(String, Duration, Instant)>,
}

async fn receive(
    State(rx): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let now = jiff::Timestamp::now();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let latency = body["EventTime"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| Duration::from_millis(now.duration_since(t).as_millis().max(0) as u64))
        .unwrap_or_default();
    if let Ok(mut r) = rx.lock() {
        r.events.push((id, latency, Instant::now()));
    }
    "ok"
}

/// A receiver on loopback for another bench's events (`revisit-bench book --notify`).
pub(crate) struct Receiver {
    hook: String,
    received: Arc<Mutex<Received>>,
    started: Instant,
}

impl Receiver {
    pub(crate) async fn start() -> anyhow::Result<Receiver> {
        let received: Arc<Mutex<Received>> = Default::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hook = format!("http://{}/hook", listener.local_addr()?);
        let app = Router::new().fallback(receive).with_state(received.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver {
            hook,
            received,
            started: Instant::now(),
        })
    }

    /// Turns `events` on for the bench's entity, sent to this receiver.
    pub(crate) async fn subscribe(&self, b: &Bench, events: &[&str]) -> anyhow::Result<()> {
        let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;
        let mut n = Map::new();
        for e in events {
            n.insert(e.to_string(), json!({"Enabled": true, "URL": self.hook}));
        }
        let cfg = json!({"Notifications": n});
        b.state
            .store
            .update_config(
                &entity,
                Box::new(move |mut c| {
                    c.insert("ExportNotifications".into(), cfg);
                    Ok(c)
                }),
            )
            .await?;
        Ok(())
    }

    /// Waits until no event arrived for a second (at most 120 s), then prints what arrived.
    pub(crate) async fn report(&self, bookings: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let n = self.received.lock().map(|r| r.events.len()).unwrap_or(0);
            if n == last || Instant::now() > deadline {
                break;
            }
            last = n;
        }
        let r = match self.received.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        let mut lat = Lat::default();
        let mut ids = HashSet::new();
        for (id, l, _) in &r.events {
            lat.push(*l);
            ids.insert(id.clone());
        }
        let lat = lat.sorted();
        let mut t = crate::report::Table::new(
            "notifications during the run (FollowUpBooked and VisitMoved to a receiver on loopback)",
        );
        t.row(
            "events",
            format!(
                "{} distinct, {} deliveries, for {bookings} bookings, {:.0} s after the receiver started",
                ids.len(),
                r.events.len(),
                self.started.elapsed().as_secs_f64()
            ),
        )
        .row("commit to arrival (ms)", lat.summary())
        .row(
            "target p99 <= 1000 ms",
            if lat.q(0.99) <= 1000.0 {
                "MET"
            } else {
                "MISSED"
            },
        );
        t.print();
    }
}

pub(crate) async fn run(a: NotifyArgs, mut config: Config) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; run `cargo run --release -p revisit-bench -- notify` for figures"
        );
    }
    let received: Arc<Mutex<Received>> = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new().fallback(receive).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    config.outbound.allow_private_networks = true;
    config.reoptimize.after_booking = false;
    config.reoptimize.nightly_at = None;
    let b = Bench::start(&a.data, config).await?;
    let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;
    let hook_cfg = json!({"Notifications": {"WorkOrderChanged": {"Enabled": true, "URL": hook}}});
    b.state
        .store
        .update_config(
            &entity,
            Box::new(move |mut c| {
                c.insert("ExportNotifications".into(), hook_cfg);
                Ok(c)
            }),
        )
        .await?;
    let mut bases = vec![b.base.clone()];
    let mut extra = Vec::new();
    for _ in 1..a.nodes.max(1) {
        let state = AppState::build((*b.state.config).clone()).await?;
        let (base, stop, server) = serve(state).await?;
        bases.push(base);
        extra.push((stop, server));
    }

    let mut orders: Vec<Map<String, Value>> = Vec::new();
    b.each_order(OPEN_STATUSES, |o| {
        if orders.len() < a.writes
            && let Some(m) = o.as_object()
        {
            orders.push(m.clone());
        }
    })
    .await?;
    anyhow::ensure!(!orders.is_empty(), "no open work orders were seeded");
    let writes = orders.len();
    for (i, o) in orders.iter_mut().enumerate() {
        o.insert("Description".into(), json!(format!("notify bench {i}")));
    }

    let client = http_client()?;
    let queue = Arc::new(Mutex::new(orders));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..a.clients.max(1) {
        let (client, queue, token) = (client.clone(), queue.clone(), b.token.clone());
        let base = bases[c % bases.len()].clone();
        tasks.spawn(async move {
            loop {
                let Some(o) = queue.lock().ok().and_then(|mut v| v.pop()) else {
                    return anyhow::Ok(());
                };
                let num = o["OrderNum"].as_str().unwrap_or_default().to_string();
                let r = client
                    .put(format!("{base}/seiapi/v3/trans/WorkOrder/{num}"))
                    .header("x-access-token", &token)
                    .json(&o)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "PUT {num}: {}", r.status());
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a writer")??;
    }
    let written = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = received.lock().map(|r| r.events.len()).unwrap_or(0);
        if n >= writes || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Late duplicates, if any, would arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = std::mem::take(&mut *received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let mut lat = Lat::default();
    let mut ids = HashSet::new();
    let mut last = started;
    for (id, l, at) in &r.events {
        lat.push(*l);
        ids.insert(id.clone());
        last = last.max(*at);
    }
    let lat = lat.sorted();
    let delivered_span = last - started;
    let mut t = b.machine(&a.data);
    t.row("nodes", bases.len().to_string())
        .row("writers", a.clients.to_string())
        .row(
            "work-order changes",
            format!(
                "{writes} in {:.2} s ({:.0}/s)",
                written.as_secs_f64(),
                writes as f64 / written.as_secs_f64()
            ),
        )
        .row(
            "events delivered",
            format!(
                "{} distinct of {writes}, {} deliveries; {:.0} events/s (first write to last arrival)",
                ids.len(),
                r.events.len(),
                ids.len() as f64 / delivered_span.as_secs_f64()
            ),
        )
        .row("commit to arrival (ms)", lat.summary())
        .row(
            "target p99 <= 1000 ms",
            if lat.q(0.99) <= 1000.0 {
                "MET"
            } else {
                "MISSED"
            },
        );
    t.print();
    for (stop, server) in extra {
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    b.stop().await;
    Ok(())
}
