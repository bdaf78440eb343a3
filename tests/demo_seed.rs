//! `serve --demo` killed with SIGKILL while it seeds the demo, then started again: the demo is
//! complete after the restart, on SQLite and on PostgreSQL (the real binary, killed for real).

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use jiff::{Timestamp, tz::TimeZone};
use revisit::{
    demo,
    domain::EntityId,
    store::{ListFilter, SchedKind, Store, StoreOptions},
};
use sqlx::Connection;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server process, killed (SIGKILL) when dropped, also when a test fails.
struct Server(Child);

impl Server {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn start(db_url: &str, port: u16) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_revisit"))
            .args(["serve", "--demo"])
            .env("REVISIT_LISTEN", format!("127.0.0.1:{port}"))
            .env("REVISIT_DATABASE_URL", db_url)
            .env("REVISIT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start revisit"),
    )
}

/// The number of users stored so far (0 before the schema exists).
async fn users(db_url: &str) -> i64 {
    rows(db_url, "users").await
}

/// The number of rows of `table` (0 before the schema exists).
async fn rows(db_url: &str, table: &str) -> i64 {
    let count = format!("SELECT COUNT(*) FROM {table}");
    let count = count.as_str();
    if db_url.starts_with("sqlite:") {
        let Ok(mut c) = sqlx::SqliteConnection::connect(db_url).await else {
            return 0;
        };
        sqlx::query_scalar(count)
            .fetch_one(&mut c)
            .await
            .unwrap_or(0)
    } else {
        let Ok(mut c) = sqlx::PgConnection::connect(db_url).await else {
            return 0;
        };
        sqlx::query_scalar(count)
            .fetch_one(&mut c)
            .await
            .unwrap_or(0)
    }
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills the first seeding at several moments (while users are created; as soon as any of the
/// scheduler's set-up or any visit is visible; at delays after the last user), restarts each
/// time, and checks that the demo the last start reports ready is whole.
async fn killed_mid_seed_then_complete(db_url: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kills = [
        ("users", 1, 0),
        ("users", 42, 0),
        ("sched_objects", 1, 0),
        ("work_orders", 1, 0),
        ("users", 42, 250),
        ("users", 42, 600),
    ];
    for (table, seen, then) in kills {
        let port = free_port();
        let mut child = start(db_url, port);
        let deadline = Instant::now() + Duration::from_secs(60);
        while rows(db_url, table).await < seen && Instant::now() < deadline {
            if child.0.try_wait().ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(then)).await;
        child.kill();
    }
    let port = free_port();
    let mut child = start(db_url, port);
    wait_ready(port).await;

    let store = Store::open(
        db_url,
        &StoreOptions {
            max_connections: 2,
            statement_timeout: Duration::from_secs(5),
        },
    )
    .await
    .expect("open the store");
    let entity = EntityId::parse(demo::ENTITY).unwrap();
    let count = |kind| {
        let (store, entity) = (&store, &entity);
        async move { store.list_sched(entity, kind).await.unwrap().len() }
    };
    assert_eq!(count(SchedKind::WorkCenters).await, 3);
    assert_eq!(count(SchedKind::Technicians).await, 40);
    assert_eq!(count(SchedKind::OrderTypes).await, 5);
    let today = Timestamp::now()
        .to_zoned(TimeZone::get(demo::TIME_ZONE).unwrap())
        .date();
    let expected = demo::generate(demo::Size::DEMO, today).orders.len() as i64;
    let orders = store
        .list_work_orders(
            &entity,
            &ListFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(orders.total, expected);
    assert_eq!(users(db_url).await, 42);
    // Every demo user can log in.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/createjwt"))
        .json(&serde_json::json!({"username": "tech40", "password": "tech40"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill();
}

#[tokio::test]
async fn a_kill_during_the_first_demo_seed_is_followed_by_a_complete_demo_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("revisit.db").display());
    killed_mid_seed_then_complete(&url).await;
}

#[tokio::test]
async fn a_kill_during_the_first_demo_seed_is_followed_by_a_complete_demo_postgres() {
    let Ok(admin) = std::env::var("REVISIT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: REVISIT_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("revisit_d_{}", uuid::Uuid::new_v4().simple());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    killed_mid_seed_then_complete(url.as_str()).await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await;
}
