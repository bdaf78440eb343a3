//! Outbound notifications (ExportNotifications) over HTTP, with a real receiver on loopback: every
//! kind of event arrives signed the Standard Webhooks way, a rolled-back change sends nothing, a
//! receiver that fails gets every event again (same `webhook-id`) in order per work order, its
//! `Retry-After` is honoured, a failing endpoint delays no other, the OAuth2 token is fetched
//! once and renewed on a 401, secrets read back redacted, failed events are listed and replayed,
//! and two PostgreSQL nodes deliver every event once.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use jiff::SignedDuration;
use revisit::{
    app::AppState,
    config::Config,
    domain::{Role, time},
};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Connection;

use crate::helpers::{
    AREA, Backend, JOB_LAT, JOB_LON, SCHED, TestApp, WEEK, closed_order, fleet, local,
    open_windows, spawn_app_with,
};

// ---------------------------------------------------------------------------------------------
// Harness

/// Loopback allowed (the receiver), short poll and backoff so that retries happen within a test.
fn fast(c: &mut Config) {
    c.outbound.allow_private_networks = true;
    c.outbound.breaker_failures = 1000;
    c.outbound.timeout = Duration::from_secs(2);
    c.notify.poll = Duration::from_millis(50);
    c.notify.lease = Duration::from_secs(6);
    c.notify.backoff_base = Duration::from_millis(50);
    c.notify.backoff_max = Duration::from_millis(200);
}

/// `mod $name { sqlite(), postgres() }` with the app built by [`fast`] and `$tweak`.
macro_rules! notify_test {
    ($name:ident, $tweak:expr, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = spawn_app_with(Backend::Sqlite, |c| {
                    fast(c);
                    ($tweak)(c)
                })
                .await
                .expect("SQLite is always available");
                $body.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($app) = spawn_app_with(Backend::Postgres, |c| {
                    fast(c);
                    ($tweak)(c)
                })
                .await
                else {
                    return;
                };
                $body.await
            }
        }
    };
}

/// What the receiver answers to one request.
#[derive(Clone, Debug)]
enum Reply {
    Status(u16),
    /// The status with `Retry-After: seconds`.
    RetryAfter(u16, u64),
}

/// A request the receiver got, and its answer.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    raw: Bytes,
    body: Value,
    at: Instant,
    answered: u16,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    fn id(&self) -> &str {
        self.header("webhook-id")
    }
    fn event(&self) -> &str {
        self.body["EventType"].as_str().unwrap_or_default()
    }
    fn order(&self) -> &str {
        self.body["WorkOrder"]["OrderNum"]
            .as_str()
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    /// Answers to give, in turn, per path; then `fallback`, then 200.
    script: HashMap<String, VecDeque<Reply>>,
    fallback: HashMap<String, Reply>,
    tokens: Vec<String>,
    token_forms: Vec<String>,
}

/// A webhook receiver (and OAuth2 token endpoint at `/token`) on loopback, whose answers can
/// change mid-test.
#[derive(Clone)]
struct Receiver {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    async fn start() -> Self {
        let inner: Arc<Mutex<Inner>> = Default::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(answer).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, inner }
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    fn script(&self, path: &str, replies: Vec<Reply>) {
        self.inner
            .lock()
            .unwrap()
            .script
            .insert(path.into(), replies.into());
    }
    fn fallback(&self, path: &str, reply: Option<Reply>) {
        let mut i = self.inner.lock().unwrap();
        match reply {
            Some(r) => i.fallback.insert(path.into(), r),
            None => i.fallback.remove(path),
        };
    }
    /// The webhook requests (not the token requests), in arrival order.
    fn seen(&self) -> Vec<Seen> {
        self.inner
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path != "/token")
            .cloned()
            .collect()
    }
    /// The webhook requests answered 2xx.
    fn delivered(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.answered < 300)
            .collect()
    }
    fn tokens_issued(&self) -> usize {
        self.inner.lock().unwrap().tokens.len()
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let mut i = inner.lock().unwrap();
    let seen = |answered| Seen {
        path: path.clone(),
        headers: headers.clone(),
        raw: raw.clone(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        at: Instant::now(),
        answered,
    };
    if path == "/token" {
        let token = format!("tok-{}", i.tokens.len() + 1);
        i.tokens.push(token.clone());
        i.token_forms
            .push(String::from_utf8_lossy(&raw).into_owned());
        i.seen.push(seen(200));
        return axum::Json(
            json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
        )
        .into_response();
    }
    let reply = i
        .script
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .or_else(|| i.fallback.get(&path).cloned())
        .unwrap_or(Reply::Status(200));
    let (status, retry_after) = match reply {
        Reply::Status(s) => (s, None),
        Reply::RetryAfter(s, secs) => (s, Some(secs)),
    };
    i.seen.push(seen(status));
    let mut resp = (StatusCode::from_u16(status).unwrap(), "{}").into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert("retry-after", secs.to_string().parse().unwrap());
    }
    resp
}

