//! The crash guarantee (issue 10): the real `revisit serve`, killed with SIGKILL at seeded random
//! moments of a booking storm and started again each time, on SQLite and on PostgreSQL. Every
//! booking request carries its own `Idempotency-Key`; after the last restart every request that
//! got no answer is sent again with its key, and then the database must hold exactly what was
//! acknowledged: each acknowledged booking once (its order and its follow-up record), nothing
//! else, no original with two follow-ups, no overlapping visits, no claim left pending.
//!
//! The PostgreSQL run is skipped (with a message) when `REVISIT_TEST_POSTGRES_URL` is not set.
//! `CRASH_TEST_SEED` replays a run with another seed (the seed is printed).

mod common;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Server, TestDb};
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use revisit::{
    auth::password,
    domain::{EntityId, Role, UserName, WorkOrderNum, workorder::WorkOrder},
    schedule::builtin::{load_setup, visits_by_tech},
    store::{ListFilter, SchedKind, Store, StoreOptions, VisitQuery},
};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::watch;

const SECRET: &str = "crash-test-secret-0123456789abcdef0123456789";
const ENTITY: &str = "acme";
const TZ: &str = "America/Chicago";
/// Originals to follow up; every fifth gets a second, competing request (another key, another
/// window).
const ORIGINALS: usize = 240;
/// Technicians of the one work center.
const TECHNICIANS: usize = 5;
/// Kills during the storm, each after a seeded random number of answers since the last start.
const KILLS: usize = 8;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;
const DEFAULT_SEED: u64 = 0x00C0_FFEE_0010;

/// Starts the server on a port of its own and waits until it is ready.
async fn start(db_url: &str) -> Server {
    Server::start(db_url, SECRET, &[("REVISIT_DATABASE_MAX_CONNECTIONS", "8")]).await
}

async fn open_store(url: &str) -> Store {
    Store::open(
        url,
        &StoreOptions {
            max_connections: 2,
            statement_timeout: Duration::from_secs(5),
        },
    )
    .await
    .expect("open the store")
}

