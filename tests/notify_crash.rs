//! Outbound notifications survive `kill -9` (issue 16): the real `revisit serve`, on SQLite and
//! on PostgreSQL, killed with SIGKILL once after an event was committed but before any attempt
//! (its worker is off), and once in the middle of the event's delivery (the receiver holds the
//! request). Started again, it delivers the event, with the id it had. And with two nodes on
//! PostgreSQL, the node sending an event dies and the other one delivers it.
//!
//! The PostgreSQL run is skipped (with a message) when `REVISIT_TEST_POSTGRES_URL` is not set.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap};
use common::{Server, TestDb};
use revisit::{
    auth::password,
    domain::{EntityId, Role, UserName},
    store::{Store, StoreOptions},
};
use serde_json::{Value, json};

const SECRET: &str = "notify-crash-secret-0123456789abcdef0123456789";

/// Starts the server (its notification worker on or off) and waits until it is ready.
async fn start(db_url: &str, deliver: bool) -> Server {
    Server::start(
        db_url,
        SECRET,
        &[
            ("REVISIT_DATABASE_MAX_CONNECTIONS", "4"),
            ("REVISIT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true"),
            ("REVISIT_OUTBOUND_TIMEOUT_MS", "1000"),
            (
                "REVISIT_NOTIFY_DELIVER",
                if deliver { "true" } else { "false" },
            ),
            ("REVISIT_NOTIFY_POLL_MS", "50"),
            ("REVISIT_NOTIFY_LEASE_MS", "3000"),
            ("REVISIT_NOTIFY_BACKOFF_BASE_MS", "50"),
            ("REVISIT_REOPTIMIZE_AFTER_BOOKING", "false"),
            ("REVISIT_REOPTIMIZE_NIGHTLY_AT", "off"),
        ],
    )
    .await
}

/// A receiver that holds every request open while `hold` is set, and records what it got
/// (webhook-id, body) and whether it answered.
#[derive(Clone, Default)]
struct Receiver {
    hold: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(String, Value, bool)>>>,
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> &'static str {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if rx.hold.load(Ordering::SeqCst) {
        rx.seen.lock().unwrap().push((id, body, false));
        tokio::time::sleep(Duration::from_secs(60)).await;
        return "late";
    }
    rx.seen.lock().unwrap().push((id, body, true));
    "ok"
}

async fn database(postgres: bool) -> Option<TestDb> {
    if postgres {
        TestDb::postgres().await
    } else {
        Some(TestDb::sqlite())
    }
}