/// Waits until `done` holds, up to `secs` seconds.
async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether one of the request's signatures verifies with `secret` (an implementation of the
/// Standard Webhooks scheme independent of Revisit's).
fn verifies(secret: &str, s: &Seen) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", s.id(), s.header("webhook-timestamp")).as_bytes());
    mac.update(&s.raw);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    s.header("webhook-signature")
        .split(' ')
        .any(|sig| sig == expected)
}

/// `ExportNotifications` sending each `(event, path)` to the receiver with a key header.
fn notifications(rx: &Receiver, events: &[(&str, &str)]) -> Value {
    let mut n = serde_json::Map::new();
    for (event, path) in events {
        n.insert(
            event.to_string(),
            json!({"Enabled": true, "URL": rx.url(path),
                   "Headers": [{"Name": "X-Api-Key", "Value": "key-123"}]}),
        );
    }
    json!({"ExportNotifications": {"Notifications": n}})
}

const ALL: [&str; 5] = [
    "WorkOrderCreated",
    "WorkOrderChanged",
    "WorkOrderDeleted",
    "FollowUpBooked",
    "VisitMoved",
];

fn all_to(path: &str) -> Vec<(&'static str, &str)> {
    ALL.iter().map(|e| (*e, path)).collect()
}

/// An open order; `version` goes in its description, so that each version is a change.
fn order(num: &str, user: &str, version: i64) -> Value {
    json!({"OrderNum": num, "OrderType": "REPAIR", "OrderStatus": 1, "UserName": user,
           "Description": format!("v{version}"), "Location": {"ServiceAreaID": "north"}})
}

