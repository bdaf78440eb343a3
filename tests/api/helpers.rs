//! The test harness: each test gets the real app on a loopback port with its own database, and a
//! typed client with one method per endpoint (zero-to-production's `spawn_app`).

use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};
use reqwest::{
    Method, StatusCode,
    header::{CONTENT_TYPE, HeaderMap},
};
use revisit::domain::time;
use revisit::{
    app::AppState,
    config::{Config, Secret},
    domain::{EntityId, Role, UserName},
};
use serde_json::{Value, json};
use sqlx::Connection;

/// The key every test app signs its tokens with; tests forge tokens with it too.
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod $name { sqlite(), postgres() }` so every test runs on both backends. The
/// PostgreSQL variant passes without doing anything when `REVISIT_TEST_POSTGRES_URL` is unset.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                $body.await
            }

            #[tokio::test]
            async fn postgres() {
                let Some($app) =
                    $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await
                else {
                    return;
                };
                $body.await
            }
        }
    };
    // The same on a multi-threaded runtime, for tests of concurrent requests: the server and the
    // clients then really run in parallel.
    (multi_thread $name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                $body.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some($app) =
                    $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await
                else {
                    return;
                };
                $body.await
            }
        }
    };
}

/// What the server answered; `body` is `Null` when empty and a string when not JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// Asserts an error answer: the status, and the platform's error object (`type`, `title`,
/// `status` equal to the HTTP status, `detail`) as JSON, with an `x-request-id` header.
#[track_caller]
pub fn assert_error(resp: &Resp, status: u16) {
    assert_eq!(
        resp.status.as_u16(),
        status,
        "unexpected status; body: {}",
        resp.body
    );
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "error content type is {ct:?}"
    );
    let b = &resp.body;
    assert!(b["type"].is_string(), "no type in {b}");
    assert!(b["title"].is_string(), "no title in {b}");
    assert!(b["detail"].is_string(), "no detail in {b}");
    assert_eq!(b["status"], status, "status member of {b}");
    assert!(
        resp.header("x-request-id").is_some_and(|v| !v.is_empty()),
        "no x-request-id on an error"
    );
}

/// The JSON paths named by an error's `invalidParams`.
pub fn invalid_paths(resp: &Resp) -> Vec<String> {
    resp.body["invalidParams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts an error answer of `status` whose `invalidParams` name `path`.
#[track_caller]
pub fn assert_invalid(resp: &Resp, status: u16, path: &str) {
    assert_error(resp, status);
    let paths = invalid_paths(resp);
    assert!(
        paths.iter().any(|p| p == path),
        "{path} not among {paths:?}; body: {}",
        resp.body
    );
}

/// A seeded user with a token from `POST /createjwt`.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub token: String,
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    _guard: DbGuard,
}

/// Removes the test's database when the test ends, panicking or not.
enum DbGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, db: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        let DbGuard::Postgres { admin_url, db } = self else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), db.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own
        // small runtime can.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {db}: {e}"),
            Err(_) => eprintln!("could not drop test database {db}: the thread panicked"),
        }
    }
}

/// Starts the app on 127.0.0.1:0 with a fresh database; `None` (test skipped) for PostgreSQL when
/// `REVISIT_TEST_POSTGRES_URL` is not set.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// [`spawn_app`] with settings changed by `tweak` before the app is built.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let (database_url, guard) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temp dir");
            let url = format!("sqlite:{}", dir.path().join("revisit.db").display());
            (url, DbGuard::Sqlite(dir))
        }
        Backend::Postgres => {
            let Ok(admin_url) = std::env::var("REVISIT_TEST_POSTGRES_URL") else {
                eprintln!("skipped: REVISIT_TEST_POSTGRES_URL is not set");
                return None;
            };
            let db = format!("revisit_t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to REVISIT_TEST_POSTGRES_URL");
            sqlx::query(&format!("CREATE DATABASE \"{db}\""))
                .execute(&mut conn)
                .await
                .expect("create the test database");
            conn.close().await.ok();
            let mut url = url::Url::parse(&admin_url).expect("REVISIT_TEST_POSTGRES_URL is a URL");
            url.set_path(&db);
            (url.to_string(), DbGuard::Postgres { admin_url, db })
        }
    };
    let mut config = Config::load(None, vec![]).expect("default configuration");
    config.jwt_secret = Some(Secret::new(TEST_SECRET));
    config.database_url = Secret::new(database_url);
    // Tests send requests one at a time; a small pool keeps many parallel tests within
    // PostgreSQL's connection limit.
    config.database_max_connections = 4;
    // Re-optimisation in the background would move visits under the tests that check where a
    // booking put them; the tests of re-optimisation run it on demand or turn it on.
    config.reoptimize.after_booking = false;
    config.reoptimize.nightly_at = None;
    tweak(&mut config);
    let state = AppState::build(config).await.expect("build the app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let address = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(revisit::app::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    // reqwest is built with `rustls-no-provider`: the process must choose a crypto provider
    // before any client is built (the server installs the same one; the first install wins).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    Some(TestApp {
        address,
        state,
        client,
        _guard: guard,
    })
}

pub const WO: &str = "/seiapi/v3/trans/WorkOrder";

impl TestApp {
    /// Creates `name` in `entity` directly in the store (password `<name>-pw`) and logs in.
    pub async fn user(&self, entity: &str, name: &str, role: Role) -> User {
        let entity = EntityId::parse(entity).expect("entity id");
        let user = UserName::parse(name).expect("user name");
        let password = format!("{name}-pw");
        let pw = password.clone();
        let hash = tokio::task::spawn_blocking(move || revisit::auth::password::hash(&pw))
            .await
            .expect("hashing task")
            .expect("hash");
        self.state
            .store
            .ensure_entity(&entity)
            .await
            .expect("entity");
        self.state
            .store
            .add_user(&entity, &user, role, &hash)
            .await
            .expect("add user");
        let token = self.login(name, &password).await;
        User {
            name: name.to_string(),
            password,
            token,
        }
    }

    /// Any request; `body` is sent as JSON. Every response must carry `x-request-id`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            req = req.header("x-access-token", t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    /// A request with a raw body and content type, for bad-input tests.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header(CONTENT_TYPE, content_type)
            .body(body);
        if let Some(t) = token {
            req = req.header("x-access-token", t);
        }
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("the request was answered");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("a response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        assert!(
            headers.get("x-request-id").is_some_and(|v| !v.is_empty()),
            "a {status} response without x-request-id"
        );
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn create_jwt(&self, username: &str, password: &str) -> Resp {
        let body = serde_json::json!({"username": username, "password": password});
        self.request(Method::POST, "/createjwt", None, Some(&body))
            .await
    }

    /// Logs in and returns the token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self.create_jwt(username, password).await.expect(200);
        r.body["token"]
            .as_str()
            .expect("a token in the answer")
            .to_string()
    }

    pub async fn get_order(&self, token: &str, num: &str) -> Resp {
        self.request(Method::GET, &format!("{WO}/{num}"), Some(token), None)
            .await
    }

    pub async fn put_order(&self, token: &str, num: &str, body: &Value) -> Resp {
        self.request(Method::PUT, &format!("{WO}/{num}"), Some(token), Some(body))
            .await
    }

    pub async fn post_order(&self, token: &str, num: &str, body: &Value) -> Resp {
        self.request(
            Method::POST,
            &format!("{WO}/{num}"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn patch_order(&self, token: &str, num: &str, body: &Value) -> Resp {
        self.request(
            Method::PATCH,
            &format!("{WO}/{num}"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn delete_order(&self, token: &str, num: &str) -> Resp {
        self.request(Method::DELETE, &format!("{WO}/{num}"), Some(token), None)
            .await
    }

    /// `GET /seiapi/v3/trans/WorkOrders` with the given query parameters.
    pub async fn list_orders(&self, token: &str, query: &[(&str, &str)]) -> Resp {
        let mut url = url::Url::parse(&format!("{}/seiapi/v3/trans/WorkOrders", self.address))
            .expect("a URL");
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let req = self.client.get(url).header("x-access-token", token);
        self.send(req).await
    }

    /// The order numbers of a list answer, in order.
    pub async fn list_nums(&self, token: &str, query: &[(&str, &str)]) -> Vec<String> {
        let r = self.list_orders(token, query).await.expect(200);
        r.body["WorkOrders"]
            .as_array()
            .expect("WorkOrders array")
            .iter()
            .map(|o| o["OrderNum"].as_str().expect("OrderNum").to_string())
            .collect()
    }

    pub async fn get_config(&self, token: &str) -> Resp {
        self.request(
            Method::GET,
            "/seiapi/v3/SysConfig/mobility",
            Some(token),
            None,
        )
        .await
    }

    pub async fn post_config(&self, token: &str, body: &Value) -> Resp {
        self.request(
            Method::POST,
            "/seiapi/v3/SysConfig/mobility",
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn get_category(&self, token: &str, code: &str) -> Resp {
        self.request(
            Method::GET,
            &format!("/seiapi/v3/trans/SystemCategory/Default/{code}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn put_category(&self, token: &str, code: &str, body: &Value) -> Resp {
        self.request(
            Method::PUT,
            &format!("/seiapi/v3/trans/SystemCategory/Default/{code}"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn open_slots(&self, token: &str, body: &Value) -> Resp {
        self.request(
            Method::POST,
            "/seiapi/v3/trans/Appointments/OpenSlots",
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn book_followup(&self, token: &str, num: &str, body: &Value) -> Resp {
        self.request(
            Method::POST,
            &format!("{WO}/{num}/Followup"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// `POST .../Followup` with an `Idempotency-Key` header.
    pub async fn book_followup_with_key(
        &self,
        token: &str,
        num: &str,
        body: &Value,
        key: &str,
    ) -> Resp {
        let req = self
            .client
            .post(format!("{}{WO}/{num}/Followup", self.address))
            .header("x-access-token", token)
            .header("idempotency-key", key)
            .json(body);
        self.send(req).await
    }

    /// `GET .../Followup`: the follow-ups booked from `num`.
    pub async fn list_followups(&self, token: &str, num: &str) -> Resp {
        self.request(
            Method::GET,
            &format!("{WO}/{num}/Followup"),
            Some(token),
            None,
        )
        .await
    }

    /// `GET /scheduling/v1/{kind}` (kind: workcenters, technicians, ordertypes).
    pub async fn sched_list(&self, token: &str, kind: &str) -> Resp {
        self.request(Method::GET, &format!("{SCHED}/{kind}"), Some(token), None)
            .await
    }

    pub async fn sched_get(&self, token: &str, kind: &str, id: &str) -> Resp {
        self.request(
            Method::GET,
            &format!("{SCHED}/{kind}/{id}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn sched_put(&self, token: &str, kind: &str, id: &str, body: &Value) -> Resp {
        self.request(
            Method::PUT,
            &format!("{SCHED}/{kind}/{id}"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn sched_delete(&self, token: &str, kind: &str, id: &str) -> Resp {
        self.request(
            Method::DELETE,
            &format!("{SCHED}/{kind}/{id}"),
            Some(token),
            None,
        )
        .await
    }
}

pub const SCHED: &str = "/scheduling/v1";

// ---------------------------------------------------------------------------------------------
// A small entity for the built-in scheduler, set up over the admin endpoints. Everything is
// relative to now: the work center offers three windows every day of the week, so no test
// depends on today's weekday, and the expected windows are computed here, independently of the
// scheduler crate, in the work center's time zone.

/// The work center's id, zone and place (Lyon), and its policy.
pub const AREA: &str = "LYON";
pub const TZ: &str = "Europe/Paris";
pub const JOB_LAT: f64 = 45.7640;
pub const JOB_LON: f64 = 4.8357;
pub const WINDOWS: [(&str, &str); 3] = [("08:00", "12:00"), ("12:00", "16:00"), ("16:00", "20:00")];
pub const HORIZON_DAYS: i64 = 7;
pub const LEAD_MINUTES: i64 = 120;
pub const MAX_SLOTS: usize = 10;
pub const WEEK: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

pub fn work_center_body() -> Value {
    let windows: Vec<Value> = WINDOWS
        .iter()
        .map(|(s, e)| json!({"Days": WEEK, "Start": s, "End": e}))
        .collect();
    json!({
        "ServiceAreaID": AREA,
        "Name": "Lyon",
        "TimeZone": TZ,
        "Lat": JOB_LAT,
        "Lon": JOB_LON,
        "Policy": {
            "Windows": windows,
            "HorizonDays": HORIZON_DAYS,
            "MinLeadMinutes": LEAD_MINUTES,
            "MaxSlots": MAX_SLOTS,
        },
    })
}

/// A technician of `AREA` with HVAC level 2, living about 2 km from the jobs, on shift
/// 07:00-21:00 every day.
pub fn technician_body(user: &str) -> Value {
    json!({
        "UserName": user,
        "Name": format!("Technician {user}"),
        "ServiceAreaIDs": [AREA],
        "Skills": [{"Code": "HVAC", "Level": 2}],
        "Home": {"Lat": JOB_LAT + 0.015, "Lon": JOB_LON + 0.01},
        "Shifts": [{"Days": WEEK, "Start": "07:00", "End": "21:00"}],
    })
}

pub fn order_type_body(code: &str, minutes: u32, skill: &str) -> Value {
    json!({
        "OrderType": code,
        "Desc": format!("{code} visit"),
        "DurationMinutes": minutes,
        "Skills": [{"Code": skill, "Level": 1}],
    })
}

/// The entity `acme` with its admin, dispatcher and one technician `tom`, the built-in scheduler
/// configured, the work center, `tom` and the order type `REPAIR` (60 minutes, HVAC) set up.
pub struct Fleet {
    pub admin: String,
    pub dispatcher: String,
    pub tech: User,
}

pub async fn fleet(app: &TestApp) -> Fleet {
    let f = Fleet {
        admin: app.user("acme", "ada", Role::Admin).await.token,
        dispatcher: app.user("acme", "dora", Role::Dispatcher).await.token,
        tech: app.user("acme", "tom", Role::Technician).await,
    };
    app.post_config(
        &f.admin,
        &json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}}),
    )
    .await
    .expect(200);
    app.sched_put(&f.admin, "workcenters", AREA, &work_center_body())
        .await
        .expect(201);
    app.sched_put(&f.admin, "technicians", "tom", &technician_body("tom"))
        .await
        .expect(201);
    app.sched_put(
        &f.admin,
        "ordertypes",
        "REPAIR",
        &order_type_body("REPAIR", 60, "HVAC"),
    )
    .await
    .expect(201);
    f
}

/// The work center's place, as a work order's `Location`.
pub fn location(num: &str) -> Value {
    json!({
        "LocationNum": format!("LOC-{num}"),
        "Name": "Residence",
        "ServiceAreaID": AREA,
        "Address": {"AddrLine1": "1 Place Bellecour", "City": "Lyon",
                    "Lat": format!("{JOB_LAT:.4}"), "Lon": format!("{JOB_LON:.4}")},
    })
}

/// A Closed Incomplete `REPAIR` order of `user` (reason 2001, own rule true), visited an hour ago.
pub fn closed_order(num: &str, user: &str) -> Value {
    let start = Timestamp::now() - SignedDuration::from_hours(1);
    json!({
        "OrderNum": num,
        "OrderType": "REPAIR",
        "OrderStatus": 4097,
        "ReasonCode": "2001",
        "CanScheduleFollowup": true,
        "UserName": user,
        "PlannedStartDate": time::format(start),
        "PlannedEndDate": time::format(start + SignedDuration::from_hours(1)),
        "Account": {"AccountNum": format!("ACCT-{num}"), "AccountType": "1002", "Name": "Mme Dupont"},
        "Location": location(num),
        "Description": "boiler",
    })
}

pub fn tz() -> TimeZone {
    TimeZone::get(TZ).expect("a known zone")
}

/// `hh:mm` local time of the work center, `days` local dates after today.
pub fn local(days: i64, hhmm: &str) -> Timestamp {
    let tz = tz();
    let today = Timestamp::now().to_zoned(tz.clone()).date();
    local_on(today + jiff::Span::new().days(days), hhmm)
}

fn local_on(date: Date, hhmm: &str) -> Timestamp {
    let (h, m) = hhmm.split_once(':').expect("HH:MM");
    date.at(h.parse().expect("hour"), m.parse().expect("minute"), 0, 0)
        .to_zoned(tz())
        .expect("a local time")
        .timestamp()
}

/// A window as (start, end).
pub type Win = (Timestamp, Timestamp);

/// The policy window `i` (0, 1, 2) of the local date `days` after today.
pub fn window(days: i64, i: usize) -> Win {
    (local(days, WINDOWS[i].0), local(days, WINDOWS[i].1))
}

/// Every policy window of the horizon that starts at least the lead time after `now`,
/// chronologically.
pub fn policy_windows(now: Timestamp) -> Vec<Win> {
    let today = now.to_zoned(tz()).date();
    let gate = now + SignedDuration::from_mins(LEAD_MINUTES);
    let mut out = Vec::new();
    for d in 0..HORIZON_DAYS {
        let date = today + jiff::Span::new().days(d);
        for (s, e) in WINDOWS {
            let w = (local_on(date, s), local_on(date, e));
            if w.0 >= gate {
                out.push(w);
            }
        }
    }
    out
}

/// `{"Start": .., "End": ..}` in the wire form.
pub fn period(w: Win) -> Value {
    json!({"Start": time::format(w.0), "End": time::format(w.1)})
}

/// A Book Job body choosing `w`.
pub fn book_body(w: Win) -> Value {
    json!({"TimeConstraints": [{"Type": "1001", "Period": period(w)}]})
}

/// The windows of an OpenSlots answer (or of `Alternatives`), checking each item's shape: type
/// 1001, an ID, a Desc and a Period in the canonical time form.
#[track_caller]
pub fn offered(items: &Value) -> Vec<Win> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("an array of TimeConstraints, not {items}"))
        .iter()
        .map(|tc| {
            assert_eq!(tc["Type"], "1001", "{tc}");
            assert!(tc["ID"].as_str().is_some_and(|s| !s.is_empty()), "{tc}");
            assert!(tc["Desc"].as_str().is_some_and(|s| !s.is_empty()), "{tc}");
            let at = |k: &str| {
                let s = tc["Period"][k].as_str().unwrap_or_default();
                assert!(s.ends_with(".000Z"), "{k} {s:?} is not canonical");
                time::parse(s)
                    .unwrap_or_else(|e| panic!("{k} of {tc}: {e}"))
                    .to_timestamp()
            };
            (at("Start"), at("End"))
        })
        .collect()
}

/// Posts OpenSlots and returns the answer and its windows; `expected(now)` is what the answer
/// must be, judged at the moment before and the moment after the request (a window can cross the
/// lead-time gate in between).
pub async fn open_windows(app: &TestApp, token: &str, body: &Value) -> (Resp, Vec<Win>) {
    let r = app.open_slots(token, body).await.expect(200);
    assert!(r.body["StatusMsg"].is_string(), "{}", r.body);
    let w = offered(&r.body["TimeConstraints"]);
    (r, w)
}

#[track_caller]
pub fn assert_windows_either(got: &[Win], before: Vec<Win>, after: Vec<Win>) {
    assert!(
        got == before || got == after,
        "offered {:?}\nexpected {:?}",
        fmt_wins(got),
        fmt_wins(&before)
    );
}

pub fn fmt_wins(w: &[Win]) -> Vec<String> {
    w.iter()
        .map(|(s, e)| format!("{}..{}", time::format(*s), time::format(*e)))
        .collect()
}

/// The open work orders of `user` that follow up `original`.
pub async fn followups_of(app: &TestApp, token: &str, user: &str, original: &str) -> Vec<Value> {
    let r = app
        .list_orders(token, &[("UserName", user), ("Limit", "500")])
        .await
        .expect(200);
    r.body["WorkOrders"]
        .as_array()
        .expect("WorkOrders")
        .iter()
        .filter(|o| o["OriginalOrderNum"] == original)
        .cloned()
        .collect()
}
