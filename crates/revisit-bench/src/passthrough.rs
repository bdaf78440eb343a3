//! `revisit-bench passthrough`: the latency pass-through adds. One receiver (a minimal third-party
//! scheduler on loopback answering the Appointment Search and Book Job interfaces) is called directly and
//! through Revisit (`OpenSlots`, then `Followup` with an `Idempotency-Key` on a new original each call), interleaved call by call (the
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

/// A Closed Incomplete original whose follow-up the i-th Book Job asks for.
fn original(i: usize) -> Value {
    json!({
        "OrderNum": format!("BENCH-{i}"), "OrderType": "REPAIR", "OrderStatus": 4097,
        "ReasonCode": "2001", "CanScheduleFollowup": true, "UserName": DISPATCHER,
        "PlannedStartDate": "2030-12-01T08:00:00.000Z", "PlannedEndDate": "2030-12-01T10:00:00.000Z",
        "Account": {"AccountNum": format!("A-{i}"), "Name": "Customer"},
        "Location": {"LocationNum": format!("L-{i}"), "ServiceAreaID": "CHI-C",
            "Address": {"City": "Chicago", "Lat": "41.88", "Lon": "-87.63"}},
    })
}

fn booking() -> Value {
    json!({"TimeConstraints": [{"Type": "1001",
        "Period": {"Start": "2030-12-02T13:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}}]})
}

/// Sorted samples (µs) of the receiver called directly, through Revisit, and their per-pair
/// difference: `args.calls` interleaved pairs (the order alternating), after `args.warmup`
/// unmeasured pairs. Call `i` of each is built by `direct(i)` / `via(i)`.
async fn pairs(
    args: &PassthroughArgs,
    direct: impl Fn(usize) -> reqwest::RequestBuilder,
    via: impl Fn(usize) -> reqwest::RequestBuilder,
) -> anyhow::Result<(Vec<i64>, Vec<i64>, Vec<i64>)> {
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
    for i in 0..args.warmup {
        timed(direct(i)).await?;
        timed(via(i)).await?;
    }
    let (mut d, mut v, mut diff) = (
        Vec::with_capacity(args.calls),
        Vec::with_capacity(args.calls),
        Vec::with_capacity(args.calls),
    );
    for n in 0..args.calls {
        let i = args.warmup + n;
        let (a, b) = if n % 2 == 0 {
            let a = timed(direct(i)).await?;
            (a, timed(via(i)).await?)
        } else {
            let b = timed(via(i)).await?;
            (timed(direct(i)).await?, b)
        };
        d.push(a);
        v.push(b);
        diff.push(b - a);
    }
    for s in [&mut d, &mut v, &mut diff] {
        s.sort_unstable();
    }
    Ok((d, v, diff))
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
    let recv_app = Router::new()
        .route(
            "/appointments/open",
            post(move || {
                let body = body.clone();
                async move { Json(body) }
            }),
        )
        .route(
            "/wo/{num}/followup",
            post(
                |axum::extract::Path(num): axum::extract::Path<String>| async move {
                    Json(json!({"OrderNum": format!("{num}-F"), "OrderedParts": []}))
                },
            ),
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

    // The originals the Book Job calls follow up, one per call.
    let originals = args.calls + args.warmup;
    for i in 0..originals {
        client
            .put(format!("{base}/seiapi/v3/trans/WorkOrder/BENCH-{i}"))
            .header("x-access-token", &token)
            .json(&original(i))
            .send()
            .await?
            .error_for_status()
            .context("writing an original order")?;
    }

    let search_body = serde_json::to_vec(&search())?;
    let search_pairs = pairs(
        &args,
        |_| {
            client
                .post(&recv_url)
                .header("content-type", "application/json")
                .header("x-access-token", &token)
                .header("x-request-id", "bench")
                .body(search_body.clone())
        },
        |_| {
            client
                .post(format!("{base}/seiapi/v3/trans/Appointments/OpenSlots"))
                .header("content-type", "application/json")
                .header("x-access-token", &token)
                .body(search_body.clone())
        },
    )
    .await?;
    let book_body = serde_json::to_vec(&booking())?;
    let book_pairs = pairs(
        &args,
        |i| {
            client
                .post(format!("http://{recv_addr}/wo/BENCH-{i}/followup"))
                .header("content-type", "application/json")
                .header("idempotency-key", format!("direct-{i}"))
                .body(book_body.clone())
        },
        |i| {
            client
                .post(format!(
                    "{base}/seiapi/v3/trans/WorkOrder/BENCH-{i}/Followup"
                ))
                .header("content-type", "application/json")
                .header("x-access-token", &token)
                .header("idempotency-key", format!("bench-{i}"))
                .body(book_body.clone())
        },
    )
    .await?;

    let mut out = String::new();
    use std::fmt::Write as _;
    writeln!(
        out,
        "Pass-through added latency: {} calls each way per interface, interleaved (after {} warm-up each), one client, sequential",
        args.calls, args.warmup,
    )?;
    writeln!(out)?;
    writeln!(out, "| interface | | p50 ms | p99 ms | max ms |")?;
    writeln!(out, "|---|---|---:|---:|---:|")?;
    let mut verdicts = Vec::new();
    for (interface, (d, v, diff)) in [
        ("Appointment Search (OpenSlots)", &search_pairs),
        (
            "Book Job (Followup, with its key and the whole job)",
            &book_pairs,
        ),
    ] {
        for (name, s) in [
            ("receiver called directly", d),
            ("through Revisit", v),
            ("added (per-pair difference)", diff),
        ] {
            writeln!(
                out,
                "| {interface} | {name} | {} | {} | {} |",
                ms(quantile(s, 0.50)),
                ms(quantile(s, 0.99)),
                ms(*s.last().unwrap_or(&0))
            )?;
        }
        let p99_added = quantile(diff, 0.99);
        verdicts.push(format!(
            "Target p99 added <= 1 ms, {interface}: {} (p99 of the difference {} ms; p99 through minus p99 direct {} ms)",
            if p99_added <= 1000 { "met" } else { "NOT met" },
            ms(p99_added),
            ms(quantile(v, 0.99) - quantile(d, 0.99))
        ));
    }
    writeln!(out)?;
    for v in verdicts {
        writeln!(out, "{v}")?;
    }
    print!("{out}");

    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}