async fn secret(app: &TestApp, admin: &str) -> String {
    app.request(
        reqwest::Method::GET,
        "/notifications/v1/secret",
        Some(admin),
        None,
    )
    .await
    .expect(200)
    .body["Secret"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn events(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    app.request(
        reqwest::Method::GET,
        &format!("/notifications/v1/events{query}"),
        Some(token),
        None,
    )
    .await
    .expect(200)
    .body["Events"]
        .as_array()
        .unwrap()
        .clone()
}

// ---------------------------------------------------------------------------------------------
// The re-optimiser's scene (as tests/api/reoptimize.rs): two technicians living at either end,
// each given two visits at the other end tomorrow, so a run swaps them.

const EAST: (f64, f64) = (JOB_LAT, JOB_LON + 0.15);
const WEST: (f64, f64) = (JOB_LAT, JOB_LON - 0.15);

fn tech(user: &str, home: (f64, f64)) -> Value {
    json!({
        "UserName": user, "Name": user, "ServiceAreaIDs": [AREA],
        "Skills": [{"Code": "HVAC", "Level": 2}],
        "Home": {"Lat": home.0, "Lon": home.1},
        "Shifts": [{"Days": WEEK, "Start": "07:00", "End": "21:00"}],
    })
}

fn visit(num: &str, user: &str, place: (f64, f64), hhmm: &str) -> Value {
    let start = local(1, hhmm);
    json!({
        "OrderNum": num, "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
        "UserName": user,
        "PlannedStartDate": time::format(start),
        "PlannedEndDate": time::format(start + SignedDuration::from_mins(60)),
        "TimeConstraints": [{"Type": "1001", "Period": {
            "Start": time::format(local(1, "08:00")), "End": time::format(local(1, "20:00"))}}],
        "Location": {"ServiceAreaID": AREA, "Address": {
            "Lat": format!("{:.4}", place.0 + 0.001 * (num.len() as f64)), "Lon": format!("{:.4}", place.1)}},
    })
}

// ---------------------------------------------------------------------------------------------
// Tests

notify_test!(
    every_kind_of_event_arrives_once_signed_with_the_entity_secret_and_the_configured_headers,
    |_: &mut Config| {},
    |app| async move {
        let rx = Receiver::start().await;
        let f = fleet(&app).await;
        app.post_config(&f.admin, &notifications(&rx, &all_to("/hook")))
            .await
            .expect(200);
        let secret = secret(&app, &f.admin).await;
        assert!(secret.starts_with("whsec_"), "{secret}");

        // Created, changed, booked from, deleted.
        let mut original = closed_order("WO-1", "tom");
        app.put_order(&f.dispatcher, "WO-1", &original)
            .await
            .expect(201);
        original["Description"] = json!("parts needed");
        app.put_order(&f.dispatcher, "WO-1", &original)
            .await
            .expect(200);
        // The same body again changes nothing: no event.
        app.put_order(&f.dispatcher, "WO-1", &original)
            .await
            .expect(200);
        let tom = app.login("tom", &f.tech.password).await;
        let (_, wins) = open_windows(&app, &tom, &json!({"OriginalOrderNum": "WO-1"})).await;
        let booked = app
            .book_followup(&tom, "WO-1", &crate::helpers::book_body(wins[0]))
            .await
            .expect(200);
        let new_num = booked.body["OrderNum"].as_str().unwrap().to_string();
        app.put_order(&f.dispatcher, "GONE-1", &order("GONE-1", "tom", 1))
            .await
            .expect(201);
        app.delete_order(&f.dispatcher, "GONE-1").await;

        // Moved by the re-optimiser.
        app.sched_put(&f.admin, "technicians", "east", &tech("east", EAST))
            .await
            .expect(201);
        app.sched_put(&f.admin, "technicians", "west", &tech("west", WEST))
            .await
            .expect(201);
        app.user("acme", "east", Role::Technician).await;
        app.user("acme", "west", Role::Technician).await;
        for (num, user, place, at) in [
            ("W1", "east", WEST, "09:00"),
            ("W2", "east", WEST, "11:00"),
            ("E1", "west", EAST, "09:00"),
            ("E2", "west", EAST, "11:00"),
        ] {
            app.put_order(&f.dispatcher, num, &visit(num, user, place, at))
                .await
                .expect(201);
        }
        let tomorrow = local(1, "12:00").to_zoned(crate::helpers::tz()).date();
        let run = app
            .request(
                reqwest::Method::POST,
                &format!("{SCHED}/reoptimize"),
                Some(&f.dispatcher),
                Some(&json!({"ServiceAreaID": AREA, "From": tomorrow.to_string(), "Days": 1, "Iterations": 2000})),
            )
            .await
            .expect(200);
        let moves = run.body["Moves"].as_array().unwrap().len();
        assert!(
            moves > 0,
            "the scene makes the re-optimiser move visits: {}",
            run.body
        );

        // WO-1 created + changed, the booking, GONE-1 created + deleted, 4 visits created, moves.
        let expected = 2 + 1 + 2 + 4 + moves;
        wait_until("every event", 20, || rx.delivered().len() >= expected).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = rx.delivered();
        assert_eq!(
            got.len(),
            expected,
            "{:#?}",
            got.iter()
                .map(|s| (s.event().to_string(), s.order().to_string()))
                .collect::<Vec<_>>()
        );
        for s in &got {
            assert!(
                verifies(&secret, s),
                "signature of {} does not verify",
                s.id()
            );
            assert!(s.id().starts_with("msg_"));
            assert_eq!(s.body["EventID"], s.id());
            assert_eq!(s.body["EntityID"], "acme");
            assert_eq!(s.header("x-api-key"), "key-123");
            assert_eq!(s.header("content-type"), "application/json");
            let ts: i64 = s.header("webhook-timestamp").parse().unwrap();
            assert!((jiff::Timestamp::now().as_second() - ts).abs() < 60);
        }
        let of = |event: &str, num: &str| {
            got.iter()
                .filter(|s| s.event() == event && s.order() == num)
                .count()
        };
        assert_eq!(of("WorkOrderCreated", "WO-1"), 1);
        assert_eq!(of("WorkOrderChanged", "WO-1"), 1);
        assert_eq!(of("FollowUpBooked", &new_num), 1);
        assert_eq!(of("WorkOrderCreated", "GONE-1"), 1);
        assert_eq!(of("WorkOrderDeleted", "GONE-1"), 1);
        let changed = got
            .iter()
            .find(|s| s.event() == "WorkOrderChanged")
            .unwrap();
        assert!(
            changed.body["Changes"]
                .as_array()
                .unwrap()
                .contains(&json!("Description")),
            "{}",
            changed.body
        );
        let booking = got.iter().find(|s| s.event() == "FollowUpBooked").unwrap();
        assert_eq!(booking.body["OriginalWorkOrder"]["OrderNum"], "WO-1");
        assert_eq!(
            booking.body["WorkOrder"]["OriginalOrderNum"], "WO-1",
            "{}",
            booking.body
        );
        let moved: Vec<&Seen> = got.iter().filter(|s| s.event() == "VisitMoved").collect();
        assert_eq!(moved.len(), moves);
        for m in moved {
            assert_eq!(m.body["Move"]["Reason"], "reoptimize");
            assert_eq!(
                m.body["Move"]["ToUserName"],
                m.body["WorkOrder"]["UserName"]
            );
        }
        // Every event is listed as delivered, and counted.
        let listed = events(&app, &f.dispatcher, "?State=delivered").await;
        assert_eq!(listed.len(), expected);
        let metrics = app
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await
            .expect(200);
        let text = metrics.body.as_str().unwrap_or_default().to_string();
        let created = text
            .lines()
            .find(|l| {
                l.starts_with("revisit_notify_events_delivered_total{")
                    && l.contains("event=\"WorkOrderCreated\"")
            })
            .unwrap_or_else(|| panic!("no delivered counter in {text}"));
        assert!(created.ends_with(" 6"), "{created}");
        for name in [
            "revisit_notify_events_pending ",
            "revisit_notify_delivery_latency_seconds_count ",
            "revisit_notify_oldest_pending_age_seconds ",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
);

notify_test!(
    a_rolled_back_booking_sends_nothing_and_the_next_one_sends_one_event,
    |_: &mut Config| {},
    |app| async move {
        let rx = Receiver::start().await;
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        app.post_config(
            &f.admin,
            &notifications(&rx, &[("FollowUpBooked", "/hook")]),
        )
        .await
        .expect(200);
        // The ledger refuses the booking's last statement: its transaction, which had already
        // recorded the event, rolls back.
        let url = app.state.config.database_url.expose().to_string();
        let (create, drop) = if url.starts_with("sqlite:") {
            (
                vec![
                    "CREATE TRIGGER refuse_followups BEFORE INSERT ON followups BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                ],
                vec!["DROP TRIGGER refuse_followups"],
            )
        } else {
            (
                vec![
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
                    "CREATE TRIGGER refuse_followups BEFORE INSERT ON followups FOR EACH ROW EXECUTE FUNCTION refuse()",
                ],
                vec!["DROP TRIGGER refuse_followups ON followups"],
            )
        };
        let run = |statements: Vec<&'static str>| {
            let url = url.clone();
            async move {
                if url.starts_with("sqlite:") {
                    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    for s in statements {
                        sqlx::query(s).execute(&mut c).await.unwrap();
                    }
                } else {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    for s in statements {
                        sqlx::query(s).execute(&mut c).await.unwrap();
                    }
                }
            }
        };
        run(create).await;
        let tom = app.login("tom", &f.tech.password).await;
        let (_, wins) = open_windows(&app, &tom, &json!({"OriginalOrderNum": "WO-1"})).await;
        let refused = app
            .book_followup(&tom, "WO-1", &crate::helpers::book_body(wins[0]))
            .await;
        // (SQLite reports the trigger's abort as the double-booking check's: a 409.)
        assert!(!refused.status.is_success(), "{}", refused.body);
        assert!(
            app.list_followups(&tom, "WO-1")
                .await
                .body
                .to_string()
                .find("OrderNum")
                .is_none()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(rx.seen().is_empty(), "a rolled-back booking was notified");
        assert!(events(&app, &f.admin, "").await.is_empty());

        run(drop).await;
        let (_, wins) = open_windows(&app, &tom, &json!({"OriginalOrderNum": "WO-1"})).await;
        let booked = app
            .book_followup(&tom, "WO-1", &crate::helpers::book_body(wins[0]))
            .await
            .expect(200);
        wait_until("the booking's event", 10, || !rx.delivered().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = rx.seen();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].body["WorkOrder"]["OrderNum"],
            booked.body["OrderNum"]
        );
    }
);

notify_test!(
    a_receiver_down_for_a_while_gets_every_event_again_with_its_id_in_order_per_work_order,
    |_: &mut Config| {},
    |app| async move {
        let rx = Receiver::start().await;
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let dora = app.user("acme", "dora", Role::Dispatcher).await.token;
        app.post_config(
            &admin,
            &notifications(
                &rx,
                &[("WorkOrderCreated", "/hook"), ("WorkOrderChanged", "/hook")],
            ),
        )
        .await
        .expect(200);
        rx.fallback("/hook", Some(Reply::Status(500)));
        for num in ["A", "B", "C"] {
            app.put_order(&dora, num, &order(num, "tom", 1))
                .await
                .expect(201);
        }
        for version in [2, 3, 4] {
            for num in ["A", "B", "C"] {
                app.put_order(&dora, num, &order(num, "tom", version))
                    .await
                    .expect(200);
            }
        }
        wait_until("failed attempts", 10, || rx.seen().len() >= 6).await;
        rx.fallback("/hook", None);
        wait_until("every event", 20, || rx.delivered().len() >= 12).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let delivered = rx.delivered();
        assert_eq!(
            delivered.len(),
            12,
            "each event is delivered once after it succeeded"
        );
        for num in ["A", "B", "C"] {
            let versions: Vec<&str> = delivered
                .iter()
                .filter(|s| s.order() == num)
                .map(|s| s.body["WorkOrder"]["Description"].as_str().unwrap())
                .collect();
            assert_eq!(
                versions,
                ["v1", "v2", "v3", "v4"],
                "order of {num}'s events"
            );
        }
        // Every failed attempt was an event later delivered with the same id.
        let failed: Vec<Seen> = rx
            .seen()
            .into_iter()
            .filter(|s| s.answered == 500)
            .collect();
        assert!(!failed.is_empty());
        for s in &failed {
            assert!(
                delivered.iter().any(|d| d.id() == s.id() && d.raw == s.raw),
                "{} retried with another id or body",
                s.id()
            );
        }
        let listed = events(&app, &dora, "?OrderNum=A").await;
        assert_eq!(listed.len(), 4);
        assert!(listed.iter().all(|e| e["State"] == "delivered"));
        assert!(
            listed.iter().any(|e| e["Attempts"].as_i64().unwrap() > 1),
            "{listed:?}"
        );
    }
);

notify_test!(
    retry_after_is_honoured,
    |_: &mut Config| {},
    |app| async move {
        let rx = Receiver::start().await;
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        app.post_config(
            &admin,
            &notifications(&rx, &[("WorkOrderCreated", "/hook")]),
        )
        .await
        .expect(200);
        rx.script("/hook", vec![Reply::RetryAfter(429, 2)]);
        app.put_order(&admin, "A", &order("A", "tom", 1))
            .await
            .expect(201);
        wait_until("the delivery", 10, || !rx.delivered().is_empty()).await;
        let seen = rx.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].answered, 429);
        assert_eq!(seen[0].id(), seen[1].id());
        let waited = seen[1].at - seen[0].at;
        assert!(
            waited >= Duration::from_millis(1900),
            "retried after {waited:?}, before Retry-After"
        );
    }
);

notify_test!(
    a_failing_endpoint_does_not_delay_another_entitys_events,
    |_: &mut Config| {},
    |app| async move {
        let rx = Receiver::start().await;
        rx.fallback("/bad", Some(Reply::Status(503)));
        let acme = app.user("acme", "ada", Role::Admin).await.token;
        let beta = app.user("beta", "bea", Role::Admin).await.token;
        app.post_config(&acme, &notifications(&rx, &[("WorkOrderCreated", "/bad")]))
            .await
            .expect(200);
        app.post_config(&beta, &notifications(&rx, &[("WorkOrderCreated", "/good")]))
            .await
            .expect(200);
        for i in 0..20 {
            let num = format!("A{i}");
            app.put_order(&acme, &num, &order(&num, "tom", 1))
                .await
                .expect(201);
        }
        wait_until("failing attempts", 10, || rx.seen().len() >= 20).await;
        let started = Instant::now();
        app.put_order(&beta, "B1", &order("B1", "bob", 1))
            .await
            .expect(201);
        wait_until("the other entity's event", 10, || {
            rx.delivered().iter().any(|s| s.path == "/good")
        })
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        let good: Vec<Seen> = rx
            .seen()
            .into_iter()
            .filter(|s| s.path == "/good")
            .collect();
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].body["EntityID"], "beta");
        // Each entity sees only its own events, and signs with its own secret.
        assert!(events(&app, &beta, "").await.len() == 1);
        let acme_event = events(&app, &acme, "").await[0]["EventID"]
            .as_str()
            .unwrap()
            .to_string();
        for path in [
            format!("/notifications/v1/events/{acme_event}"),
            format!("/notifications/v1/events/{acme_event}/replay"),
        ] {
            let method = if path.ends_with("replay") {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            };
            let r = app.request(method, &path, Some(&beta), None).await;
            crate::helpers::assert_error(&r, 404);
        }
        let beta_secret = secret(&app, &beta).await;
        assert_ne!(beta_secret, secret(&app, &acme).await);
        assert!(verifies(&beta_secret, &good[0]));
    }
);

