//! `revisit-bench passthrough`: the latency pass-through adds. One receiver (a minimal third-party
//! scheduler on loopback answering the Appointment Search interface) is called directly and
//! through Revisit's `POST /seiapi/v3/trans/Appointments/OpenSlots`, interleaved call by call (the
//! order alternates) so both see the same machine state. Reported: p50 and p99 of both, and of the
//! per-pair difference. Everything runs in this process on a fresh SQLite database in a temporary
//! directory; nothing leaves the machine.
//!
//! What "through Revisit" includes: the HTTP hop to Revisit, token verification with the user
//! re-check, reading the entity configuration, validating the body, the gateway (SSRF check,
//! breaker, the outbound hop), the answer's validation and relay.

use std::time::{Duration, Instant};

use anyhow::Context;
use axum::{Json, Router, routing::post};
use clap::Args;
use serde_json::{Value, json};

use revisit::{
    app::AppState,
    config::{Config, Secret},
    domain::{EntityId, Role, UserName},
};

use crate::{
    harness::{hash, random_hex, serve},
    report::nearest_rank,
};

#[derive(Args, Debug)]
pub(crate) struct PassthroughArgs {
    /// Calls measured each way (after `--warmup` unmeasured ones each way).
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    #[arg(long, default_value_t = 100)]
    warmup: usize,
}

const ENTITY: &str = "bench-pt";
const ADMIN: &str = "bench-pt-admin";
const DISPATCHER: &str = "bench-pt-dispatcher";

fn answer() -> Value {
    json!({"StatusMsg": "", "TimeConstraints": [
        {"ID": "S1", "Desc": "Tuesday afternoon", "Type": "1001",
         "Period": {"Start": "2030-12-02T13:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}},
        {"ID": "S2", "Desc": "Wednesday morning", "Type": "1001",
         "Period": {"Start": "2030-12-03T08:00:00.000Z", "End": "2030-12-03T12:00:00.000Z"}}]})
}

fn search() -> Value {
    json!({"TimeConstraints": [{"Type": "1002",
        "Period": {"Start": "2030-12-02T08:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}}],
        "Location": {"ServiceAreaID": "CHI-C", "Address": {"City": "Chicago", "Lat": "41.88", "Lon": "-87.63"}}})
}

/// The `q` quantile (0..=1) of sorted microsecond samples, nearest rank.
fn quantile(sorted: &[i64], q: f64) -> i64 {
    nearest_rank(sorted, q).unwrap_or(0)
}

fn ms(us: i64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

pub(crate) async fn run(args: PassthroughArgs, mut config: Config) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; run `cargo run --release -p revisit-bench -- passthrough` for figures"
        );
    }
    // The receiver.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let recv_addr = receiver.local_addr()?;
    let body = answer();
    let recv_app = Router::new().route(
        "/appointments/open",
        post(move || {
            let body = body.clone();
            async move { Json(body) }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, recv_app).await });
    let recv_url = format!("http://{recv_addr}/appointments/open");

    // Revisit, on a fresh database, allowed to call loopback.
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    config.database_url = Secret::new(format!("sqlite:{}", dir.path().join("bench.db").display()));
    config.jwt_secret = Some(Secret::new(random_hex(32)));
    config.outbound.allow_private_networks = true;
    config.shutdown_grace = Duration::from_secs(1);
    let state = AppState::build(config).await?;
    let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;
    state.store.ensure_entity(&entity).await?;
    let pw = random_hex(12);
    let pw_hash = hash(pw.clone()).await?;
    for (name, role) in [(ADMIN, Role::Admin), (DISPATCHER, Role::Dispatcher)] {
        let user = UserName::parse(name).map_err(anyhow::Error::msg)?;
        state.store.add_user(&entity, &user, role, &pw_hash).await?;
    }
    let (base, stop_tx, server) = serve(state).await?;

    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()?;
    let login = |name: &str| {
        let (client, base, pw) = (client.clone(), base.clone(), pw.clone());
        let name = name.to_string();
        async move {
            let r: Value = client
                .post(format!("{base}/createjwt"))
                .json(&json!({"username": name, "password": pw}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok(r["token"].as_str().unwrap_or_default().to_string())
        }
    };
    let admin = login(ADMIN).await?;
    let token = login(DISPATCHER).await?;
    client
        .post(format!("{base}/seiapi/v3/SysConfig/mobility"))
        .header("x-access-token", &admin)
        .json(&json!({"RestApi": {"SearchAppts": recv_url, "BookJob": format!("http://{recv_addr}/wo/{{0}}/followup")}}))
        .send()
        .await?
        .error_for_status()?;

    let body = serde_json::to_vec(&search())?;
    let direct = || {
        client
            .post(&recv_url)
            .header("content-type", "application/json")
            .header("x-access-token", &token)
            .header("x-request-id", "bench")
            .body(body.clone())
    };
    let via = || {
        client
            .post(format!("{base}/seiapi/v3/trans/Appointments/OpenSlots"))
            .header("content-type", "application/json")
            .header("x-access-token", &token)
            .body(body.clone())
    };
    async fn timed(req: reqwest::RequestBuilder) -> anyhow::Result<i64> {
        let t = Instant::now();
        let r = req.send().await?;
        let status = r.status();
        let bytes = r.bytes().await?;
        let us = t.elapsed().as_micros() as i64;
        if !status.is_success() {
            anyhow::bail!("{status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(us)
    }

    for _ in 0..args.warmup {
        timed(direct()).await?;
        timed(via()).await?;
    }
    let (mut d, mut v, mut diff) = (
        Vec::with_capacity(args.calls),
        Vec::with_capacity(args.calls),
        Vec::with_capacity(args.calls),
    );
    let started = Instant::now();
    for i in 0..args.calls {
        let (a, b) = if i % 2 == 0 {
            let a = timed(direct()).await?;
            (a, timed(via()).await?)
        } else {
            let b = timed(via()).await?;
            (timed(direct()).await?, b)
        };
        d.push(a);
        v.push(b);
        diff.push(b - a);
    }
    let wall = started.elapsed();
    for s in [&mut d, &mut v, &mut diff] {
        s.sort_unstable();
    }

    let mut out = String::new();
    use std::fmt::Write as _;
    writeln!(
        out,
        "Pass-through added latency: {} calls each way, interleaved (after {} warm-up each), one client, sequential; {:.1} s",
        args.calls,
        args.warmup,
        wall.as_secs_f64()
    )?;
    writeln!(out)?;
    writeln!(out, "| | p50 ms | p99 ms | max ms |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for (name, s) in [
        ("receiver called directly", &d),
        ("through Revisit (OpenSlots pass-through)", &v),
        ("added (per-pair difference)", &diff),
    ] {
        writeln!(
            out,
            "| {name} | {} | {} | {} |",
            ms(quantile(s, 0.50)),
            ms(quantile(s, 0.99)),
            ms(*s.last().unwrap_or(&0))
        )?;
    }
    writeln!(out)?;
    let p99_added = quantile(&diff, 0.99);
    writeln!(
        out,
        "Target p99 added <= 1 ms: {} (p99 of the difference {} ms; p99 through minus p99 direct {} ms)",
        if p99_added <= 1000 { "met" } else { "NOT met" },
        ms(p99_added),
        ms(quantile(&v, 0.99) - quantile(&d, 0.99))
    )?;
    print!("{out}");

    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}
