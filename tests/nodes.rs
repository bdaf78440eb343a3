//! Several Revisit processes on one PostgreSQL database (issue "Scale out"). Each test starts
//! real `revisit serve` processes on their own ports against a database of its own, and checks
//! the guarantees in the database afterwards. PostgreSQL only: skipped (with a message) when
//! `REVISIT_TEST_POSTGRES_URL` is not set.

mod common;

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Server, TestDb, http};
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use revisit::{
    auth::password,
    domain::{EntityId, Role, UserName, WorkOrderNum, workorder::WorkOrder},
    schedule::builtin::{load_setup, visits_by_tech},
    store::{SchedKind, Store, StoreOptions, VisitQuery},
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "nodes-test-secret-0123456789abcdef0123456789";
const ENTITY: &str = "acme";
const TZ: &str = "America/Chicago";

/// One `revisit serve` process on `db_url`, killed with SIGKILL when dropped.
async fn start_node(db_url: &str) -> Server {
    Server::start(
        db_url,
        SECRET,
        &[
            ("REVISIT_DATABASE_MAX_CONNECTIONS", "8"),
            ("REVISIT_DATABASE_STATEMENT_TIMEOUT_MS", "1000"),
            ("REVISIT_SHUTDOWN_GRACE_MS", "2000"),
        ],
    )
    .await
}

/// A small company: one work center with one window a day (08:00-12:00 local, every day), and
/// `techs` technicians whose shift (08:00-12:30) fits exactly one 240-minute visit a day, at
/// home at the work center. Each window therefore has capacity for `techs` bookings.
async fn seed(url: &str, techs: usize, originals: usize) -> Arc<Store> {
    let store = Store::open(
        url,
        &StoreOptions {
            max_connections: 4,
            statement_timeout: Duration::from_secs(5),
        },
    )
    .await
    .expect("open store");
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
        "Policy": {"Windows": [{"Days": all_days, "Start": "08:00", "End": "12:00"}], "MinLeadMinutes": 0, "HorizonDays": 14}});
    store
        .put_sched(&e, SchedKind::WorkCenters, "N", &wc)
        .await
        .unwrap();
    store
        .put_sched(&e, SchedKind::OrderTypes, "BIG", &json!({"OrderType": "BIG", "Desc": "Half a day", "DurationMinutes": 240, "Skills": []}))
        .await
        .unwrap();
    for t in 0..techs {
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
    let orders: Vec<WorkOrder> = (0..originals)
        .map(|i| {
            let num = WorkOrderNum::parse(&format!("O-{i}")).unwrap();
            let body = json!({"OrderType": "BIG", "OrderStatus": 4097, "ReasonCode": "2001", "CanScheduleFollowup": true,
                "UserName": "t0", "Location": {"ServiceAreaID": "N", "Address": {"Lat": "41.95", "Lon": "-87.65"}},
                "Account": {"AccountNum": format!("A-{i}"), "Name": "Customer"}});
            WorkOrder::parse(&num, body.as_object().cloned().unwrap()).unwrap()
        })
        .collect();
    store.import_work_orders(&e, &orders).await.unwrap();
    Arc::new(store)
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

/// The windows a search on `base` offers for a follow-up of `original`.
async fn offered(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    original: &str,
) -> Vec<(String, String)> {
    let r: Value = client
        .post(format!("{base}/seiapi/v3/trans/Appointments/OpenSlots"))
        .header("x-access-token", token)
        .json(&json!({"OriginalOrderNum": original}))
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
        .map(|tc| {
            (
                tc["Period"]["Start"].as_str().unwrap().to_string(),
                tc["Period"]["End"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn book(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    original: &str,
    w: &(String, String),
) -> Result<(u16, Value), String> {
    let r = client
        .post(format!(
            "{base}/seiapi/v3/trans/WorkOrder/{original}/Followup"
        ))
        .header("x-access-token", token)
        .json(&json!({"TimeConstraints": [{"Type": "1001", "Period": {"Start": w.0, "End": w.1}}]}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// The database's view: follow-up orders by original, and the day invariants of every technician.
async fn check_database(store: &Store) -> HashMap<String, Vec<String>> {
    let e = EntityId::parse(ENTITY).unwrap();
    let setup = load_setup(store, &e).await.unwrap();
    let now = Timestamp::now();
    let rows = store
        .list_visits(
            &e,
            &VisitQuery {
                techs: Vec::new(),
                from_ms: now.as_millisecond() - 86_400_000,
                to_ms: now
                    .checked_add(40.days())
                    .map(|t| t.as_millisecond())
                    .unwrap_or(i64::MAX),
            },
        )
        .await
        .unwrap();
    let mut by_original: HashMap<String, Vec<String>> = HashMap::new();
    for r in &rows {
        let o = store
            .get_work_order(&e, &WorkOrderNum::parse(&r.order_num).unwrap())
            .await
            .unwrap()
            .unwrap();
        if let Some(orig) = o.original_order_num() {
            by_original
                .entry(orig.to_string())
                .or_default()
                .push(r.order_num.clone());
        }
    }
    let tz = TimeZone::get(TZ).unwrap();
    let travel = revisit_scheduler::GreatCircle::from_policy(&setup.work_centers[0].policy);
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
    }
    by_original
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_database_and_never_double_book_under_200_concurrent_bookings() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = seed(&db.url, 3, 200).await;
    let (n1, n2) = (start_node(&db.url).await, start_node(&db.url).await);
    let client = http();
    let token = login(&client, &n1.base).await;
    let windows = offered(&client, &n1.base, &token, "O-0").await;
    assert!(windows.len() >= 4, "{windows:?}");
    // 200 bookings over 4 windows of capacity 3 each: at most 12 can succeed.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (client, token, w) = (client.clone(), token.clone(), windows[i % 4].clone());
        let base = if i % 2 == 0 {
            n1.base.clone()
        } else {
            n2.base.clone()
        };
        tasks.push(tokio::spawn(async move {
            (
                format!("O-{i}"),
                book(&client, &base, &token, &format!("O-{i}"), &w).await,
            )
        }));
    }
    let mut ok: HashMap<String, String> = HashMap::new();
    let mut refused = HashSet::new();
    for t in tasks {
        let (orig, res) = t.await.unwrap();
        let (status, body) = res.expect("both nodes stay up");
        match status {
            200 => {
                ok.insert(orig, body["OrderNum"].as_str().unwrap().to_string());
            }
            409 => {
                assert_eq!(body["type"], "urn:revisit:error:slot-unavailable", "{body}");
                refused.insert(orig);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok.len(), 12, "each of the 4 windows holds exactly 3 visits");
    assert_eq!(ok.len() + refused.len(), 200);
    let stored = check_database(store.as_ref()).await;
    for (orig, num) in &ok {
        assert_eq!(
            stored.get(orig),
            Some(&vec![num.clone()]),
            "the 200 for {orig} matches exactly one stored order"
        );
    }
    for orig in &refused {
        assert!(
            !stored.contains_key(orig),
            "a 409 for {orig} left an order behind"
        );
    }
    drop((n1, n2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_through_one_node_is_no_longer_offered_by_the_other_within_a_second() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let _store = seed(&db.url, 1, 2).await;
    let (n1, n2) = (start_node(&db.url).await, start_node(&db.url).await);
    let client = http();
    let token = login(&client, &n1.base).await;
    let before = offered(&client, &n2.base, &token, "O-1").await;
    let first = before[0].clone();
    let (status, body) = book(&client, &n1.base, &token, "O-0", &first)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let booked_at = Instant::now();
    loop {
        let now = offered(&client, &n2.base, &token, "O-1").await;
        if !now.contains(&first) {
            break;
        }
        assert!(
            booked_at.elapsed() < Duration::from_secs(1),
            "node 2 still offers the booked window after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_node_during_a_booking_storm_loses_no_acknowledged_booking() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = seed(&db.url, 3, 120).await;
    let (mut n1, n2) = (start_node(&db.url).await, start_node(&db.url).await);
    let client = http();
    let token = login(&client, &n2.base).await;
    let windows = offered(&client, &n2.base, &token, "O-0").await;
    let mut tasks = Vec::new();
    for i in 0..120 {
        let (client, token, w) = (
            client.clone(),
            token.clone(),
            windows[i % windows.len()].clone(),
        );
        let base = if i % 2 == 0 {
            n1.base.clone()
        } else {
            n2.base.clone()
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64 % 40) * 5)).await;
            (
                format!("O-{i}"),
                book(&client, &base, &token, &format!("O-{i}"), &w).await,
            )
        }));
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    n1.kill();
    let (mut acknowledged, mut cut_off) = (HashMap::new(), 0);
    for t in tasks {
        match t.await.unwrap() {
            (orig, Ok((200, body))) => {
                acknowledged.insert(orig, body["OrderNum"].as_str().unwrap().to_string());
            }
            (_, Err(_)) => cut_off += 1,
            _ => {}
        }
    }
    assert!(
        cut_off > 0,
        "the kill happened during the storm: some requests to node 1 got no answer"
    );
    assert!(!acknowledged.is_empty(), "node 2 kept booking");
    let stored = check_database(store.as_ref()).await;
    for (orig, num) in &acknowledged {
        assert_eq!(
            stored.get(orig),
            Some(&vec![num.clone()]),
            "acknowledged booking of {orig} stored exactly once"
        );
    }
    // Every stored follow-up order has its booking record, and every record its order.
    let e = EntityId::parse(ENTITY).unwrap();
    for (orig, nums) in &stored {
        assert_eq!(nums.len(), 1, "{orig} has {nums:?}");
        let records = store
            .list_followups(&e, &WorkOrderNum::parse(orig).unwrap())
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "{orig}");
        assert_eq!(records[0].order_num.as_deref(), Some(nums[0].as_str()));
    }
}

/// A TCP relay between Revisit and PostgreSQL that can cut every connection and refuse new
/// ones, as a database that goes away does, without stopping the cluster other tests use.
struct Cut {
    down: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

async fn relay(target: String) -> (u16, Cut) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let down = Arc::new(AtomicBool::new(false));
    let (tx, _) = tokio::sync::watch::channel(0u64);
    let generation = Arc::new(tx);
    let (d, g) = (down.clone(), generation.clone());
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if d.load(Ordering::SeqCst) {
                continue; // dropped: the connection is closed at once
            }
            let target = target.clone();
            let mut cut = g.subscribe();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    (port, Cut { down, generation })
}

impl Cut {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_gives_503s_and_service_resumes_when_it_returns() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let _store = seed(&db.url, 1, 2).await;
    let direct = url::Url::parse(&db.url).unwrap();
    let target = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    );
    let (port, cut) = relay(target).await;
    let mut via = direct.clone();
    via.set_port(Some(port)).unwrap();
    let node = start_node(via.as_str()).await;
    let client = http();
    let token = login(&client, &node.base).await;
    let search = |c: reqwest::Client, t: String, b: String| async move {
        c.post(format!("{b}/seiapi/v3/trans/Appointments/OpenSlots"))
            .header("x-access-token", t)
            .json(&json!({"OriginalOrderNum": "O-1"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    };
    assert_eq!(
        search(client.clone(), token.clone(), node.base.clone())
            .await
            .unwrap(),
        200
    );

    cut.set_down(true);
    for _ in 0..3 {
        let status = search(client.clone(), token.clone(), node.base.clone())
            .await
            .expect("Revisit answers while the database is away");
        assert_eq!(status, 503, "a missing database is a 503");
        let ready = client
            .get(format!("{}/readyz", node.base))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status().as_u16(), 503);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["type"], "urn:revisit:error:unavailable");
    }

    cut.set_down(false);
    let back = Instant::now();
    loop {
        if search(client.clone(), token.clone(), node.base.clone())
            .await
            .ok()
            == Some(200)
        {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "service did not resume without a restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = client
        .get(format!("{}/readyz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_and_exits_cleanly() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let _store = seed(&db.url, 2, 40).await;
    let mut node = start_node(&db.url).await;
    let client = http();
    let token = login(&client, &node.base).await;
    let windows = offered(&client, &node.base, &token, "O-0").await;
    // Requests already sent when SIGTERM arrives still get their answer.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, token, base, w) = (
            client.clone(),
            token.clone(),
            node.base.clone(),
            windows[i % windows.len()].clone(),
        );
        tasks.push(tokio::spawn(async move {
            book(&client, &base, &token, &format!("O-{i}"), &w).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let pid = node.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "did not stop within the grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let mut answered = 0;
    for t in tasks {
        // A request sent after the listener closed is refused, never half-done.
        if let Ok((s, body)) = t.await.unwrap() {
            assert!(s == 200 || s == 409, "{s}: {body}");
            answered += 1;
        }
    }
    assert!(answered > 0, "requests in flight were answered");
    assert!(
        client
            .get(format!("{}/readyz", node.base))
            .send()
            .await
            .is_err(),
        "the node is gone"
    );
}
