//! The seeded, serving instance that `search` and `book` measure, and the HTTP calls they share.
//!
//! Each run gets its own database (a fresh SQLite file in a temporary directory unless
//! `--database-url` names an empty one), seeds the entity `bench` with the demo generator,
//! serves the real router on a loopback port and drives it over HTTP. Besides the generator,
//! only users are written through the library (there is no endpoint that creates them); the
//! configuration, the originals and every read go through the public API as any client's would.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use jiff::{Timestamp, tz::TimeZone};
use revisit::{
    app::{self, AppState},
    auth::password,
    config::{Config, Secret},
    demo::{self, Size},
    domain::{EntityId, Role, UserName},
};
use revisit_scheduler::{OrderType, Technician, WorkCenter};
use serde_json::{Map, Value, json};

use crate::report::{Table, mib, proc_status_kib};

const ENTITY: &str = "bench";
const ADMIN: &str = "bench-admin";
const DISPATCHER: &str = "bench-dispatcher";
/// No measuring loop runs longer than this, whatever the counts asked for.
pub(crate) const MAX_PHASE: Duration = Duration::from_secs(180);

/// The seeded data and where it lives.
#[derive(Args, Debug, Clone)]
pub(crate) struct DataArgs {
    /// Technicians generated [default: 50; 100 with book --spread].
    #[arg(long)]
    pub(crate) technicians: Option<usize>,
    /// Days of booked visits generated, from today.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Visits aimed at per technician-day (fewer when a day is full) [default: 6; 3 with book
    /// --spread].
    #[arg(long)]
    pub(crate) visits_per_day: Option<usize>,
    /// Seed of the generator and of the benchmarks' random choices.
    #[arg(long, default_value_t = 2026)]
    pub(crate) seed: u64,
    /// `sqlite:PATH` or `postgres://...` of an EMPTY database; default: a fresh SQLite file in
    /// a temporary directory, removed afterwards.
    #[arg(long)]
    database_url: Option<String>,
}

impl DataArgs {
    pub(crate) fn technicians(&self) -> usize {
        self.technicians.unwrap_or(50)
    }
    fn visits_per_day(&self) -> usize {
        self.visits_per_day.unwrap_or(6)
    }
}

/// The scheduler set-up the bench seeded (what the server reads back from its database).
pub(crate) struct Setup {
    pub(crate) work_centers: Vec<WorkCenter>,
    pub(crate) technicians: Vec<Technician>,
    pub(crate) order_types: HashMap<String, OrderType>,
}

impl Setup {
    pub(crate) fn work_center(&self, id: &str) -> Option<&WorkCenter> {
        self.work_centers.iter().find(|w| w.service_area_id == id)
    }
}

/// A seeded, serving instance.
pub(crate) struct Bench {
    pub(crate) state: AppState,
    pub(crate) setup: Setup,
    pub(crate) base: String,
    /// The dispatcher's token: every request of the benchmarks is the dispatcher's.
    pub(crate) token: String,
    visits: usize,
    seeding: Duration,
    /// What the database is, for the printed head and the targets.
    pub(crate) database: String,
    pub(crate) peak_setup_kib: Option<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped last: the SQLite file lives in it.
    _dir: Option<tempfile::TempDir>,
}

/// `bytes` random bytes in hex: passwords and signing keys that live as long as the run.
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Argon2 is slow on purpose: off the async workers.
pub(crate) async fn hash(pw: String) -> anyhow::Result<String> {
    password::hash_blocking(pw).await
}