notify_test!(
    the_oauth2_token_is_fetched_once_reused_and_renewed_after_a_401,
    |_: &mut Config| {},
    |app| async move {
        let rx = Receiver::start().await;
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let mut cfg = notifications(&rx, &[("WorkOrderCreated", "/hook")]);
        cfg["ExportNotifications"]["Authentication"] = json!({
            "Type": "OAuth2", "URL": rx.url("/token"),
            "Headers": [{"Name": "X-Tenant", "Value": "t-9"}],
            "Request": {"audience": "crm", "client_id": "revisit", "client_secret": "s3cret-value",
                        "grant_type": "client_credentials"}});
        app.post_config(&admin, &cfg).await.expect(200);
        for num in ["A", "B", "C", "D"] {
            app.put_order(&admin, num, &order(num, "tom", 1))
                .await
                .expect(201);
        }
        wait_until("four deliveries", 10, || rx.delivered().len() >= 4).await;
        assert_eq!(rx.tokens_issued(), 1, "one token for every delivery");
        for s in rx.delivered() {
            assert_eq!(s.header("authorization"), "Bearer tok-1");
        }
        {
            let i = rx.inner.lock().unwrap();
            let form = &i.token_forms[0];
            for part in [
                "grant_type=client_credentials",
                "client_id=revisit",
                "client_secret=s3cret-value",
                "audience=crm",
            ] {
                assert!(form.contains(part), "{part} not in {form}");
            }
            let token_req = i.seen.iter().find(|s| s.path == "/token").unwrap();
            assert_eq!(token_req.header("x-tenant"), "t-9");
        }
        // The receiver no longer accepts the token: a new one is fetched, the event delivered.
        rx.script("/hook", vec![Reply::Status(401)]);
        app.put_order(&admin, "E", &order("E", "tom", 1))
            .await
            .expect(201);
        wait_until("the fifth delivery", 10, || rx.delivered().len() >= 5).await;
        assert_eq!(rx.tokens_issued(), 2);
        assert_eq!(rx.delivered()[4].header("authorization"), "Bearer tok-2");
    }
);

