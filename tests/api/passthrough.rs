//! Pass-through to a third-party scheduler (docs/api.md §8) through the one outbound client: relay,
//! failure mapping, timeouts and caps, the circuit breaker, SSRF protection, idempotent
//! recording, and Revisit serving the two interfaces for another Revisit. Third parties are real
//! HTTP servers on loopback, so the test app allows private networks, except in the SSRF table.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use revisit::{app::AppState, config::OutboundConfig, domain::Role};
use serde_json::{Value, json};

use crate::{
    booking, both_backends, followable_order,
    helpers::{self, Backend, TestApp, assert_error},
};

// ---------------------------------------------------------------------------------------------
// Harness

/// The same app and database, served again on a new port with changed outbound settings: the
/// shared harness builds every app with the defaults (private networks refused).
async fn with_outbound(mut app: TestApp, f: impl FnOnce(&mut OutboundConfig)) -> TestApp {
    let mut config = (*app.state.config).clone();
    f(&mut config.outbound);
    let state = AppState::build(config).await.expect("build the app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    app.address = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(revisit::app::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    app.state = state;
    app
}

/// Loopback allowed; a breaker that does not get in the way unless a test asks for it.
async fn private_ok(app: TestApp) -> TestApp {
    with_outbound(app, |o| {
        o.allow_private_networks = true;
        o.breaker_failures = 1000;
    })
    .await
}

/// What the receiver answers; changeable mid-test.
#[derive(Clone, Debug)]
enum Mode {
    Json(u16, Value),
    /// Answers after this long.
    Slow(Duration, u16, Value),
    Hang,
    Html,
    Big,
    Redirect(String),
    /// Exactly these bytes, with this content type.
    Raw(u16, &'static str, &'static str),
}

#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
    raw: Bytes,
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Receiver {
    /// A third-party scheduler on `bind` (port 0), answering `mode` to any POST.
    async fn start_on(bind: &str, mode: Mode) -> Self {
        let r = Receiver {
            addr: "127.0.0.1:0".parse().unwrap(),
            seen: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
        };
        let listener = tokio::net::TcpListener::bind(bind).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(answer).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, ..r }
    }

    async fn start(mode: Mode) -> Self {
        Self::start_on("127.0.0.1:0", mode).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn host(&self) -> String {
        self.addr.to_string()
    }
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("a call")
    }
}

async fn answer(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    r.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.clone(),
    });
    let mode = r.mode.lock().unwrap().clone();
    let json = |status: u16, body: Value| {
        (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
    };
    match mode {
        Mode::Json(s, b) => json(s, b),
        Mode::Slow(d, s, b) => {
            tokio::time::sleep(d).await;
            json(s, b)
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            json(200, json!({}))
        }
        Mode::Html => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Service temporarily down</body></html>",
        )
            .into_response(),
        Mode::Big => {
            let filler = "x".repeat(5 * 1024 * 1024);
            json(
                200,
                json!({"OrderNum": "FU-BIG", "TimeConstraints": [], "Filler": filler}),
            )
        }
        Mode::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Mode::Raw(status, content_type, body) => (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response(),
    }
}

/// A "scheduler" that accepts connections and closes them at once, without answering.
async fn resetter() -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            drop(sock);
        }
    });
    (addr, accepted)
}

struct Cast {
    admin: String,
    dora: String,
}

/// acme's admin and dispatcher, the followable orders WO-1 and "WO 7" (a space, to check the
/// encoding of `{0}`), and the entity's RestApi pointing at `search` and `book`.
async fn cast(app: &TestApp, search: &str, book: &str) -> Cast {
    let c = Cast {
        admin: app.user("acme", "ada", Role::Admin).await.token,
        dora: app.user("acme", "dora", Role::Dispatcher).await.token,
    };
    for num in ["WO-1", "WO-2", "WO 7"] {
        app.put_order(&c.dora, num, &followable_order(num, "alice"))
            .await
            .expect(201);
    }
    configure(app, &c.admin, search, book, None).await;
    c
}

async fn configure(app: &TestApp, admin: &str, search: &str, book: &str, timeout: Option<u64>) {
    let mut rest = json!({"SearchAppts": search, "BookJob": book});
    if let Some(ms) = timeout {
        rest["TimeoutMs"] = json!(ms);
    }
    app.post_config(admin, &json!({"RestApi": rest}))
        .await
        .expect(200);
}