async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(postgres: bool) {
    let Some(db) = database(postgres).await else {
        return;
    };
    // An admin, seeded directly.
    {
        let store = Store::open(
            &db.url,
            &StoreOptions {
                max_connections: 2,
                statement_timeout: Duration::from_secs(5),
            },
        )
        .await
        .unwrap();
        let e = EntityId::parse("acme").unwrap();
        store.ensure_entity(&e).await.unwrap();
        let hash = password::hash("admin-pw").unwrap();
        store
            .add_user(&e, &UserName::parse("ada").unwrap(), Role::Admin, &hash)
            .await
            .unwrap();
        store.close().await;
    }
    let rx = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().fallback(receive).with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // reqwest is built with `rustls-no-provider`: choose one before building a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // 1. Committed, never attempted: the worker is off, then the process dies.
    let mut server = start(&db.url, false).await;
    let token: Value = client
        .post(format!("{}/createjwt", server.base))
        .json(&json!({"username": "ada", "password": "admin-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let r = client
        .post(format!("{}/seiapi/v3/SysConfig/mobility", server.base))
        .header("x-access-token", &token)
        .json(&json!({"ExportNotifications": {"Notifications": {
            "WorkOrderCreated": {"Enabled": true, "URL": hook}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = client
        .put(format!("{}/seiapi/v3/trans/WorkOrder/A", server.base))
        .header("x-access-token", &token)
        .json(&json!({"OrderNum": "A", "OrderStatus": 1, "OrderType": "REPAIR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.kill();
    assert!(rx.seen.lock().unwrap().is_empty());

    // 2. Started again, it sends the event; the receiver holds the request; the process dies
    // in the middle of the delivery.
    rx.hold.store(true, Ordering::SeqCst);
    let mut server = start(&db.url, true).await;
    wait_until("the first attempt", 10, || {
        !rx.seen.lock().unwrap().is_empty()
    })
    .await;
    server.kill();
    let first_id = rx.seen.lock().unwrap()[0].0.clone();
    assert!(first_id.starts_with("msg_"), "{first_id}");

    // 3. Started again, with the receiver answering: the event is delivered, with its id, once
    // its lease has run out.
    rx.hold.store(false, Ordering::SeqCst);
    let server = start(&db.url, true).await;
    wait_until("the delivery after the restart", 20, || {
        rx.seen.lock().unwrap().iter().any(|s| s.2)
    })
    .await;
    let seen = rx.seen.lock().unwrap().clone();
    let delivered: Vec<_> = seen.iter().filter(|s| s.2).collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0, first_id, "the same webhook-id");
    assert_eq!(delivered[0].1["WorkOrder"]["OrderNum"], "A");
    assert!(
        seen.iter().all(|s| s.0 == first_id),
        "one event only: {seen:?}"
    );
    // Recorded as delivered.
    let token: Value = client
        .post(format!("{}/createjwt", server.base))
        .json(&json!({"username": "ada", "password": "admin-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut state = Value::Null;
    for _ in 0..100 {
        let listed: Value = client
            .get(format!("{}/notifications/v1/events", server.base))
            .header("x-access-token", token["token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = listed["Events"][0]["State"].clone();
        if state == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, "delivered");
}

/// Two nodes on one PostgreSQL database: the node sending an event dies in the middle of it
/// (SIGKILL); the other node sends it once the dead node's lease has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_postgresql_node_dies_mid_delivery_another_node_delivers() {
    let Some(db) = database(true).await else {
        return;
    };
    seed(&db.url).await;
    let (rx, hook) = receiver().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut first = start(&db.url, true).await;
    let token = configure(&client, &first.base, &hook).await;
    rx.hold.store(true, Ordering::SeqCst);
    let r = client
        .put(format!("{}/seiapi/v3/trans/WorkOrder/A", first.base))
        .header("x-access-token", &token)
        .json(&json!({"OrderNum": "A", "OrderStatus": 1, "OrderType": "REPAIR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_until("the first node's attempt", 10, || {
        !rx.seen.lock().unwrap().is_empty()
    })
    .await;
    let second = start(&db.url, true).await;
    first.kill();
    let id = rx.seen.lock().unwrap()[0].0.clone();
    rx.hold.store(false, Ordering::SeqCst);
    wait_until("the second node's delivery", 20, || {
        rx.seen.lock().unwrap().iter().any(|s| s.2)
    })
    .await;
    let seen = rx.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|s| s.0 == id), "one event only: {seen:?}");
    assert_eq!(seen.iter().filter(|s| s.2).count(), 1);
    drop(second);
}

/// An admin `ada` of `acme`, seeded directly.
async fn seed(url: &str) {
    let store = Store::open(
        url,
        &StoreOptions {
            max_connections: 2,
            statement_timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    let e = EntityId::parse("acme").unwrap();
    store.ensure_entity(&e).await.unwrap();
    let hash = password::hash("admin-pw").unwrap();
    store
        .add_user(&e, &UserName::parse("ada").unwrap(), Role::Admin, &hash)
        .await
        .unwrap();
    store.close().await;
}

/// The receiver, served on loopback, and its URL.
async fn receiver() -> (Receiver, String) {
    let rx = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().fallback(receive).with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (rx, hook)
}

/// Logs in as `ada` and sends `WorkOrderCreated` to `hook`; the token.
async fn configure(client: &reqwest::Client, base: &str, hook: &str) -> String {
    let token: Value = client
        .post(format!("{base}/createjwt"))
        .json(&json!({"username": "ada", "password": "admin-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let r = client
        .post(format!("{base}/seiapi/v3/SysConfig/mobility"))
        .header("x-access-token", &token)
        .json(&json!({"ExportNotifications": {"Notifications": {
            "WorkOrderCreated": {"Enabled": true, "URL": hook}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_event_is_delivered_after_kill_9_on_sqlite() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_event_is_delivered_after_kill_9_on_postgresql() {
    run(true).await;
}
