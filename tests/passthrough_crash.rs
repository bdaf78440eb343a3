//! A pass-through booking whose process is killed while the third party holds it: after the
//! restart, its retry waits out the claim's lease, then sends the booking again with the same
//! `Idempotency-Key`, and one booking is recorded. The real binary, killed with SIGKILL, on
//! SQLite and PostgreSQL.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, extract::State, http::HeaderMap, response::IntoResponse};
use common::{Server, TestDb};
use revisit::{
    auth::password,
    domain::{EntityId, Role, UserName},
    store::{Store, StoreOptions},
};
use serde_json::{Value, json};

const SECRET: &str = "crash-test-secret-0123456789abcdef0123456789";

/// The third party: records the keys it is sent; hangs while `hang` is set, else answers its
/// booking.
#[derive(Clone, Default)]
struct Third {
    keys: Arc<Mutex<Vec<String>>>,
    hang: Arc<Mutex<bool>>,
}

async fn answer(State(t): State<Third>, headers: HeaderMap) -> impl IntoResponse {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    t.keys.lock().unwrap().push(key);
    if *t.hang.lock().unwrap() {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    axum::Json(json!({"OrderNum": "FU-CRASH", "OrderedParts": []}))
}

async fn start(db_url: &str) -> Server {
    Server::start(
        db_url,
        SECRET,
        &[("REVISIT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")],
    )
    .await
}

async fn crash_mid_call_then_retry(db_url: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let third = Third::default();
    *third.hang.lock().unwrap() = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(answer).with_state(third.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A dispatcher, and the entity passing bookings through with a 500 ms deadline.
    let store = Store::open(
        db_url,
        &StoreOptions {
            max_connections: 2,
            statement_timeout: Duration::from_secs(5),
        },
    )
    .await
    .expect("open the store");
    let acme = EntityId::parse("acme").unwrap();
    store.ensure_entity(&acme).await.unwrap();
    let hash = password::hash("dora-pw-123").unwrap();
    store
        .add_user(
            &acme,
            &UserName::parse("dora").unwrap(),
            Role::Dispatcher,
            &hash,
        )
        .await
        .unwrap();
    store
        .update_config(
            &acme,
            Box::new(move |_| {
                Ok(json!({"RestApi": {
                    "SearchAppts": format!("http://{addr}/open"),
                    "BookJob": format!("http://{addr}/wo/{{0}}/followup"),
                    "TimeoutMs": 500}})
                .as_object()
                .cloned()
                .unwrap())
            }),
        )
        .await
        .unwrap();

    let client = reqwest::Client::new();
    let server = start(db_url).await;
    let token: Value = client
        .post(format!("{}/createjwt", server.base))
        .json(&json!({"username": "dora", "password": "dora-pw-123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let r = client
        .put(format!("{}/seiapi/v3/trans/WorkOrder/WO-1", server.base))
        .header("x-access-token", &token)
        .json(
            &json!({"OrderType": "REPAIR", "OrderStatus": 4097, "ReasonCode": "2001",
            "CanScheduleFollowup": true, "UserName": "dora",
            "Location": {"Address": {"Lat": "45.76", "Lon": "4.83"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let book = |base: String| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            client
                .post(format!("{base}/seiapi/v3/trans/WorkOrder/WO-1/Followup"))
                .header("x-access-token", token)
                .header("idempotency-key", "crash-key")
                .json(&json!({"TimeConstraints": [{"Type": "1001", "Period": {
                    "Start": "2030-12-02T13:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}}]}))
                .send()
                .await
        }
    };

    // The booking reaches the third party, which holds it; the process dies meanwhile.
    let in_flight = tokio::spawn(book(server.base.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while third.keys.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the booking never reached the third party"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(server);
    assert!(
        in_flight.await.unwrap().is_err(),
        "the killed server answered"
    );

    // Restarted: the retry first learns that the booking may still be under way, and for how long.
    let server = start(db_url).await;
    let r = book(server.base.clone()).await.unwrap();
    assert_eq!(r.status(), 409);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "Retry-After {wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:revisit:error:request-in-flight");

    // After the wait, the retry sends the booking again with the same key; the third party,
    // holding that key, answers its booking; one booking is recorded.
    *third.hang.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    let r = book(server.base.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["OrderNum"], "FU-CRASH");
    assert_eq!(*third.keys.lock().unwrap(), ["crash-key", "crash-key"]);
    let list: Value = client
        .get(format!(
            "{}/seiapi/v3/trans/WorkOrder/WO-1/Followup",
            server.base
        ))
        .header("x-access-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["Followups"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn a_pass_through_booking_cut_by_a_crash_is_completed_by_its_retry_with_the_same_key_sqlite()
{
    let db = TestDb::sqlite();
    crash_mid_call_then_retry(&db.url).await;
}

#[tokio::test]
async fn a_pass_through_booking_cut_by_a_crash_is_completed_by_its_retry_with_the_same_key_postgres()
 {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    crash_mid_call_then_retry(&db.url).await;
}