fn search_body() -> Value {
    json!({"TimeConstraints": [{"Type": "1002",
        "Period": {"Start": "2030-12-02T08:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}}]})
}

fn slots_answer() -> Value {
    json!({"StatusMsg": "", "TimeConstraints": [{"ID": "S1", "Desc": "afternoon", "Type": "1001",
        "Period": {"Start": "2030-12-02T13:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}}]})
}

fn booked(num: &str) -> Value {
    json!({"OrderNum": num, "OrderedParts": []})
}

/// An error object of `status` whose detail names `host` and not the token.
#[track_caller]
fn assert_gateway_error(r: &helpers::Resp, status: u16, kind: &str, host: &str, token: &str) {
    assert_error(r, status);
    assert_eq!(r.body["type"], kind, "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains(host), "{detail} does not name {host}");
    assert!(
        !r.body.to_string().contains(token),
        "the token leaked: {}",
        r.body
    );
}

// ---------------------------------------------------------------------------------------------
// Relay

both_backends!(
    a_third_partys_200_401_and_500_are_relayed_with_their_bodies,
    |app| async move {
        let app = private_ok(app).await;
        let recv = Receiver::start(Mode::Json(200, booked("FU-9"))).await;
        let c = cast(
            &app,
            &recv.url("/appointments/open"),
            &recv.url("/wo/{0}/followup"),
        )
        .await;

        // Booking: {0} replaced (encoded), headers and the validated body forwarded.
        let r = app
            .book_followup(&c.dora, "WO 7", &booking())
            .await
            .expect(200);
        assert_eq!(r.body, booked("FU-9"));
        let seen = recv.last();
        assert_eq!(seen.path, "/wo/WO%207/followup");
        let h = |k: &str| {
            seen.headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(h("content-type").as_deref(), Some("application/json"));
        assert_eq!(h("x-access-token").as_deref(), Some(c.dora.as_str()));
        assert_eq!(h("x-request-id").as_deref(), r.header("x-request-id"));
        assert_eq!(seen.body["OriginalOrderNum"], "WO 7");
        assert_eq!(seen.body["TimeConstraints"], booking()["TimeConstraints"]);

        // Recorded: the history lists it with the endpoint's host.
        let list = app.list_followups(&c.dora, "WO 7").await.expect(200);
        let items = list.body["Followups"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{}", list.body);
        assert_eq!(items[0]["OrderNum"], "FU-9");
        assert_eq!(items[0]["Scheduler"], "passthrough");
        // Host and port, as error messages name it.
        assert_eq!(items[0]["EndpointHost"], recv.host());
        assert_eq!(items[0]["UserName"], "dora");
        assert_eq!(items[0]["Slot"]["Start"], "2030-12-02T13:00:00.000Z");

        // Appointment search: 200 relayed as it came.
        recv.set(Mode::Json(200, slots_answer()));
        let r = app.open_slots(&c.dora, &search_body()).await.expect(200);
        assert_eq!(r.body, slots_answer());
        assert_eq!(recv.last().path, "/appointments/open");
        assert_eq!(
            recv.last().body["TimeConstraints"],
            search_body()["TimeConstraints"]
        );

        // 401 and 500 come back unchanged, and a refused booking is not recorded.
        for (status, body) in [
            (401, json!({"message": "invalid logon", "code": 17})),
            (500, json!({"error": "scheduler database down"})),
        ] {
            recv.set(Mode::Json(status, body.clone()));
            let r = app.open_slots(&c.dora, &search_body()).await.expect(status);
            assert_eq!(r.body, body);
            let r = app
                .book_followup(&c.dora, "WO-2", &booking())
                .await
                .expect(status);
            assert_eq!(r.body, body);
        }
        // ... so a retry after the refusals books.
        let calls = recv.hits();
        recv.set(Mode::Json(200, booked("FU-10")));
        app.book_followup(&c.dora, "WO-2", &booking())
            .await
            .expect(200);
        assert_eq!(recv.hits(), calls + 1);
        let list = app.list_followups(&c.dora, "WO-2").await.expect(200);
        assert_eq!(list.body["Followups"].as_array().unwrap().len(), 1);
        // Another status with a JSON body is relayed too.
        recv.set(Mode::Json(429, json!({"message": "slow down"})));
        let r = app.open_slots(&c.dora, &search_body()).await.expect(429);
        assert_eq!(r.body, json!({"message": "slow down"}));
    }
);

both_backends!(
    the_third_party_gets_the_whole_job_as_the_app_sent_it_and_its_answer_back_byte_for_byte,
    |app| async move {
        let app = private_ok(app).await;
        const ANSWER: &str =
            r#"{ "Price": 1.50, "OrderNum": "FU-77", "OrderedParts": [], "z": 1, "a": 2 }"#;
        let recv = Receiver::start(Mode::Raw(200, "application/vnd.crm+json", ANSWER)).await;
        let c = cast(&app, &recv.url("/open"), &recv.url("/wo/{0}/followup")).await;
        let mut original = followable_order("WO-9", "alice");
        original["Account"] = json!({"AccountNum": "A-9", "Name": "Lyon Bakery"});
        original["Assets"] = json!([{"AssetNum": "OVEN-1"}]);
        app.put_order(&c.dora, "WO-9", &original).await.expect(201);

        // Only the window, a part with the documented "Qty:" spelling, and a property of the
        // company's own: sent as written, in the app's own bytes.
        let sent = r#"{"TimeConstraints": [{"Type": "1001", "Period": {"Start": "2030-12-02T13:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}}],
            "RequiredParts": [{"ProdNum": "P-1", "Qty:": 1.50}], "X-Crm": {"b": 1, "a": 2}}"#;
        let post = || {
            let req = app
                .client
                .post(format!("{}{}/WO-9/Followup", app.address, helpers::WO))
                .header("x-access-token", &c.dora)
                .header("content-type", "application/json")
                .body(sent);
            async move {
                let resp = req.send().await.unwrap();
                let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
                let replayed = resp.headers().contains_key("idempotent-replayed");
                (
                    resp.status().as_u16(),
                    ct,
                    replayed,
                    resp.text().await.unwrap(),
                )
            }
        };
        // The third party's answer comes back as it sent it: bytes and content type.
        let (status, ct, replayed, text) = post().await;
        assert_eq!((status, text.as_str(), replayed), (200, ANSWER, false));
        assert_eq!(ct, "application/vnd.crm+json");
        let seen = recv.last();
        let raw = String::from_utf8(seen.raw.to_vec()).unwrap();
        assert!(
            raw.starts_with(sent.trim_end_matches('}')),
            "the app's bytes were not sent as written: {raw}"
        );
        assert!(raw.contains(r#""Qty:": 1.50"#), "{raw}");
        // What the app left out comes from the original order.
        assert_eq!(seen.body["OriginalOrderNum"], "WO-9");
        assert_eq!(seen.body["OrderType"], "REPAIR");
        assert_eq!(seen.body["UserName"], "alice");
        assert_eq!(seen.body["Account"], original["Account"]);
        assert_eq!(seen.body["Location"], original["Location"]);
        assert_eq!(seen.body["Assets"], original["Assets"]);
        assert_eq!(seen.body["X-Crm"], json!({"b": 1, "a": 2}));
        // A retry is replayed from the record, the same bytes, without calling again.
        let (status, _, replayed, text) = post().await;
        assert_eq!((status, text.as_str(), replayed), (200, ANSWER, true));
        assert_eq!(recv.hits(), 1, "the replay called the third party");
    }
);

both_backends!(
    a_booking_that_timed_out_is_sent_again_with_the_same_key_and_recorded_once,
    |app| async move {
        let app = private_ok(app).await;
        // The third party books, but answers after Revisit's 400 ms deadline.
        let recv = Receiver::start(Mode::Slow(
            Duration::from_millis(1200),
            200,
            booked("FU-SLOW"),
        ))
        .await;
        let c = cast(&app, &recv.url("/open"), &recv.url("/wo/{0}/followup")).await;
        configure(
            &app,
            &c.admin,
            &recv.url("/open"),
            &recv.url("/wo/{0}/followup"),
            Some(400),
        )
        .await;
        let r = app
            .book_followup_with_key(&c.dora, "WO-1", &booking(), "app-key-1")
            .await;
        assert_error(&r, 504);
        // A retry while the first is known to be under way would wait; this one comes after its
        // outcome became unknown, and the third party, holding that key, answers its booking.
        recv.set(Mode::Json(200, booked("FU-SLOW")));
        let r = app
            .book_followup_with_key(&c.dora, "WO-1", &booking(), "app-key-1")
            .await
            .expect(200);
        assert_eq!(r.body["OrderNum"], "FU-SLOW");
        let keys: Vec<String> = recv
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.headers["idempotency-key"].to_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["app-key-1", "app-key-1"]);
        let list = app.list_followups(&c.dora, "WO-1").await.expect(200);
        let items = list.body["Followups"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{}", list.body);
        assert_eq!(items[0]["OrderNum"], "FU-SLOW");

        // Without a key from the app, Revisit's own key is just as stable across the retry.
        recv.set(Mode::Slow(
            Duration::from_millis(1200),
            200,
            booked("FU-SLOW-2"),
        ));
        let r = app.book_followup(&c.dora, "WO-2", &booking()).await;
        assert_error(&r, 504);
        // Another booking for WO-2 is refused while that outcome is unknown...
        let mut other = booking();
        other["Notes"] = json!("another request");
        let r = app.book_followup(&c.dora, "WO-2", &other).await;
        assert_error(&r, 409);
        assert_eq!(r.body["type"], "urn:revisit:error:followup-outcome-unknown");
        // ...and the same request completes it.
        recv.set(Mode::Json(200, booked("FU-SLOW-2")));
        app.book_followup(&c.dora, "WO-2", &booking())
            .await
            .expect(200);
        let seen = recv.seen.lock().unwrap().clone();
        let derived: Vec<&str> = seen[2..]
            .iter()
            .map(|s| s.headers["idempotency-key"].to_str().unwrap())
            .collect();
        assert_eq!(derived.len(), 2, "{derived:?}");
        assert_eq!(derived[0], derived[1]);
        assert_ne!(derived[0], "app-key-1");
        let list = app.list_followups(&c.dora, "WO-2").await.expect(200);
        assert_eq!(list.body["Followups"].as_array().unwrap().len(), 1);
    }
);

both_backends!(
    a_booking_in_flight_is_answered_409_with_the_real_wait_in_retry_after,
    |app| async move {
        let app = private_ok(app).await;
        let recv =
            Receiver::start(Mode::Slow(Duration::from_millis(1500), 200, booked("FU-W"))).await;
        let c = cast(&app, &recv.url("/open"), &recv.url("/wo/{0}/followup")).await;
        configure(
            &app,
            &c.admin,
            &recv.url("/open"),
            &recv.url("/wo/{0}/followup"),
            Some(3000),
        )
        .await;
        let first = {
            let (client, url, token) = (
                app.client.clone(),
                format!("{}{}/WO-1/Followup", app.address, helpers::WO),
                c.dora.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("x-access-token", token)
                    .header("idempotency-key", "in-flight-key")
                    .json(&booking())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        };
        while recv.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = app
            .book_followup_with_key(&c.dora, "WO-1", &booking(), "in-flight-key")
            .await;
        assert_error(&r, 409);
        assert_eq!(r.body["type"], "urn:revisit:error:request-in-flight");
        // The call may take its 3 s deadline and 5 s of margin: the wait is that, not "a few
        // seconds".
        let wait: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((6..=8).contains(&wait), "Retry-After {wait}");
        assert_eq!(first.await.unwrap(), 200);
        assert_eq!(recv.hits(), 1);
    }
);

// ---------------------------------------------------------------------------------------------
// Failures

both_backends!(
    misbehaving_third_parties_become_error_objects_and_the_server_keeps_serving,
    |app| async move {
        let app = private_ok(app).await;
        let recv = Receiver::start(Mode::Hang).await;
        let other = Receiver::start(Mode::Json(200, booked("NEVER"))).await;
        let c = cast(&app, &recv.url("/open"), &recv.url("/wo/{0}/followup")).await;
        configure(
            &app,
            &c.admin,
            &recv.url("/open"),
            &recv.url("/wo/{0}/followup"),
            Some(500),
        )
        .await;
        let host = recv.host();

        // A hanging scheduler: 504 within the entity's 500 ms plus 1 s, and meanwhile the server
        // answers other requests promptly.
        let started = Instant::now();
        let hanging = {
            let (client, url, token) = (
                app.client.clone(),
                format!("{}{}/WO-1/Followup", app.address, helpers::WO),
                c.dora.clone(),
            );
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .header("x-access-token", token)
                    .json(&booking())
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                (status, body, Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        app.request(reqwest::Method::GET, "/healthz", None, None)
            .await
            .expect(200);
        app.get_order(&c.dora, "WO-2").await.expect(200);
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "other requests waited: {:?}",
            t.elapsed()
        );
        let (status, body, done) = hanging.await.unwrap();
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["type"], "urn:revisit:error:upstream-timeout");
        assert!(body["detail"].as_str().unwrap().contains(&host), "{body}");
        let took = done - started;
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
            "{took:?}"
        );

        // The same for an appointment search.
        let t = Instant::now();
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            504,
            "urn:revisit:error:upstream-timeout",
            &host,
            &c.dora,
        );
        assert!(t.elapsed() < Duration::from_millis(1500));

        // HTML where JSON was expected.
        recv.set(Mode::Html);
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-invalid-answer",
            &host,
            &c.dora,
        );
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-invalid-answer",
            &host,
            &c.dora,
        );

        // A 200 that is not the documented object.
        recv.set(Mode::Json(200, json!({"Result": "booked"})));
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-invalid-answer",
            &host,
            &c.dora,
        );
        recv.set(Mode::Json(200, json!({"OrderNum": 12})));
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-invalid-answer",
            &host,
            &c.dora,
        );
        recv.set(Mode::Json(200, json!({"TimeConstraints": {}})));
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-invalid-answer",
            &host,
            &c.dora,
        );
        recv.set(Mode::Json(200, json!([])));
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-invalid-answer",
            &host,
            &c.dora,
        );

        // 5 MiB: over the 1 MiB cap.
        recv.set(Mode::Big);
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-answer-too-large",
            &host,
            &c.dora,
        );
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-answer-too-large",
            &host,
            &c.dora,
        );

        // A redirect to another loopback server is not followed.
        recv.set(Mode::Redirect(other.url("/elsewhere")));
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-redirect",
            &host,
            &c.dora,
        );
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-redirect",
            &host,
            &c.dora,
        );
        assert_eq!(other.hits(), 0, "the redirect was followed");

        // A connection closed without an answer: 502; a booking is sent once, never retried.
        let (reset_addr, accepted) = resetter().await;
        let reset_host = reset_addr.to_string();
        configure(
            &app,
            &c.admin,
            &format!("http://{reset_addr}/open"),
            &format!("http://{reset_addr}/wo/{{0}}/followup"),
            Some(2000),
        )
        .await;
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-unreachable",
            &reset_host,
            &c.dora,
        );
        assert_eq!(*accepted.lock().unwrap(), 1, "a booking was sent twice");
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-unreachable",
            &reset_host,
            &c.dora,
        );

        // Nothing listening: refused, 502.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        configure(
            &app,
            &c.admin,
            &format!("http://{closed}/open"),
            &format!("http://{closed}/wo/{{0}}/followup"),
            None,
        )
        .await;
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-unreachable",
            &closed.to_string(),
            &c.dora,
        );
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-unreachable",
            &closed.to_string(),
            &c.dora,
        );

        // None of these failed bookings was recorded, and the order can still be booked.
        let list = app.list_followups(&c.dora, "WO-1").await.expect(200);
        assert_eq!(list.body["Followups"], json!([]));
        let good = Receiver::start(Mode::Json(200, booked("FU-1"))).await;
        configure(
            &app,
            &c.admin,
            &good.url("/open"),
            &good.url("/wo/{0}/followup"),
            None,
        )
        .await;
        app.book_followup(&c.dora, "WO-1", &booking())
            .await
            .expect(200);
    }
);