notify_test!(
    secrets_read_back_redacted_are_kept_when_written_back_and_bad_settings_are_refused,
    |_: &mut Config| {},
    |app| async move {
        let rx = Receiver::start().await;
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let mut cfg = notifications(&rx, &[("WorkOrderCreated", "/hook")]);
        cfg["ExportNotifications"]["Authentication"] = json!({
            "Type": "OAuth2", "URL": rx.url("/token"),
            "Request": {"client_id": "revisit", "client_secret": "s3cret-value", "grant_type": "client_credentials"}});
        let written = app.post_config(&admin, &cfg).await.expect(200);
        let read = app.get_config(&admin).await.expect(200);
        for shown in [&written.body, &read.body] {
            let text = shown.to_string();
            assert!(
                !text.contains("s3cret-value") && !text.contains("key-123"),
                "{text}"
            );
            assert_eq!(
                shown["ExportNotifications"]["Authentication"]["Request"]["client_id"],
                "revisit"
            );
        }
        // What was read, written back: the secrets stay.
        app.post_config(&admin, &read.body).await.expect(200);
        app.put_order(&admin, "A", &order("A", "tom", 1))
            .await
            .expect(201);
        wait_until("the delivery", 10, || !rx.delivered().is_empty()).await;
        assert_eq!(rx.delivered()[0].header("x-api-key"), "key-123");
        assert!(rx.inner.lock().unwrap().token_forms[0].contains("client_secret=s3cret-value"));

        for (bad, path) in [
            (
                json!({"ExportNotifications": {"Notifications": {"WorkorderCreated": {"Enabled": true, "URL": rx.url("/x")}}}}),
                "$.ExportNotifications.Notifications.WorkorderCreated",
            ),
            (
                json!({"ExportNotifications": {"Notifications": {"VisitMoved": {"Enabled": true, "URL": ""}}}}),
                "$.ExportNotifications.Notifications.VisitMoved.URL",
            ),
            (
                json!({"ExportNotifications": {"Notifications": {"VisitMoved": {"Enabled": true, "URL": rx.url("/x"),
                "Headers": [{"Name": "webhook-signature", "Value": "x"}]}}}}),
                "$.ExportNotifications.Notifications.VisitMoved.Headers[0].Name",
            ),
            (
                json!({"ExportNotifications": {"Authentication": {"Type": "Basic"}}}),
                "$.ExportNotifications.Authentication.Type",
            ),
        ] {
            let r = app.post_config(&admin, &bad).await;
            crate::helpers::assert_invalid(&r, 400, path);
        }
        // Only admins read the secret and replay; technicians read no events.
        let tech = app.user("acme", "tom", Role::Technician).await.token;
        let r = app
            .request(
                reqwest::Method::GET,
                "/notifications/v1/secret",
                Some(&tech),
                None,
            )
            .await;
        crate::helpers::assert_error(&r, 403);
        let r = app
            .request(
                reqwest::Method::GET,
                "/notifications/v1/events",
                Some(&tech),
                None,
            )
            .await;
        crate::helpers::assert_error(&r, 403);
    }
);