pub(crate) fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `POST /createjwt`: the user's token.
pub(crate) async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    pw: &str,
) -> anyhow::Result<String> {
    let resp = client
        .post(format!("{base}/createjwt"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "logging in as {user} failed: {}",
        resp.status()
    );
    Ok(resp.json::<Value>().await?["token"]
        .as_str()
        .context("no token in the log-in answer")?
        .to_string())
}

/// Serves `state` on a loopback port until the sender is used or dropped.
pub(crate) async fn serve(
    state: AppState,
) -> anyhow::Result<(
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok((base, stop, server))
}

impl Bench {
    pub(crate) async fn start(data: &DataArgs, mut config: Config) -> anyhow::Result<Bench> {
        let (dir, url, database) = match &data.database_url {
            Some(u) => {
                let kind = if u.starts_with("sqlite:") {
                    "SQLite (given)"
                } else {
                    "PostgreSQL (given)"
                };
                (None, u.clone(), kind.to_string())
            }
            None => {
                let dir = tempfile::tempdir().context("creating a temporary directory")?;
                let url = format!("sqlite:{}", dir.path().join("bench.db").display());
                (
                    Some(dir),
                    url,
                    "SQLite, fresh file in a temp dir (WAL)".into(),
                )
            }
        };
        config.database_url = Secret::new(url);
        config.jwt_secret = Some(Secret::new(random_hex(32)));
        config.database_max_connections = config.database_max_connections.max(32);
        config.shutdown_grace = Duration::from_secs(2);
        let database = format!(
            "{database}, pool {} connections",
            config.database_max_connections
        );
        let state = AppState::build(config).await?;
        let store = state.store.as_ref();
        let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;

        // Refuse to write into a database that already holds data of ours: figures from a
        // database of unknown size mean nothing, and we must not touch someone's data. The
        // users are written before anything else, so an earlier run, even one that stopped
        // half-way through seeding, left them behind.
        if store.find_user(ADMIN).await?.is_some() || store.find_user(DISPATCHER).await?.is_some() {
            anyhow::bail!(
                "the database already holds the `{ENTITY}` entity's users: give --database-url an empty database (or omit it for a fresh SQLite file)"
            );
        }
        // One password (and one Argon2 hash) for every user: it never leaves this process.
        let pw = random_hex(16);
        let pw_hash = hash(pw.clone()).await?;
        let add = |name: &str, role: Role| {
            let (entity, pw_hash) = (entity.clone(), pw_hash.clone());
            let name = UserName::parse(name).map_err(anyhow::Error::msg);
            async move {
                store.add_user(&entity, &name?, role, &pw_hash).await?;
                anyhow::Ok(())
            }
        };
        store.ensure_entity(&entity).await?;
        add(ADMIN, Role::Admin).await?;
        add(DISPATCHER, Role::Dispatcher).await?;

        let t0 = Instant::now();
        let tz = TimeZone::get(demo::TIME_ZONE)?;
        let today = Timestamp::now().to_zoned(tz).date();
        let g = demo::generate(
            Size {
                technicians: data.technicians(),
                days: data.days,
                visits_per_day: data.visits_per_day(),
                seed: data.seed,
                planned_routes: false,
            },
            today,
        );
        demo::store_generated(store, &entity, &g).await?;
        // Nobody logs in as a technician; they exist because orders name them.
        for t in &g.technicians {
            add(&t.user_name, Role::Technician).await?;
        }
        let visits = g.orders.len();
        let setup = Setup {
            work_centers: g.work_centers,
            technicians: g.technicians,
            order_types: g
                .order_types
                .into_iter()
                .map(|t| (t.order_type.clone(), t))
                .collect(),
        };

        let (base, stop, server) = serve(state.clone()).await?;
        let client = http_client()?;
        let admin = login(&client, &base, ADMIN, &pw).await?;
        let resp = client
            .post(format!("{base}/seiapi/v3/SysConfig/mobility"))
            .header("x-access-token", &admin)
            .json(&json!({
                "RestApi": {"SearchAppts": "builtin:", "BookJob": "builtin:"},
                "WorkOrderRules": {"Default": {"CanScheduleFollowup": true}},
            }))
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "configuring the entity failed: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        let token = login(&client, &base, DISPATCHER, &pw).await?;
        let seeding = t0.elapsed();
        Ok(Bench {
            state,
            setup,
            base,
            token,
            visits,
            seeding,
            database,
            peak_setup_kib: proc_status_kib("VmHWM"),
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        })
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
    }

    /// Calls `f` with every work order of the entity whose status is in `statuses` (the list's
    /// comma-separated `OrderStatus` filter, digits and commas only), read page by page as the
    /// dispatcher (`GET /seiapi/v3/trans/WorkOrders`, ordered by planned start and number, so
    /// the pages do not overlap while nothing writes); one page is held at a time. Returns how
    /// many there were.
    pub(crate) async fn each_order(
        &self,
        statuses: &str,
        mut f: impl FnMut(&Value),
    ) -> anyhow::Result<usize> {
        const PAGE: usize = 1000;
        let client = http_client()?;
        let mut seen = 0;
        loop {
            let r = client
                .get(format!(
                    "{}/seiapi/v3/trans/WorkOrders?OrderStatus={statuses}&Limit={PAGE}&Offset={seen}",
                    self.base
                ))
                .header("x-access-token", &self.token)
                .send()
                .await?;
            let status = r.status();
            let page: Value = r.json().await?;
            anyhow::ensure!(
                status.is_success(),
                "listing work orders failed: {status} {page}"
            );
            let total = page["Total"].as_u64().unwrap_or(0) as usize;
            let orders = page["WorkOrders"]
                .as_array()
                .context("the list answer has no WorkOrders array")?;
            orders.iter().for_each(&mut f);
            seen += orders.len();
            if orders.is_empty() || seen >= total {
                return Ok(seen);
            }
        }
    }

    /// Every work order of the entity whose status is in `statuses`, read over HTTP while no
    /// work order was written: the entity's visit sequence number (every write of a work order
    /// takes the next one) is the same before and after the read. Background writes (the
    /// re-optimiser's runs after bookings) would otherwise move visits between the pages of
    /// the read, which then sees some twice and misses others. Waits for a quiet moment, up to
    /// `MAX_PHASE`; answers the orders and how many reads it took.
    pub(crate) async fn stable_orders(
        &self,
        statuses: &str,
    ) -> anyhow::Result<(Vec<Value>, usize)> {
        let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;
        let deadline = Instant::now() + MAX_PHASE;
        let mut reads = 0;
        loop {
            let before = self.state.store.sched_versions(&entity).await?;
            let mut orders = Vec::new();
            self.each_order(statuses, |o| orders.push(o.clone()))
                .await?;
            reads += 1;
            let after = self.state.store.sched_versions(&entity).await?;
            if before == after {
                return Ok((orders, reads));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "work orders kept being written while the check read them ({reads} reads)"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `PUT /seiapi/v3/trans/WorkOrder/{OrderNum}` of every order, `concurrency` at a time.
    pub(crate) async fn put_orders(
        &self,
        orders: Vec<Map<String, Value>>,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let client = http_client()?;
        let orders = std::sync::Arc::new(std::sync::Mutex::new(orders));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let (client, orders) = (client.clone(), orders.clone());
            let (base, token) = (self.base.clone(), self.token.clone());
            tasks.spawn(async move {
                loop {
                    let Some(o) = orders.lock().ok().and_then(|mut v| v.pop()) else {
                        return anyhow::Ok(());
                    };
                    let num = o["OrderNum"].as_str().unwrap_or_default().to_string();
                    let r = client
                        .put(format!("{base}/seiapi/v3/trans/WorkOrder/{num}"))
                        .header("x-access-token", &token)
                        .json(&o)
                        .send()
                        .await?;
                    anyhow::ensure!(
                        r.status().is_success(),
                        "PUT WorkOrder/{num} failed: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok(())
    }

    /// The head of every report: the command, the machine, the build, the data.
    pub(crate) fn machine(&self, data: &DataArgs) -> Table {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let mut t = Table::new("revisit-bench");
        t.row("command", std::env::args().collect::<Vec<_>>().join(" "))
            .row("machine", format!("{cpus} CPUs (nproc), {cpu}"))
            .row(
                "build",
                if cfg!(debug_assertions) {
                    "DEBUG: figures are meaningless, use --release"
                } else {
                    "release"
                },
            )
            .row(
                "log filter",
                std::env::var("REVISIT_LOG")
                    .unwrap_or_else(|_| "info (default: a line per request)".into()),
            )
            .row("database", self.database.clone())
            .row(
                "data",
                format!(
                    "{} technicians x {} days x {} visits/day aimed: {} visits, {} work centers (seed {})",
                    data.technicians(),
                    data.days,
                    data.visits_per_day(),
                    self.visits,
                    self.setup.work_centers.len(),
                    data.seed
                ),
            )
            .row("seeding", format!("{:.1} s", self.seeding.as_secs_f64()))
            .row("peak memory after seeding", mib(self.peak_setup_kib));
        t
    }
}