// ---------------------------------------------------------------------------------------------
// Circuit breaker

both_backends!(
    the_circuit_opens_after_five_failures_fails_fast_and_recovers_after_the_cooldown,
    |app| async move {
        let app = with_outbound(app, |o| {
            o.allow_private_networks = true;
            o.breaker_cooldown = Duration::from_millis(1500);
        })
        .await;
        let recv = Receiver::start(Mode::Html).await;
        let c = cast(&app, &recv.url("/open"), &recv.url("/wo/{0}/followup")).await;
        // Another entity uses the same scheduler host; its circuit is its own.
        let globex_admin = app.user("globex", "gil", Role::Admin).await.token;
        let gus = app.user("globex", "gus", Role::Dispatcher).await.token;
        configure(
            &app,
            &globex_admin,
            &recv.url("/open"),
            &recv.url("/wo/{0}/followup"),
            None,
        )
        .await;

        for i in 0..5 {
            let r = app.open_slots(&c.dora, &search_body()).await;
            assert_eq!(r.status.as_u16(), 502, "call {i}: {}", r.body);
        }
        assert_eq!(recv.hits(), 5);
        let t = Instant::now();
        let r = app.open_slots(&c.dora, &search_body()).await;
        assert_gateway_error(
            &r,
            503,
            "urn:revisit:error:upstream-circuit-open",
            &recv.host(),
            &c.dora,
        );
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        assert!(t.elapsed() < Duration::from_millis(500));
        assert_eq!(
            recv.hits(),
            5,
            "a call reached the scheduler through an open circuit"
        );
        // Bookings have a circuit of their own, still closed: failing searches do not stop them.
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_gateway_error(
            &r,
            502,
            "urn:revisit:error:upstream-invalid-answer",
            &recv.host(),
            &c.dora,
        );
        assert_eq!(recv.hits(), 6);
        // The failed booking is not on record.
        assert_eq!(
            app.list_followups(&c.dora, "WO-1").await.expect(200).body["Followups"],
            json!([])
        );

        // globex is not affected.
        recv.set(Mode::Json(200, slots_answer()));
        app.open_slots(&gus, &search_body()).await.expect(200);
        assert_eq!(recv.hits(), 7);

        // The state is visible in the metrics, per interface.
        let m = app
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await
            .expect(200);
        let text = m.body.as_str().unwrap_or_default().to_string();
        let line = |interface: &str| {
            format!(
                "revisit_outbound_circuit_state{{entity=\"acme\",host=\"{}\",interface=\"{interface}\"}} 1",
                recv.host()
            )
        };
        assert!(
            text.contains(&line("openslots")),
            "{} not in\n{text}",
            line("openslots")
        );
        assert!(
            !text.contains(&line("followup")),
            "{} in\n{text}",
            line("followup")
        );

        // After the cool-down one probe goes through; its success closes the circuit.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        app.open_slots(&c.dora, &search_body()).await.expect(200);
        assert_eq!(recv.hits(), 8);
        recv.set(Mode::Json(200, booked("FU-B")));
        app.book_followup(&c.dora, "WO-1", &booking())
            .await
            .expect(200);
        assert_eq!(recv.hits(), 9);
    }
);