notify_test!(
    an_event_given_up_is_listed_as_failed_and_a_replay_delivers_it_with_its_id,
    |c: &mut Config| c.notify.retry_window = Duration::from_millis(800),
    |app| async move {
        let rx = Receiver::start().await;
        rx.fallback("/hook", Some(Reply::Status(500)));
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        app.post_config(
            &admin,
            &notifications(&rx, &[("WorkOrderCreated", "/hook")]),
        )
        .await
        .expect(200);
        app.put_order(&admin, "A", &order("A", "tom", 1))
            .await
            .expect(201);
        let mut failed = Vec::new();
        for _ in 0..100 {
            failed = events(&app, &admin, "?State=failed").await;
            if !failed.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            failed.len(),
            1,
            "the event is kept as failed after its retry window"
        );
        let id = failed[0]["EventID"].as_str().unwrap().to_string();
        assert_eq!(failed[0]["LastStatus"], 500);
        let detail = app
            .request(
                reqwest::Method::GET,
                &format!("/notifications/v1/events/{id}"),
                Some(&admin),
                None,
            )
            .await
            .expect(200);
        let log = detail.body["AttemptLog"].as_array().unwrap();
        assert!(
            log.len() >= 2 && log.iter().all(|a| a["Status"] == 500),
            "{}",
            detail.body
        );
        assert_eq!(detail.body["Payload"]["EventID"], id.as_str());
        let tries = rx.seen().len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rx.seen().len(), tries, "a failed event is not retried");

        rx.fallback("/hook", None);
        // A rotation: the new secret and, for a grace period, the previous one both sign.
        let before = secret(&app, &admin).await;
        let rotated = app
            .request(
                reqwest::Method::POST,
                "/notifications/v1/secret/rotate",
                Some(&admin),
                None,
            )
            .await
            .expect(200);
        let after = rotated.body["Secret"].as_str().unwrap().to_string();
        assert_ne!(before, after);
        assert_eq!(rotated.body["PreviousSecret"], before.as_str());
        let r = app
            .request(
                reqwest::Method::POST,
                &format!("/notifications/v1/events/{id}/replay"),
                Some(&admin),
                None,
            )
            .await
            .expect(202);
        assert_eq!(r.body["State"], "pending");
        wait_until("the replayed delivery", 10, || !rx.delivered().is_empty()).await;
        let d = &rx.delivered()[0];
        assert_eq!(d.id(), id);
        assert!(verifies(&after, d) && verifies(&before, d));
        let r = app
            .request(
                reqwest::Method::POST,
                "/notifications/v1/events/msg_nope/replay",
                Some(&admin),
                None,
            )
            .await;
        crate::helpers::assert_error(&r, 404);
    }
);