/// One work center with a window 08:00-12:00 every day, `TECHNICIANS` on shift 08:00-12:30
/// at the work center, 60-minute visits: each window holds a handful of bookings per
/// technician, so the storm books and refuses all along. `ORIGINALS` closed orders to follow up.
async fn seed(url: &str) {
    let store = open_store(url).await;
    let e = EntityId::parse(ENTITY).unwrap();
    store.ensure_entity(&e).await.unwrap();
    let hash = password::hash("dispatcher-pw").unwrap();
    store
        .add_user(
            &e,
            &UserName::parse("disp").unwrap(),
            Role::Dispatcher,
            &hash,
        )
        .await
        .unwrap();
    let all_days = json!(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]);
    let wc = json!({"ServiceAreaID": "N", "Name": "North", "TimeZone": TZ, "Lat": 41.95, "Lon": -87.65,
        "Policy": {"Windows": [{"Days": all_days, "Start": "08:00", "End": "12:00"}],
            "MinLeadMinutes": 0, "HorizonDays": 10, "MaxSlots": 20}});
    store
        .put_sched(&e, SchedKind::WorkCenters, "N", &wc)
        .await
        .unwrap();
    store
        .put_sched(
            &e,
            SchedKind::OrderTypes,
            "STD",
            &json!({"OrderType": "STD", "Desc": "An hour", "DurationMinutes": 60, "Skills": []}),
        )
        .await
        .unwrap();
    for t in 0..TECHNICIANS {
        let name = format!("t{t}");
        let tech = json!({"UserName": name, "Name": name, "ServiceAreaIDs": ["N"], "Skills": [],
            "Home": {"Lat": 41.95, "Lon": -87.65}, "Shifts": [{"Days": all_days, "Start": "08:00", "End": "12:30"}]});
        store
            .put_sched(&e, SchedKind::Technicians, &name, &tech)
            .await
            .unwrap();
    }
    store
        .update_config(
            &e,
            Box::new(|_| {
                Ok(
                    json!({"RestApi": {"SearchAppts": "builtin:", "BookJob": "builtin:"}})
                        .as_object()
                        .cloned()
                        .unwrap(),
                )
            }),
        )
        .await
        .unwrap();
    let orders: Vec<WorkOrder> = (0..ORIGINALS)
        .map(|i| {
            let num = WorkOrderNum::parse(&format!("O-{i}")).unwrap();
            let body = json!({"OrderType": "STD", "OrderStatus": 4097, "ReasonCode": "2001", "CanScheduleFollowup": true,
                "UserName": "t0", "Location": {"ServiceAreaID": "N", "Address": {"Lat": "41.95", "Lon": "-87.65"}},
                "Account": {"AccountNum": format!("A-{i}"), "Name": "Customer"}});
            WorkOrder::parse(&num, body.as_object().cloned().unwrap()).unwrap()
        })
        .collect();
    store.import_work_orders(&e, &orders).await.unwrap();
    store.close().await;
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let r: Value = client
        .post(format!("{base}/createjwt"))
        .json(&json!({"username": "disp", "password": "dispatcher-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_string()
}

/// The windows a search offers for a follow-up.
async fn windows(client: &reqwest::Client, base: &str, token: &str) -> Vec<Value> {
    let r: Value = client
        .post(format!("{base}/seiapi/v3/trans/Appointments/OpenSlots"))
        .header("x-access-token", token)
        .json(&json!({"OriginalOrderNum": "O-0"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["TimeConstraints"]
        .as_array()
        .unwrap_or_else(|| panic!("no TimeConstraints in {r}"))
        .iter()
        .map(|tc| tc["Period"].clone())
        .collect()
}

/// One booking request, sent with its own key every time.
#[derive(Debug, Clone)]
struct Request {
    original: String,
    key: String,
    period: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// A 200: the booking, first made or replayed.
    Booked { order_num: String, replayed: bool },
    /// A definite 409 (`slot-unavailable`, `followup-already-booked`): nothing was booked.
    Refused(String),
    /// No answer (the connection failed), or a 503: the outcome is unknown.
    Unknown(String),
}

async fn send(client: &reqwest::Client, base: &str, token: &str, req: &Request) -> Answer {
    let r = client
        .post(format!(
            "{base}/seiapi/v3/trans/WorkOrder/{}/Followup",
            req.original
        ))
        .header("x-access-token", token)
        .header("idempotency-key", &req.key)
        .json(&json!({"TimeConstraints": [{"Type": "1001", "Period": req.period}]}))
        .send()
        .await;
    let r = match r {
        Ok(r) => r,
        Err(e) => return Answer::Unknown(format!("no answer: {e}")),
    };
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let body: Value = match r.json().await {
        Ok(b) => b,
        // The answer was cut off by the kill.
        Err(e) => return Answer::Unknown(format!("{status} cut off: {e}")),
    };
    let kind = body["type"].as_str().unwrap_or_default();
    match status {
        200 => Answer::Booked {
            order_num: body["OrderNum"]
                .as_str()
                .unwrap_or_else(|| panic!("a 200 without OrderNum: {body}"))
                .to_string(),
            replayed,
        },
        409 if kind == "urn:revisit:error:slot-unavailable"
            || kind == "urn:revisit:error:followup-already-booked" =>
        {
            Answer::Refused(kind.to_string())
        }
        503 => Answer::Unknown(format!("503: {body}")),
        // 500s, and a 409 request-in-flight: a built-in booking leaves no claim to wait for.
        _ => panic!(
            "{} ({}): unexpected {status}: {body}",
            req.original, req.key
        ),
    }
}

/// Counts the bookings recorded so far, over a connection kept open (it is polled while the
/// server books).
enum Bookings {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Bookings {
    async fn open(url: &str) -> Bookings {
        if url.starts_with("sqlite:") {
            Bookings::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
        } else {
            Bookings::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
        }
    }

    async fn count(&mut self) -> i64 {
        const Q: &str = "SELECT COUNT(*) FROM followups WHERE state = 'done'";
        match self {
            Bookings::Sqlite(c) => sqlx::query_scalar(Q).fetch_one(c).await.unwrap(),
            Bookings::Postgres(c) => sqlx::query_scalar(Q).fetch_one(c).await.unwrap(),
        }
    }
}

/// The storm: `CONCURRENCY` clients work through the requests against whichever server is up,
/// while the server is killed `KILLS` times and started again (after a seeded random number of
/// answers: half of the kills then at a random moment, half the moment a booking commits).
/// Returns the first answer of
/// every request and the server that is up at the end.
async fn storm(
    db_url: &str,
    client: &reqwest::Client,
    token: &str,
    mut server: Server,
    requests: &Arc<Vec<Request>>,
    rng: &mut StdRng,
) -> (Vec<Answer>, Server) {
    let queue = Arc::new(Mutex::new((0..requests.len()).collect::<VecDeque<_>>()));
    let answers = Arc::new(Mutex::new(vec![None; requests.len()]));
    let answered = Arc::new(AtomicUsize::new(0));
    let (up_tx, up_rx) = watch::channel(Some(server.base.clone()));
    let mut clients = Vec::new();
    for _ in 0..CONCURRENCY {
        let (queue, answers, answered, requests) = (
            queue.clone(),
            answers.clone(),
            answered.clone(),
            requests.clone(),
        );
        let (client, token, mut up) = (client.clone(), token.to_string(), up_rx.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let Some(i) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                // Nothing is sent while the server is down: its requests would all fail at once.
                let base = up.wait_for(Option::is_some).await.unwrap().clone().unwrap();
                let a = send(&client, &base, &token, &requests[i]).await;
                if !matches!(a, Answer::Unknown(_)) {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                answers.lock().unwrap()[i] = Some(a);
            }
        }));
    }
    let mut bookings = Bookings::open(db_url).await;
    for kill in 0..KILLS {
        let after = rng.gen_range(4..30);
        let deadline = Instant::now() + Duration::from_secs(60);
        while answered.load(Ordering::SeqCst) < after && !queue.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the server stopped answering");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if kill % 2 == 0 {
            // A moment at random.
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..10))).await;
        } else {
            // The moment a booking is seen committed: often before its answer has gone out,
            // which a retry must then replay rather than book again.
            let seen = bookings.count().await;
            let deadline = Instant::now() + Duration::from_secs(2);
            while bookings.count().await == seen && Instant::now() < deadline {}
        }
        let pending = queue.lock().unwrap().len();
        assert!(pending > 0, "kill {kill} came after the storm");
        up_tx.send_replace(None);
        server.kill();
        server = start(db_url).await;
        answered.store(0, Ordering::SeqCst);
        up_tx.send_replace(Some(server.base.clone()));
    }
    for c in clients {
        c.await.expect("a client task");
    }
    let answers = Arc::into_inner(answers).unwrap().into_inner().unwrap();
    (answers.into_iter().map(Option::unwrap).collect(), server)
}