// ---------------------------------------------------------------------------------------------
// SSRF

/// URIs of the SSRF table: `{port}` is the loopback receiver's port.
const LOOPBACK_FORMS: [&str; 7] = [
    "http://127.0.0.1:{port}/open",
    "http://2130706433:{port}/open",
    "http://0x7f000001:{port}/open",
    "http://0177.0.0.1:{port}/open",
    "http://[::ffff:127.0.0.1]:{port}/open",
    "http://[::1]:{port}/open",
    "http://localhost:{port}/open",
];

/// Non-loopback targets: refused before any connection (they may not even exist here).
const OTHER_BLOCKED: [(&str, &str); 5] = [
    ("http://10.0.0.1/open", "10.0.0.1"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
    ("http://100.64.0.1:8080/open", "100.64.0.1:8080"),
    ("http://224.0.0.1/open", "224.0.0.1"),
    ("http://0.0.0.0:9/open", "0.0.0.0:9"),
];

both_backends!(
    endpoints_on_non_public_addresses_are_refused_unless_private_networks_are_allowed,
    |app| async move {
        // Listening on IPv6 and IPv4 (dual stack), so every loopback form can reach it.
        let recv = Receiver::start_on("[::]:0", Mode::Json(200, slots_answer())).await;
        let port = recv.addr.port();
        let c = cast(&app, "builtin:", "builtin:").await;
        let forms: Vec<String> = LOOPBACK_FORMS
            .iter()
            .map(|f| f.replace("{port}", &port.to_string()))
            .chain(OTHER_BLOCKED.iter().map(|(u, _)| u.to_string()))
            .collect();
        // Refused when stored, naming the setting that allows them.
        for uri in &forms {
            for (prop, value) in [
                ("SearchAppts", uri.clone()),
                (
                    "BookJob",
                    format!("{}/wo/{{0}}/followup", uri.trim_end_matches("/open")),
                ),
            ] {
                let r = app
                    .post_config(&c.admin, &json!({"RestApi": {prop: value}}))
                    .await;
                helpers::assert_invalid(&r, 400, &format!("$.RestApi.{prop}"));
                assert!(
                    r.body
                        .to_string()
                        .contains("REVISIT_OUTBOUND_ALLOW_PRIVATE_NETWORKS"),
                    "{value}: {}",
                    r.body
                );
            }
        }
        // Nothing was stored.
        let r = app.get_config(&c.admin).await.expect(200);
        assert_eq!(r.body["RestApi"]["SearchAppts"], "builtin:", "{}", r.body);

        // And refused when called: a configuration stored before (or a name that resolves to a
        // private address only later) is checked again at every call, before any connection.
        let store_config = |search: String, book: String| {
            let store = app.state.store.clone();
            async move {
                store
                    .update_config(
                        &revisit::domain::EntityId::parse("acme").unwrap(),
                        Box::new(move |mut m| {
                            revisit::domain::sysconfig::merge(
                                &mut m,
                                json!({"RestApi": {"SearchAppts": search, "BookJob": book}})
                                    .as_object()
                                    .unwrap()
                                    .clone(),
                            );
                            Ok(m)
                        }),
                    )
                    .await
                    .expect("stored");
            }
        };
        for form in LOOPBACK_FORMS {
            let uri = form.replace("{port}", &port.to_string());
            store_config(uri.clone(), recv.url("/wo/{0}/followup")).await;
            let r = app.open_slots(&c.dora, &search_body()).await;
            assert_error(&r, 502);
            assert_eq!(
                r.body["type"], "urn:revisit:error:upstream-address-refused",
                "{uri}: {}",
                r.body
            );
            assert!(
                r.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&port.to_string()),
                "{uri}: {}",
                r.body
            );
        }
        assert_eq!(recv.hits(), 0, "a refused endpoint was called");
        for (uri, host) in OTHER_BLOCKED {
            store_config(uri.to_string(), recv.url("/wo/{0}/followup")).await;
            let t = Instant::now();
            let r = app.open_slots(&c.dora, &search_body()).await;
            // Refused without trying to connect: far faster than the 2 s connect timeout.
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{uri} took {:?}",
                t.elapsed()
            );
            assert_gateway_error(
                &r,
                502,
                "urn:revisit:error:upstream-address-refused",
                host,
                &c.dora,
            );
        }
        // Bookings are checked the same way.
        let uri = format!("http://2130706433:{port}/wo/{{0}}/followup");
        store_config(recv.url("/open"), uri).await;
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await;
        assert_eq!(
            r.body["type"], "urn:revisit:error:upstream-address-refused",
            "{}",
            r.body
        );
        assert_eq!(recv.hits(), 0);

        // Allowed: the same loopback forms reach the receiver.
        let app = with_outbound(app, |o| o.allow_private_networks = true).await;
        for (i, form) in LOOPBACK_FORMS.iter().enumerate() {
            let uri = form.replace("{port}", &port.to_string());
            configure(&app, &c.admin, &uri, &recv.url("/wo/{0}/followup"), None).await;
            let r = app.open_slots(&c.dora, &search_body()).await;
            assert_eq!(r.status.as_u16(), 200, "{uri}: {}", r.body);
            assert_eq!(recv.hits(), i + 1, "{uri}");
        }
    }
);