/// Two processes on one PostgreSQL database, each with its own worker: every event is
/// delivered, none twice (the receiver always answers 200, so no retry is caused).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgresql_nodes_deliver_every_event_once() {
    let Some(app) = spawn_app_with(Backend::Postgres, fast).await else {
        return;
    };
    let second = AppState::build((*app.state.config).clone())
        .await
        .expect("a second node");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(revisit::app::serve(
        listener,
        second,
        std::future::pending(),
    ));
    let rx = Receiver::start().await;
    let admin = app.user("acme", "ada", Role::Admin).await.token;
    app.post_config(
        &admin,
        &notifications(
            &rx,
            &[("WorkOrderCreated", "/hook"), ("WorkOrderChanged", "/hook")],
        ),
    )
    .await
    .expect(200);
    let nodes = [app.address.clone(), second_address];
    let mut writes = Vec::new();
    for i in 0..30 {
        let node = nodes[i % 2].clone();
        let (client, admin) = (app.client.clone(), admin.clone());
        writes.push(tokio::spawn(async move {
            let num = format!("N{}", i % 10);
            let body = order(&num, "tom", 1 + (i / 10) as i64);
            let r = client
                .put(format!("{node}/seiapi/v3/trans/WorkOrder/{num}"))
                .header("x-access-token", admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }));
    }
    for w in writes {
        w.await.unwrap();
    }
    // Each of the 10 orders: created, then changed twice (writes of one order may race, but
    // every write changes the description, so each is an event).
    wait_until("every event", 30, || rx.delivered().len() >= 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rx.delivered();
    let mut ids: Vec<&str> = got.iter().map(Seen::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "an event was delivered twice");
    assert_eq!(got.len(), 30);
}

/// The outbound policy applies when the configuration is written: with private networks
/// refused (the default), a loopback target is a 400 naming the setting.
#[tokio::test]
async fn a_target_the_outbound_policy_refuses_is_refused_when_configured() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.unwrap();
    let admin = app.user("acme", "ada", Role::Admin).await.token;
    let r = app
        .post_config(
            &admin,
            &json!({"ExportNotifications": {
                "Authentication": {"Type": "OAuth2", "URL": "http://127.0.0.1:9/token"},
                "Notifications": {"WorkOrderCreated": {"Enabled": true, "URL": "http://10.0.0.7/hook"}}}}),
        )
        .await;
    crate::helpers::assert_invalid(&r, 400, "$.ExportNotifications.Authentication.URL");
    crate::helpers::assert_invalid(
        &r,
        400,
        "$.ExportNotifications.Notifications.WorkOrderCreated.URL",
    );
}

notify_test!(
    delivered_events_are_removed_after_the_retention_period,
    |c: &mut Config| c.notify.retention = Duration::from_millis(300),
    |app| async move {
        let rx = Receiver::start().await;
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        app.post_config(
            &admin,
            &notifications(&rx, &[("WorkOrderCreated", "/hook")]),
        )
        .await
        .expect(200);
        app.put_order(&admin, "A", &order("A", "tom", 1))
            .await
            .expect(201);
        wait_until("the delivery", 10, || !rx.delivered().is_empty()).await;
        let mut left = usize::MAX;
        for _ in 0..100 {
            left = events(&app, &admin, "").await.len();
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(left, 0, "the delivered event is still listed");
        assert_eq!(rx.delivered().len(), 1);
    }
);