async fn killed_under_booking_load_loses_and_duplicates_nothing(db: &TestDb) {
    let backend = if db.url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let began = Instant::now();
    let seed_value = std::env::var("CRASH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("CRASH_TEST_SEED={seed_value}");
    let mut rng = StdRng::seed_from_u64(seed_value);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    seed(&db.url).await;
    let server = start(&db.url).await;
    let token = login(&client, &server.base).await;
    let offered = windows(&client, &server.base, &token).await;
    assert!(offered.len() >= 5, "{offered:?}");
    let mut requests = Vec::new();
    for i in 0..ORIGINALS {
        let original = format!("O-{i}");
        requests.push(Request {
            original: original.clone(),
            key: format!("k-{i}"),
            period: offered[i % offered.len()].clone(),
        });
        if i % 5 == 0 {
            requests.push(Request {
                original,
                key: format!("k-{i}-again"),
                period: offered[(i + 1) % offered.len()].clone(),
            });
        }
    }
    requests.shuffle(&mut rng);
    let requests = Arc::new(requests);

    let (first, server) = storm(&db.url, &client, &token, server, &requests, &mut rng).await;
    let unknown = first
        .iter()
        .filter(|a| matches!(a, Answer::Unknown(_)))
        .count();
    assert!(unknown > 0, "the kills cut requests in flight");

    // Every request without an answer, again with its key: its booking (made before the kill
    // and replayed, or made now), or a definite refusal.
    let mut last = first.clone();
    for (i, a) in last.iter_mut().enumerate() {
        let mut tries = 0;
        while let Answer::Unknown(why) = a {
            tries += 1;
            assert!(tries <= 50, "{:?} still has no answer: {why}", requests[i]);
            if tries > 1 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            *a = send(&client, &server.base, &token, &requests[i]).await;
        }
    }
    let replayed = last
        .iter()
        .filter(|a| matches!(a, Answer::Booked { replayed: true, .. }))
        .count();
    // Every acknowledged request, again with its key: the same booking, replayed.
    for (i, a) in first.iter().enumerate() {
        if let Answer::Booked { order_num, .. } = a {
            let again = send(&client, &server.base, &token, &requests[i]).await;
            assert_eq!(
                again,
                Answer::Booked {
                    order_num: order_num.clone(),
                    replayed: true
                },
                "{:?}",
                requests[i]
            );
        }
    }

    // What each original's requests were told: at most one booking each.
    let mut acknowledged: BTreeMap<String, String> = BTreeMap::new();
    for (req, a) in requests.iter().zip(&last) {
        if let Answer::Booked { order_num, .. } = a
            && let Some(other) = acknowledged.insert(req.original.clone(), order_num.clone())
        {
            assert_eq!(
                &other, order_num,
                "{} was told of two bookings",
                req.original
            );
        }
    }
    let refused = last
        .iter()
        .filter(|a| matches!(a, Answer::Refused(_)))
        .count();
    assert!(
        !acknowledged.is_empty() && refused > 0,
        "the storm both booked and refused"
    );
    drop(server);

    // The database, with every server gone.
    let store = open_store(&db.url).await;
    let e = EntityId::parse(ENTITY).unwrap();
    let all = store
        .list_work_orders(
            &e,
            &ListFilter {
                limit: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut stored: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in &all.items {
        if let Some(orig) = o["OriginalOrderNum"].as_str() {
            let num = o["OrderNum"].as_str().unwrap().to_string();
            stored.entry(orig.to_string()).or_default().push(num);
        }
    }
    for (orig, nums) in &stored {
        assert_eq!(nums.len(), 1, "{orig} has two follow-ups: {nums:?}");
    }
    let stored: BTreeMap<String, String> = stored
        .into_iter()
        .map(|(o, mut n)| (o, n.remove(0)))
        .collect();
    // Every acknowledged booking is stored, and nothing is stored that no one was told of.
    assert_eq!(stored, acknowledged);
    for i in 0..ORIGINALS {
        let orig = format!("O-{i}");
        let records = store
            .list_followups(&e, &WorkOrderNum::parse(&orig).unwrap())
            .await
            .unwrap();
        let recorded: Vec<_> = records.iter().map(|r| r.order_num.clone()).collect();
        assert_eq!(
            recorded,
            acknowledged
                .get(&orig)
                .map(|n| vec![Some(n.clone())])
                .unwrap_or_default(),
            "the follow-up records of {orig}"
        );
        if let Some(num) = acknowledged.get(&orig) {
            let order = store
                .get_work_order(&e, &WorkOrderNum::parse(num).unwrap())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{num} is gone"));
            assert_eq!(order.original_order_num(), Some(orig.as_str()));
            assert!(order.planned_start().is_some() && order.user_name().is_some());
        }
    }
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM followups WHERE state = 'pending' AND scheduler = 'builtin'"
        )
        .await,
        0,
        "a built-in booking left a pending claim"
    );

    // No two open visits of a technician overlap, and every day is one the scheduler could plan.
    let setup = load_setup(&store, &e).await.unwrap();
    let now = Timestamp::now();
    let rows = store
        .list_visits(
            &e,
            &VisitQuery {
                techs: Vec::new(),
                from_ms: now.as_millisecond() - 86_400_000,
                to_ms: (now + SignedDuration::from_hours(30 * 24)).as_millisecond(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        acknowledged.len(),
        "every booking is an open visit"
    );
    let tz = TimeZone::get(TZ).unwrap();
    let travel = revisit_scheduler::GreatCircle::from_policy(&setup.work_centers[0].policy);
    let mut per_tech = HashMap::new();
    for (tech, visits) in visits_by_tech(&setup, rows) {
        let t = setup
            .technicians
            .iter()
            .find(|t| t.user_name == tech)
            .unwrap();
        revisit_scheduler::check_day(t, &tz, &visits, &travel)
            .unwrap_or_else(|e| panic!("{tech}: {e}"));
        revisit_scheduler::check_shift_bounds(t, &tz, &visits, &travel)
            .unwrap_or_else(|e| panic!("{tech}: {e}"));
        per_tech.insert(tech, visits.len());
    }
    store.close().await;
    eprintln!(
        "{backend}: {} requests, {KILLS} kills, {unknown} without an answer until retried ({replayed} of them booked before the kill); {} booked, {refused} refused; visits per technician {per_tech:?}; {:.1} s",
        requests.len(),
        acknowledged.len(),
        began.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_booking_load_loses_and_duplicates_nothing_sqlite() {
    killed_under_booking_load_loses_and_duplicates_nothing(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_booking_load_loses_and_duplicates_nothing_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    killed_under_booking_load_loses_and_duplicates_nothing(&db).await;
}