// ---------------------------------------------------------------------------------------------
// Idempotent recording

both_backends!(multi_thread
    concurrent_pass_through_bookings_with_one_key_call_the_third_party_once,
    |app| async move {
        let app = private_ok(app).await;
        let recv = Receiver::start(Mode::Slow(Duration::from_millis(400), 200, booked("FU-1"))).await;
        let c = cast(&app, &recv.url("/open"), &recv.url("/wo/{0}/followup")).await;
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (app, token) = (app.clone(), c.dora.clone());
            tasks.push(tokio::spawn(async move {
                app.book_followup_with_key(&token, "WO-1", &booking(), "key-1").await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let r = t.await.unwrap();
            match r.status.as_u16() {
                200 => {
                    assert_eq!(r.body, booked("FU-1"));
                    ok += 1;
                }
                409 => assert_eq!(r.body["type"], "urn:revisit:error:request-in-flight", "{}", r.body),
                s => panic!("unexpected {s}: {}", r.body),
            }
        }
        assert!(ok >= 1);
        assert_eq!(recv.hits(), 1, "the third party was called more than once");
        // Replays, with the key and without (the natural dedupe), never call out again.
        let r = app.book_followup_with_key(&c.dora, "WO-1", &booking(), "key-1").await.expect(200);
        assert_eq!(r.body, booked("FU-1"));
        assert_eq!(r.header("idempotent-replayed"), Some("true"));
        let r = app.book_followup(&c.dora, "WO-1", &booking()).await.expect(200);
        assert_eq!(r.body, booked("FU-1"));
        assert_eq!(recv.hits(), 1);
        let list = app.list_followups(&c.dora, "WO-1").await.expect(200);
        assert_eq!(list.body["Followups"].as_array().unwrap().len(), 1);
    }
);

// ---------------------------------------------------------------------------------------------
// Revisit as another Revisit's third-party scheduler

both_backends!(
    a_revisit_can_use_another_revisits_built_in_interfaces_as_its_scheduler,
    |app| async move {
        use crate::helpers::{book_body, closed_order, fleet, offered};
        // B: the scheduling Revisit, with the built-in scheduler set up for acme. It shares the
        // token key with A (as a platform and its scheduler do) and knows the same users.
        let backend = if app
            .state
            .config
            .database_url
            .expose()
            .starts_with("sqlite:")
        {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let b = helpers::spawn_app(backend).await.expect("a second app");
        let f = fleet(&b).await;
        b.put_order(&f.dispatcher, "WO-7", &closed_order("WO-7", "tom"))
            .await
            .expect(201);

        // A: the same entity's users and order, configured to pass through to B's interfaces.
        let a = private_ok(app).await;
        let admin = a.user("acme", "ada", Role::Admin).await.token;
        let dora = a.user("acme", "dora", Role::Dispatcher).await.token;
        let tom = a.user("acme", "tom", Role::Technician).await.token;
        a.put_order(&dora, "WO-7", &closed_order("WO-7", "tom"))
            .await
            .expect(201);
        let b_host = b.address.trim_start_matches("http://").to_string();
        configure(
            &a,
            &admin,
            &format!("{}/scheduling/v1/openslots", b.address),
            &format!("{}/scheduling/v1/workorders/{{0}}/followup", b.address),
            None,
        )
        .await;

        // The technician searches and books on A; B's built-in scheduler answers.
        let r = a
            .open_slots(&tom, &json!({"OriginalOrderNum": "WO-7"}))
            .await
            .expect(200);
        let windows = offered(&r.body["TimeConstraints"]);
        assert!(!windows.is_empty(), "{}", r.body);
        let r = a
            .book_followup(&tom, "WO-7", &book_body(windows[0]))
            .await
            .expect(200);
        let num = r.body["OrderNum"]
            .as_str()
            .expect("an OrderNum")
            .to_string();

        // B holds the new order, booked by its built-in scheduler for tom.
        let order = b.get_order(&f.dispatcher, &num).await.expect(200);
        assert_eq!(order.body["OriginalOrderNum"], "WO-7");
        assert_eq!(order.body["UserName"], "tom");
        let on_b = b.list_followups(&f.dispatcher, "WO-7").await.expect(200);
        assert_eq!(on_b.body["Followups"][0]["Scheduler"], "builtin");

        // A recorded the pass-through booking with B's answer.
        let on_a = a.list_followups(&dora, "WO-7").await.expect(200);
        let items = on_a.body["Followups"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}", on_a.body);
        assert_eq!(items[0]["OrderNum"], num.as_str());
        assert_eq!(items[0]["Scheduler"], "passthrough");
        assert_eq!(items[0]["EndpointHost"], b_host.as_str());
        assert_eq!(items[0]["UserName"], "tom");
        // A retry on A replays without calling B again (B would say "already booked" otherwise).
        let again = a
            .book_followup(&tom, "WO-7", &book_body(windows[0]))
            .await
            .expect(200);
        assert_eq!(again.body["OrderNum"], num.as_str());
    }
);

both_backends!(
    the_built_in_interfaces_check_like_the_seiapi_endpoints_and_ignore_the_configured_scheduler,
    |app| async move {
        use crate::helpers::{SCHED, book_body, closed_order, fleet, offered};
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-8", &closed_order("WO-8", "tom"))
            .await
            .expect(201);
        // The entity passes through to a scheduler that cannot be reached (a name that never
        // resolves): the interfaces do not care.
        app.post_config(&f.admin, &json!({"RestApi": {"SearchAppts": "http://scheduler.invalid/x", "BookJob": "http://scheduler.invalid/{0}"}}))
            .await
            .expect(200);
        let post = |path: String, token: Option<String>, body: Value| {
            let app = &app;
            async move {
                app.request(reqwest::Method::POST, &path, token.as_deref(), Some(&body))
                    .await
            }
        };
        // A token is required.
        let r = post(
            format!("{SCHED}/openslots"),
            None,
            json!({"OriginalOrderNum": "WO-8"}),
        )
        .await;
        assert_error(&r, 401);
        let r = post(
            format!("{SCHED}/openslots"),
            Some(f.tech.token.clone()),
            json!({"OriginalOrderNum": "WO-8"}),
        )
        .await
        .expect(200);
        let windows = offered(&r.body["TimeConstraints"]);
        // Same checks: an unknown original is 404, a booking without a slot 400.
        let r = post(
            format!("{SCHED}/workorders/NOPE/followup"),
            Some(f.tech.token.clone()),
            book_body(windows[0]),
        )
        .await;
        assert_error(&r, 404);
        let r = post(
            format!("{SCHED}/workorders/WO-8/followup"),
            Some(f.tech.token.clone()),
            json!({}),
        )
        .await;
        assert_error(&r, 400);
        let r = post(
            format!("{SCHED}/workorders/WO-8/followup"),
            Some(f.tech.token.clone()),
            book_body(windows[0]),
        )
        .await
        .expect(200);
        let num = r.body["OrderNum"].as_str().unwrap().to_string();
        app.get_order(&f.dispatcher, &num).await.expect(200);
        let list = app.list_followups(&f.dispatcher, "WO-8").await.expect(200);
        assert_eq!(list.body["Followups"][0]["Scheduler"], "builtin");
    }
);

// ---------------------------------------------------------------------------------------------
// Metrics

both_backends!(
    metrics_count_requests_by_route_template_and_outbound_calls_by_outcome,
    |app| async move {
        let app = private_ok(app).await;
        let recv = Receiver::start(Mode::Json(200, slots_answer())).await;
        let c = cast(&app, &recv.url("/open"), &recv.url("/wo/{0}/followup")).await;
        app.open_slots(&c.dora, &search_body()).await.expect(200);
        app.get_order(&c.dora, "WO-1").await.expect(200);
        app.get_order(&c.dora, "WO-2").await.expect(200);
        let r = app
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await
            .expect(200);
        assert!(
            r.header("content-type").unwrap().contains("text"),
            "{:?}",
            r.header("content-type")
        );
        let text = r.body.as_str().unwrap().to_string();
        for needle in [
            "revisit_http_requests_total{method=\"GET\",route=\"/seiapi/v3/trans/WorkOrder/{num}\",status=\"200\"} 2",
            "revisit_http_requests_total{method=\"POST\",route=\"/seiapi/v3/trans/Appointments/OpenSlots\",status=\"200\"} 1",
            "revisit_http_request_duration_seconds_bucket{",
            &format!(
                "revisit_outbound_calls_total{{entity=\"acme\",host=\"{}\",interface=\"openslots\",outcome=\"ok\"}} 1",
                recv.host()
            ),
            "revisit_outbound_call_duration_seconds_count{",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
        assert!(!text.contains("WO-1"), "a raw path in the metrics");
    }
);
