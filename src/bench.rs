//! `revisit bench search` and `revisit bench book`: the figures the issue asks for, measured on
//! seeded data in one process. Each run gets its own database (a fresh SQLite file in a temporary
//! directory unless `--database-url` names an empty one), seeds the entity `bench` with the demo
//! generator, serves the real router on a loopback port and drives it with concurrent HTTP
//! clients. Every loop is bounded in count and in time; nothing leaves the machine.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args, Subcommand};
use jiff::{Timestamp, tz::TimeZone};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use revisit_scheduler::{self as sched, GreatCircle, Snapshot, WorkCenter};
use serde_json::{Map, Value, json};

use crate::{
    app::{self, AppState},
    auth::password,
    config::{Config, Secret},
    demo::{self, Size},
    domain::{EntityId, Role, UserName, WorkOrderNum, bookjob::BookJob, workorder::WorkOrder},
    schedule::builtin::{self, Builtin, Setup},
    store::{ListFilter, SchedKind, VisitQuery},
};

const ENTITY: &str = "bench";
const ADMIN: &str = "bench-admin";
const DISPATCHER: &str = "bench-dispatcher";
/// No measuring loop runs longer than this, whatever the counts asked for.
const MAX_PHASE: Duration = Duration::from_secs(180);
/// The work center every benchmark booking goes to, so the bookings contend.
const BOOK_WC: &str = "CHI-C";

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Slot-search latency in process (and where it goes), then slot-search throughput over HTTP.
    Search(SearchArgs),
    /// Follow-up bookings over HTTP (contended by default, `--spread` over the whole horizon),
    /// then a double-booking check in the database.
    Book(BookArgs),
}

/// The seeded data and where it lives.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// [default: 50; 100 with book --spread]
    #[arg(long)]
    technicians: Option<usize>,
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Visits aimed at per technician-day (fewer when a day is full) [default: 6; 3 with book
    /// --spread].
    #[arg(long)]
    visits_per_day: Option<usize>,
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// `sqlite:PATH` or `postgres://...` of an EMPTY database; default: a fresh SQLite file in
    /// a temporary directory, removed afterwards.
    #[arg(long)]
    database_url: Option<String>,
}

impl DataArgs {
    fn technicians(&self) -> usize {
        self.technicians.unwrap_or(50)
    }
    fn visits_per_day(&self) -> usize {
        self.visits_per_day.unwrap_or(6)
    }
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    data: DataArgs,
    /// In-process searches measured (after 10 unmeasured ones).
    #[arg(long, default_value_t = 500)]
    iterations: usize,
    /// Concurrent HTTP clients of the throughput phase.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Length of the throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Args, Debug)]
pub struct BookArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Closed Incomplete originals created, each booked once [default: 2000; 4000 with --spread].
    #[arg(long)]
    bookings: Option<usize>,
    /// How many of the windows offered by one search beforehand the clients book (round robin):
    /// few windows, much contention. Ignored with --spread.
    #[arg(long, default_value_t = 3)]
    windows: usize,
    /// Spread the bookings over every window the searches offer (all work centers, all days of
    /// the horizon) instead of a few windows of one work center, so most of them succeed: the
    /// rate of successful bookings, not of refusals.
    #[arg(long)]
    spread: bool,
    /// Revisit nodes sharing the database: each extra node is a separate server state (its own
    /// pool, cache and port) in this process; clients are spread over the nodes. Meant for
    /// PostgreSQL.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

pub async fn run(command: BenchCommand, config: Config) -> anyhow::Result<()> {
    match command {
        BenchCommand::Search(a) => search(a, config).await,
        BenchCommand::Book(a) => book(a, config).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up shared by both benchmarks

/// A seeded, serving instance.
struct Bench {
    state: AppState,
    entity: EntityId,
    setup: Setup,
    base: String,
    token: String,
    /// Up to 2,000 of the generated visits, used as original orders of in-process searches.
    sample: Vec<WorkOrder>,
    visits: usize,
    seeding: Duration,
    database: String,
    peak_setup_kib: Option<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped last: the SQLite file lives in it.
    _dir: Option<tempfile::TempDir>,
}

async fn hash(pw: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || password::hash(&pw)).await?
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

impl Bench {
    async fn start(data: &DataArgs, mut config: Config) -> anyhow::Result<Bench> {
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
        config.jwt_secret = Some(Secret::new(crate::auth::random_hex(32)));
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
        // database of unknown size mean nothing, and we must not touch someone's data.
        let used = store.find_user(ADMIN).await?.is_some()
            || store.find_user(DISPATCHER).await?.is_some()
            || !store
                .list_sched(&entity, SchedKind::WorkCenters)
                .await?
                .is_empty()
            || store
                .list_work_orders(
                    &entity,
                    &ListFilter {
                        limit: 1,
                        ..ListFilter::default()
                    },
                )
                .await?
                .total
                > 0;
        if used {
            anyhow::bail!(
                "the database already holds a `{ENTITY}` entity or its users: give --database-url an empty database (or omit it for a fresh SQLite file)"
            );
        }

        let t0 = Instant::now();
        let tz = TimeZone::get(demo::TIME_ZONE)?;
        let today = Timestamp::now().to_zoned(tz).date();
        let g = demo::generate(
            Size {
                technicians: data.technicians(),
                days: data.days,
                visits_per_day: data.visits_per_day(),
                seed: data.seed,
            },
            today,
        );
        demo::store_generated(store, &entity, &g).await?;
        store
            .update_config(
                &entity,
                Box::new(|_| {
                    let cfg = json!({
                        "RestApi": {"SearchAppts": "builtin:", "BookJob": "builtin:"},
                        "WorkOrderRules": {"Default": {"CanScheduleFollowup": true}},
                    });
                    Ok(cfg.as_object().cloned().unwrap_or_default())
                }),
            )
            .await?;
        // Argon2 is slow on purpose: one hash per user that logs in, one shared by the
        // technicians (nobody logs in as them; they exist because orders name them).
        let dispatcher_pw = crate::auth::random_hex(16);
        let add = |name: String, role: Role, hash: String| {
            let entity = entity.clone();
            async move {
                let name = UserName::parse(&name).map_err(anyhow::Error::msg)?;
                store.add_user(&entity, &name, role, &hash).await?;
                anyhow::Ok(())
            }
        };
        add(
            ADMIN.into(),
            Role::Admin,
            hash(crate::auth::random_hex(16)).await?,
        )
        .await?;
        add(
            DISPATCHER.into(),
            Role::Dispatcher,
            hash(dispatcher_pw.clone()).await?,
        )
        .await?;
        let tech_hash = hash(crate::auth::random_hex(16)).await?;
        for t in &g.technicians {
            add(t.user_name.clone(), Role::Technician, tech_hash.clone()).await?;
        }
        let visits = g.orders.len();
        let mut rng = StdRng::seed_from_u64(data.seed ^ 0x5eed);
        let sample: Vec<WorkOrder> = g
            .orders
            .choose_multiple(&mut rng, 2000.min(visits))
            .cloned()
            .collect();
        drop(g);
        let seeding = t0.elapsed();
        let setup = builtin::load_setup(store, &entity).await?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        let resp = http_client()?
            .post(format!("{base}/createjwt"))
            .json(&json!({"username": DISPATCHER, "password": dispatcher_pw}))
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "logging in as {DISPATCHER} failed: {}",
            resp.status()
        );
        let token = resp.json::<Value>().await?["token"]
            .as_str()
            .context("no token in the log-in answer")?
            .to_string();
        Ok(Bench {
            state,
            entity,
            setup,
            base,
            token,
            sample,
            visits,
            seeding,
            database,
            peak_setup_kib: proc_status_kib("VmHWM"),
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        })
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
    }

    fn work_center(&self, id: &str) -> Option<&WorkCenter> {
        self.setup
            .work_centers
            .iter()
            .find(|w| w.service_area_id == id)
    }
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank; `None` when there are none.
pub(crate) fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// An Appointment Search object without an original order: a type, a place, its work center.
fn search_body(rng: &mut StdRng, setup: &Setup) -> Map<String, Value> {
    let wc = &setup.work_centers[rng.gen_range(0..setup.work_centers.len())];
    let mut types: Vec<&String> = setup.order_types.keys().collect();
    types.sort();
    let ty = types[rng.gen_range(0..types.len())];
    let p = crate::demo::near(rng, wc.location(), 9.0);
    let body = json!({
        "OrderType": ty,
        "Location": {
            "ServiceAreaID": wc.service_area_id,
            "Address": {"Lat": format!("{:.6}", p.lat), "Lon": format!("{:.6}", p.lon)},
        },
    });
    body.as_object().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Figures

/// Latency samples in microseconds.
#[derive(Default, Clone)]
struct Lat(Vec<u64>);

impl Lat {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_micros() as u64);
    }
    fn extend(&mut self, other: Lat) {
        self.0.extend(other.0);
    }
    fn sorted(mut self) -> Lat {
        self.0.sort_unstable();
        self
    }
    /// The `q` quantile in ms, nearest rank; the samples must be sorted.
    fn q(&self, q: f64) -> f64 {
        nearest_rank(&self.0, q).map_or(f64::NAN, |us| us as f64 / 1000.0)
    }
    fn mean(&self) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.iter().sum::<u64>() as f64 / self.0.len() as f64 / 1000.0
    }
    fn summary(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        format!(
            "p50 {:>8.3}  p99 {:>8.3}  max {:>8.3}  mean {:>8.3}  (n={})",
            self.q(0.5),
            self.q(0.99),
            self.q(1.0),
            self.mean(),
            self.0.len()
        )
    }
}

/// A `key: value` block printed with aligned keys.
struct Table {
    title: String,
    rows: Vec<(String, String)>,
}

impl Table {
    fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            rows: Vec::new(),
        }
    }
    fn row(&mut self, k: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.rows.push((k.into(), v.into()));
        self
    }
    fn print(&self) {
        let w = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = format!("\n== {} ==\n", self.title);
        for (k, v) in &self.rows {
            let _ = writeln!(out, "  {k:<w$}  {v}");
        }
        print!("{out}");
    }
}

/// `Some(kB)` of a `/proc/self/status` line such as `VmHWM` (Linux only).
fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) the process has used so far, from `/proc/self/stat`, and the
/// machine's busy and total CPU ticks from `/proc/stat` (Linux only; the kernel reports both in
/// USER_HZ = 100 ticks a second).
#[derive(Clone, Copy)]
struct CpuMark {
    process: Duration,
    machine_busy: u64,
    machine_total: u64,
    /// Time the hypervisor gave this machine's CPUs to others (counted in `machine_busy`).
    machine_steal: u64,
}

fn cpu_time() -> Option<CpuMark> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let f: Vec<&str> = s.get(s.rfind(')')? + 2..)?.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // "cpu  user nice system idle iowait irq softirq steal ...": idle and iowait are not busy.
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let all: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = all.iter().sum();
    let idle = all.get(3)? + all.get(4)?;
    Some(CpuMark {
        process: Duration::from_millis(ticks * 10),
        machine_busy: total - idle,
        machine_total: total,
        machine_steal: *all.get(7).unwrap_or(&0),
    })
}

/// CPU milliseconds per request over a phase, the rate all CPUs could sustain at that cost,
/// and how busy the whole machine was (the database server included, when it runs here).
fn cpu_per_request(before: Option<CpuMark>, requests: usize) -> String {
    let (Some(b), Some(a)) = (before, cpu_time()) else {
        return "n/a".into();
    };
    let per = (a.process - b.process).as_secs_f64() * 1000.0 / requests.max(1) as f64;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let total = a.machine_total.saturating_sub(b.machine_total).max(1) as f64;
    let busy = a.machine_busy.saturating_sub(b.machine_busy) as f64;
    let steal = a.machine_steal.saturating_sub(b.machine_steal) as f64;
    let machine_per = busy * 10.0 / requests.max(1) as f64;
    format!(
        "{per:.2} ms per request in this process (server and clients): CPU-bound ceiling about {:.0}/s on {cpus} CPUs; \
         whole machine {:.0} % busy ({:.0} % stolen by the hypervisor), {machine_per:.2} ms per request (ceiling about {:.0}/s)",
        cpus * 1000.0 / per,
        100.0 * busy / total,
        100.0 * steal / total,
        cpus * 1000.0 / machine_per.max(0.001)
    )
}

/// Resets the peak-RSS counter (`VmHWM`) to the current RSS (Linux 4.0+); false if refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a (no /proc/self/status)".into())
}

fn machine(bench: &Bench, data: &DataArgs) -> Table {
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
    let mut t = Table::new("revisit bench");
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
            std::env::var("REVISIT_LOG").unwrap_or_else(|_| "info (default: a line per request)".into()),
        )
        .row("database", bench.database.clone())
        .row(
            "data",
            format!(
                "{} technicians x {} days x {} visits/day aimed: {} visits, {} work centers (seed {})",
                data.technicians(),
                data.days,
                data.visits_per_day(),
                bench.visits,
                bench.setup.work_centers.len(),
                data.seed
            ),
        )
        .row("seeding", format!("{:.1} s", bench.seeding.as_secs_f64()))
        .row("peak memory after seeding", mib(bench.peak_setup_kib));
    t
}

fn verdict(ok: bool, how: String) -> String {
    if ok {
        format!("MET ({how})")
    } else {
        format!("MISSED ({how})")
    }
}

// ---------------------------------------------------------------------------------------------
// bench search

/// Time spent in each step of one search, the steps `Builtin::search` takes.
#[derive(Default)]
struct Phases {
    setup: Lat,
    visits_read: Lat,
    visits_shape: Lat,
    pure: Lat,
    rows: usize,
}

/// Repeats the steps of `Builtin::search` one by one with a clock around each: reading the
/// set-up, reading the visits of the work center's technicians, shaping them, the pure search.
async fn search_in_steps(
    b: &Bench,
    original: Option<&WorkOrder>,
    req: &BookJob,
    now: Timestamp,
    ph: &mut Phases,
) -> anyhow::Result<()> {
    let store = b.state.store.as_ref();
    let t = Instant::now();
    let setup = builtin::load_setup(store, &b.entity).await?;
    ph.setup.push(t.elapsed());
    let job = builtin::job_for(&setup, original, req)?;
    let wc = builtin::work_center_of(&setup, &job);
    let techs = builtin::techs_of(&setup, wc);
    let days = wc.map(|w| i64::from(w.policy.horizon_days)).unwrap_or(14) + 2;
    let q = VisitQuery {
        techs,
        from_ms: now.as_millisecond() - 86_400_000,
        to_ms: now.as_millisecond() + days * 86_400_000,
    };
    let t = Instant::now();
    let rows = store.list_visits(&b.entity, &q).await?;
    ph.visits_read.push(t.elapsed());
    ph.rows += rows.len();
    let t = Instant::now();
    let visits = builtin::visits_by_tech(&setup, rows);
    ph.visits_shape.push(t.elapsed());
    let snap = Snapshot {
        work_centers: &setup.work_centers,
        technicians: &setup.technicians,
        visits: &visits,
    };
    let t = Instant::now();
    std::hint::black_box(sched::search(&snap, &job, now));
    ph.pure.push(t.elapsed());
    Ok(())
}

async fn search(a: SearchArgs, config: Config) -> anyhow::Result<()> {
    let b = Bench::start(&a.data, config).await?;
    let mut head = machine(&b, &a.data);
    head.row(
        "search run",
        format!(
            "{} in-process searches, then {} HTTP clients for {} s",
            a.iterations, a.clients, a.seconds
        ),
    );
    head.print();

    let reset = reset_peak();
    let rss_start = proc_status_kib("VmRSS");

    // (1) In process: `Builtin::search`, which reads the database as a request does.
    let sched = Builtin::new(b.state.store.clone(), b.state.config.booking_queue_wait);
    let mut rng = StdRng::seed_from_u64(a.data.seed ^ 0x5ea);
    let empty = BookJob::parse(Map::new())?;
    let mut total = Lat::default();
    let mut phases = Phases::default();
    let (mut offers, mut none, mut searches) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    for i in 0..a.iterations + 10 {
        if started.elapsed() > MAX_PHASE {
            break;
        }
        // Half of the jobs follow up a generated visit (its type, place and technician), half
        // are a random type at a random place near a random work center.
        let (original, req) = if i % 2 == 0 && !b.sample.is_empty() {
            (
                Some(&b.sample[rng.gen_range(0..b.sample.len())]),
                empty.clone(),
            )
        } else {
            (None, BookJob::parse(search_body(&mut rng, &b.setup))?)
        };
        let now = Timestamp::now();
        let t = Instant::now();
        let out = sched.search(&b.entity, original, &req, now).await?;
        let took = t.elapsed();
        if i < 10 {
            continue; // warm-up
        }
        total.push(took);
        searches += 1;
        offers += out.offers.len();
        none += usize::from(out.offers.is_empty());
        search_in_steps(&b, original, &req, now, &mut phases).await?;
    }
    // The fixed cost of one database round trip through the pool, for scale.
    let mut ping = Lat::default();
    for _ in 0..200 {
        let t = Instant::now();
        b.state.store.ping().await?;
        ping.push(t.elapsed());
    }
    let in_process_peak = proc_status_kib("VmHWM");

    // (2) Over HTTP: OpenSlots as the dispatcher, C clients for S seconds.
    let http = http_search(&b, a.clients, Duration::from_secs(a.seconds), a.data.seed).await?;
    let peak = proc_status_kib("VmHWM");

    let total = total.sorted();
    let mut t = Table::new(
        "slot search in process (Builtin::search: version check, cache, search), ms; below it, the steps of an uncached search for reference",
    );
    t.row("search", total.summary());
    t.row(
        "  uncached: load_setup (3 reads)",
        phases.setup.clone().sorted().summary(),
    );
    t.row(
        "  uncached: list_visits (DB read)",
        phases.visits_read.clone().sorted().summary(),
    );
    t.row(
        "  uncached: visits_by_tech (shape)",
        phases.visits_shape.clone().sorted().summary(),
    );
    t.row(
        "  revisit_scheduler::search (pure)",
        phases.pure.clone().sorted().summary(),
    );
    t.row("store.ping (SELECT 1)", ping.sorted().summary());
    t.row(
        "visit rows an uncached search reads",
        format!("{:.0}", phases.rows as f64 / searches.max(1) as f64),
    );
    t.row(
        "offers per search",
        format!(
            "{:.1} on average; {none} of {searches} searches offered nothing",
            offers as f64 / searches.max(1) as f64
        ),
    );
    t.print();

    let mut t = Table::new(format!(
        "slot search over HTTP (POST OpenSlots, {} clients, {:.1} s)",
        a.clients,
        http.elapsed.as_secs_f64()
    ));
    let ok = http.statuses.get(&200).copied().unwrap_or(0);
    let rate = ok as f64 / http.elapsed.as_secs_f64();
    t.row("searches/s (200s)", format!("{rate:.0}"));
    t.row("statuses", format!("{:?}", http.statuses));
    t.row("latency ms", http.latency.summary());
    t.row("CPU", http.cpu.clone());
    if let Some(e) = &http.first_error {
        t.row("first non-200", e.clone());
    }
    t.print();

    let mut t = Table::new("memory (VmHWM = peak resident set)");
    t.row("peak during seeding", mib(b.peak_setup_kib));
    if reset {
        t.row("resident when measuring began", mib(rss_start));
        t.row("peak during in-process searches", mib(in_process_peak));
        t.row("peak during the HTTP phase too", mib(peak));
    } else {
        t.row("peak of the whole process", mib(peak));
    }
    t.print();

    let big = a.data.technicians() >= 500;
    let (limit, label) = if big {
        (50.0, "50 ms")
    } else {
        (10.0, "10 ms")
    };
    let p99 = total.q(0.99);
    let mut t = Table::new("targets");
    t.row(
        format!("search p99 <= {label}"),
        verdict(
            p99 <= limit,
            format!(
                "p99 {p99:.2} ms = {:.0}% of the target",
                p99 / limit * 100.0
            ),
        ),
    );
    if big {
        let gib = peak.unwrap_or(u64::MAX) as f64 / 1024.0 / 1024.0;
        t.row(
            "peak memory < 1 GiB",
            verdict(gib < 1.0, format!("{:.2} GiB", gib)),
        );
    }
    t.row(
        ">= 2,000 searches/s over HTTP",
        verdict(
            rate >= 2000.0,
            format!("{rate:.0}/s = {:.0}% of the target", rate / 2000.0 * 100.0),
        ),
    );
    t.print();
    b.stop().await;
    Ok(())
}

struct HttpRun {
    elapsed: Duration,
    statuses: BTreeMap<u16, usize>,
    latency: Lat,
    first_error: Option<String>,
    cpu: String,
}

async fn http_search(
    b: &Bench,
    clients: usize,
    length: Duration,
    seed: u64,
) -> anyhow::Result<HttpRun> {
    let url = format!("{}/seiapi/v3/trans/Appointments/OpenSlots", b.base);
    let setup = Arc::new(builtin::load_setup(b.state.store.as_ref(), &b.entity).await?);
    let length = length.min(MAX_PHASE);
    let cpu = cpu_time();
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for c in 0..clients.max(1) {
        let (url, token, setup) = (url.clone(), b.token.clone(), setup.clone());
        let client = http_client()?;
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(c as u64));
            let mut lat = Lat::default();
            let mut statuses = BTreeMap::<u16, usize>::new();
            let mut first_error = None;
            while Instant::now() < deadline {
                let body = search_body(&mut rng, &setup);
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .header("x-access-token", &token)
                    .json(&body)
                    .send()
                    .await;
                let status = match res {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let text = r.text().await.unwrap_or_default();
                        if s != 200 && first_error.is_none() {
                            first_error = Some(format!("{s}: {text}"));
                        }
                        s
                    }
                    Err(e) => {
                        first_error.get_or_insert_with(|| format!("transport: {e}"));
                        0
                    }
                };
                lat.push(t.elapsed());
                *statuses.entry(status).or_default() += 1;
            }
            (lat, statuses, first_error)
        }));
    }
    let mut run = HttpRun {
        elapsed: Duration::ZERO,
        statuses: BTreeMap::new(),
        latency: Lat::default(),
        first_error: None,
        cpu: String::new(),
    };
    for t in tasks {
        let (lat, st, err) = t.await?;
        run.latency.extend(lat);
        for (k, v) in st {
            *run.statuses.entry(k).or_default() += v;
        }
        if run.first_error.is_none() {
            run.first_error = err;
        }
    }
    run.elapsed = started.elapsed();
    run.cpu = cpu_per_request(cpu, run.latency.0.len());
    run.latency = run.latency.sorted();
    Ok(run)
}

// ---------------------------------------------------------------------------------------------
// bench book

/// Closed Incomplete (4097, reason 2001) MAINT orders, one per entry of `work_centers`, each of
/// a technician of that work center and placed near it: the originals whose follow-ups the
/// clients book (`BENCH-00000`, `BENCH-00001`, ... in that order).
fn originals(b: &Bench, work_centers: &[&str], seed: u64) -> anyhow::Result<Vec<WorkOrder>> {
    let mut techs: HashMap<&str, Vec<&str>> = HashMap::new();
    for t in &b.setup.technicians {
        for s in &t.service_area_ids {
            techs
                .entry(s.as_str())
                .or_default()
                .push(t.user_name.as_str());
        }
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0xb00c);
    work_centers
        .iter()
        .enumerate()
        .map(|(i, &wc_id)| {
            let wc = b
                .work_center(wc_id)
                .with_context(|| format!("the generated data has no {wc_id} work center"))?;
            let techs = techs
                .get(wc_id)
                .with_context(|| format!("no technician works in {wc_id}"))?;
            let num = format!("BENCH-{i:05}");
            let p = crate::demo::near(&mut rng, wc.location(), 9.0);
            let body = json!({
                "OrderNum": num,
                "OrderType": "MAINT",
                "OrderStatus": 4097,
                "ReasonCode": "2001",
                "UserName": techs[i % techs.len()],
                "Description": "Routine maintenance, not finished",
                "Account": {"AccountNum": format!("BACCT-{i:05}"), "AccountType": "1002", "Name": format!("Bench customer {i}")},
                "Location": {
                    "LocationNum": format!("BLOC-{i:05}"),
                    "Name": format!("Bench residence {i}"),
                    "ServiceAreaID": wc_id,
                    "Address": {
                        "AddrLine1": format!("{} W Madison St", 100 + i),
                        "City": "Chicago", "Region": "IL", "Country": "US",
                        "Lat": format!("{:.6}", p.lat), "Lon": format!("{:.6}", p.lon),
                    },
                },
            });
            let n = WorkOrderNum::parse(&num).map_err(anyhow::Error::msg)?;
            let Value::Object(m) = body else {
                unreachable!("a JSON object literal")
            };
            Ok(WorkOrder::parse(&n, m)?)
        })
        .collect()
}

/// Every window the searches offer, as `(work center, TimeConstraints item)`: one dispatcher
/// search per work center and local day of its horizon, for a MAINT visit at the work center,
/// narrowed to that day by a customer-availability period (type 1002). A search returns at most
/// `max_slots` windows; a day has fewer, so this finds them all.
async fn offered_windows(b: &Bench) -> anyhow::Result<(Vec<(String, Value)>, usize)> {
    let client = http_client()?;
    let url = format!("{}/seiapi/v3/trans/Appointments/OpenSlots", b.base);
    let (mut out, mut searches) = (Vec::new(), 0);
    for wc in &b.setup.work_centers {
        let tz = TimeZone::get(&wc.time_zone)?;
        let today = Timestamp::now().to_zoned(tz.clone()).date();
        for d in 0..=i64::from(wc.policy.horizon_days) {
            let day = today.checked_add(jiff::Span::new().days(d))?;
            let start = day.to_zoned(tz.clone())?.timestamp();
            let end = day.tomorrow()?.to_zoned(tz.clone())?.timestamp();
            let body = json!({
                "OrderType": "MAINT",
                "Location": {
                    "ServiceAreaID": wc.service_area_id,
                    "Address": {"Lat": format!("{:.6}", wc.lat), "Lon": format!("{:.6}", wc.lon)},
                },
                "TimeConstraints": [{"Type": "1002", "Period": {
                    "Start": crate::domain::time::format(start),
                    "End": crate::domain::time::format(end),
                }}],
            });
            let r = client
                .post(&url)
                .header("x-access-token", &b.token)
                .json(&body)
                .send()
                .await?;
            let status = r.status();
            let found: Value = r.json().await?;
            anyhow::ensure!(
                status.is_success(),
                "a search before the run failed: {status} {found}"
            );
            searches += 1;
            for w in found["TimeConstraints"].as_array().into_iter().flatten() {
                out.push((wc.service_area_id.clone(), w.clone()));
            }
        }
    }
    Ok((out, searches))
}

#[derive(Default)]
struct BookRun {
    elapsed: Duration,
    statuses: BTreeMap<u16, usize>,
    /// 409s by problem type.
    conflicts: BTreeMap<String, usize>,
    ok: Lat,
    refused: Lat,
    other: Lat,
    first_other: Option<String>,
    cpu: String,
}

async fn book(mut a: BookArgs, config: Config) -> anyhow::Result<()> {
    if a.spread {
        // Room for every booking: the standard data's number of booked visits (about 3,400)
        // over twice the fleet, so the run measures bookings, not refusals of full windows
        // (50 technicians at 6 visits a day have room for only about 2,800 more).
        a.data.technicians.get_or_insert(100);
        a.data.visits_per_day.get_or_insert(3);
    }
    let b = Bench::start(&a.data, config).await?;
    let bookings = a.bookings.unwrap_or(if a.spread { 4000 } else { 2000 });
    let mut head = machine(&b, &a.data);
    let store = b.state.store.clone();

    // Which window each original's follow-up asks for (`plan[i]` for `BENCH-{i}`), and the work
    // center of each original.
    let (plan, work_centers): (Vec<Value>, Vec<&str>) = if a.spread {
        let (mut slots, searches) = offered_windows(&b).await?;
        anyhow::ensure!(
            !slots.is_empty(),
            "the searches before the run offered no window"
        );
        // Neighbouring bookings (those in flight together) go to different days and work
        // centers; every window gets about the same number.
        slots.shuffle(&mut StdRng::seed_from_u64(a.data.seed ^ 0x5b7e));
        let dates: std::collections::BTreeSet<&str> = slots
            .iter()
            .filter_map(|(_, w)| w["Period"]["Start"].as_str()?.get(..10))
            .collect();
        head.row(
            "booking run",
            format!(
                "{bookings} originals, {} HTTP clients, spread: each original books one of the {} windows {searches} searches offered ({} work centers, {} dates from {} to {}), round robin over the windows shuffled, {:.1} bookings a window",
                a.clients,
                slots.len(),
                b.setup.work_centers.len(),
                dates.len(),
                dates.first().unwrap_or(&"?"),
                dates.last().unwrap_or(&"?"),
                bookings as f64 / slots.len() as f64
            ),
        );
        (0..bookings)
            .map(|i| {
                let (wc, w) = &slots[i % slots.len()];
                let wc = b
                    .setup
                    .work_centers
                    .iter()
                    .find(|x| &x.service_area_id == wc)
                    .map_or(BOOK_WC, |x| x.service_area_id.as_str());
                (w["Period"].clone(), wc)
            })
            .unzip()
    } else {
        head.row(
            "booking run",
            format!(
                "{bookings} originals, {} HTTP clients, {} window(s) round robin",
                a.clients, a.windows
            ),
        );
        (Vec::new(), vec![BOOK_WC; bookings])
    };
    let orders = originals(&b, &work_centers, a.data.seed)?;
    for chunk in orders.chunks(2000) {
        store.import_work_orders(&b.entity, chunk).await?;
    }
    drop(orders);

    let plan = if a.spread {
        plan
    } else {
        // One search before the run names the windows everyone books.
        let client = http_client()?;
        let r = client
            .post(format!("{}/seiapi/v3/trans/Appointments/OpenSlots", b.base))
            .header("x-access-token", &b.token)
            .json(&json!({"OriginalOrderNum": "BENCH-00000"}))
            .send()
            .await?;
        let status = r.status();
        let found: Value = r.json().await?;
        anyhow::ensure!(
            status.is_success(),
            "the search before the run failed: {status} {found}"
        );
        let windows: Vec<Value> = found["TimeConstraints"]
            .as_array()
            .map(|v| v.iter().take(a.windows.max(1)).cloned().collect())
            .unwrap_or_default();
        anyhow::ensure!(
            !windows.is_empty(),
            "the search before the run offered no window: {found}"
        );
        head.row(
            "windows booked",
            windows
                .iter()
                .filter_map(|w| w["Desc"].as_str())
                .collect::<Vec<_>>()
                .join(" | "),
        );
        (0..bookings)
            .map(|i| windows[i % windows.len()]["Period"].clone())
            .collect()
    };

    // Extra nodes on the same database, each with a state of its own.
    let mut bases = vec![b.base.clone()];
    let mut extra = Vec::new();
    for _ in 1..a.nodes.max(1) {
        let state = AppState::build((*b.state.config).clone()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        bases.push(format!("http://{}", listener.local_addr()?));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        extra.push((stop, server));
    }
    head.row(
        "nodes",
        format!("{} (clients spread round robin)", bases.len()),
    );
    head.print();
    let run = book_run(&b, &bases, a.clients, plan).await?;
    for (stop, server) in extra {
        let _ = stop.send(());
        let _ = server.await;
    }

    // The check, in the database itself: every technician's open visits (whole range).
    let rows = store
        .list_visits(
            &b.entity,
            &VisitQuery {
                techs: Vec::new(),
                from_ms: 0,
                to_ms: i64::MAX / 2,
            },
        )
        .await?;
    let booked_rows = rows
        .iter()
        .filter(|r| r.order_num.starts_with("BENCH-"))
        .count();
    let mut per_original: HashMap<&str, usize> = HashMap::new();
    for r in rows.iter().filter(|r| r.order_num.starts_with("BENCH-")) {
        let orig = r.order_num.split("-F").next().unwrap_or(&r.order_num);
        *per_original.entry(orig).or_default() += 1;
    }
    let twice = per_original.values().filter(|n| **n > 1).count();
    let total_rows = rows.len();
    let by_tech = builtin::visits_by_tech(&b.setup, rows);
    let (mut overlaps, mut day_fail, mut shift_fail) = (0usize, Vec::new(), 0usize);
    for (tech, visits) in &by_tech {
        overlaps += visits.windows(2).filter(|p| p[1].start < p[0].end).count();
        let Some(t) = b.setup.technicians.iter().find(|t| &t.user_name == tech) else {
            day_fail.push(format!("{tech}: not a technician of the set-up"));
            continue;
        };
        let wc = t
            .service_area_ids
            .first()
            .and_then(|id| b.work_center(id))
            .context("a technician without a work center")?;
        let tz = TimeZone::get(&wc.time_zone)?;
        let travel = GreatCircle::from_policy(&wc.policy);
        if let Err(e) = sched::check_day(t, &tz, visits, &travel) {
            day_fail.push(format!("{tech}: {e}"));
        }
        if sched::check_shift_bounds(t, &tz, visits, &travel).is_err() {
            shift_fail += 1;
        }
    }

    let secs = run.elapsed.as_secs_f64();
    let ok = run.statuses.get(&200).copied().unwrap_or(0);
    let refused = run.statuses.get(&409).copied().unwrap_or(0);
    let requests: usize = run.statuses.values().sum();
    let others = requests - ok - refused;
    let mut all = run.ok.clone();
    all.extend(run.refused.clone());
    all.extend(run.other.clone());
    let all = all.sorted();
    let mut t = Table::new(format!(
        "{} booking over HTTP (POST WorkOrder/{{id}}/Followup, {} clients, {secs:.2} s)",
        if a.spread { "spread" } else { "contended" },
        a.clients
    ));
    t.row(
        "requests/s (200 + 409)",
        format!("{:.0}", requests as f64 / secs),
    )
    .row(
        "booked/s (200)",
        format!("{:.0}  ({ok} bookings)", ok as f64 / secs),
    )
    .row(
        "answers",
        format!(
            "{ok} x 200, {refused} x 409, {others} other ({:.1} % booked)",
            100.0 * ok as f64 / requests.max(1) as f64
        ),
    )
    .row(
        "refused (409)",
        format!("{refused}  by type: {:?}", run.conflicts),
    )
    .row("other statuses", format!("{others}  {:?}", run.statuses))
    .row("latency ms, all answers", all.summary())
    .row("latency ms, 200", run.ok.summary())
    .row("latency ms, 409", run.refused.summary())
    .row("CPU", run.cpu.clone());
    if others > 0 {
        t.row("latency ms, other", run.other.summary());
    }
    if let Some(e) = &run.first_other {
        t.row("first other answer", e.clone());
    }
    t.print();

    let mut t = Table::new("double-booking check in the database (all open visits)");
    t.row("open visits", total_rows.to_string())
        .row(
            "follow-ups stored",
            format!("{booked_rows} (200 answers: {ok})"),
        )
        .row("originals with more than one follow-up", twice.to_string())
        .row(
            "overlapping visit pairs (double bookings)",
            overlaps.to_string(),
        )
        .row(
            "technicians failing check_day",
            format!("{} of {}", day_fail.len(), by_tech.len()),
        )
        .row(
            "technicians failing check_shift_bounds",
            format!("{shift_fail} of {}", by_tech.len()),
        );
    for f in day_fail.iter().take(5) {
        t.row("  check_day", f.clone());
    }
    t.print();

    let rate = requests as f64 / secs;
    let mut t = Table::new("targets");
    if a.spread {
        // The targets for spread bookings: 1,000 booked/s on SQLite, 500 on PostgreSQL
        // with two nodes.
        let booked = ok as f64 / secs;
        let target = if b.database.starts_with("PostgreSQL") {
            500.0
        } else {
            1000.0
        };
        t.row(
            format!(">= {target:.0} booked/s (200 answers, spread)"),
            verdict(
                booked >= target,
                format!(
                    "{booked:.0}/s = {:.0}% of the target",
                    booked / target * 100.0
                ),
            ),
        )
        .row(
            "the run measured bookings (>= 90 % of answers 200)",
            verdict(
                ok * 10 >= requests * 9,
                format!("{:.1} %", 100.0 * ok as f64 / requests.max(1) as f64),
            ),
        );
    } else {
        t.row(
            ">= 500 contended bookings/s (requests answered)",
            verdict(
                rate >= 500.0,
                format!("{rate:.0}/s = {:.0}% of the target", rate / 500.0 * 100.0),
            ),
        );
    }
    t.row(
        "0 answers other than 200/409",
        verdict(others == 0, others.to_string()),
    )
    .row(
        "0 double bookings",
        verdict(
            overlaps == 0 && day_fail.is_empty() && twice == 0 && booked_rows == ok,
            format!(
                "{overlaps} overlaps, {} check_day failures, {twice} originals booked twice, {booked_rows} stored for {ok} answered",
                day_fail.len()
            ),
        ),
    );
    t.print();
    b.stop().await;
    Ok(())
}

/// `plan[i]` is the period the follow-up of `BENCH-{i}` asks for; the clients take the next
/// booking of the plan until it is done (or `MAX_PHASE` has passed).
async fn book_run(
    b: &Bench,
    bases: &[String],
    clients: usize,
    plan: Vec<Value>,
) -> anyhow::Result<BookRun> {
    let next = Arc::new(AtomicUsize::new(0));
    let plan = Arc::new(plan);
    let cpu = cpu_time();
    let started = Instant::now();
    let deadline = started + MAX_PHASE;
    let mut tasks = Vec::new();
    for k in 0..clients.max(1) {
        let (next, plan) = (next.clone(), plan.clone());
        let (base, token) = (bases[k % bases.len()].clone(), b.token.clone());
        let client = http_client()?;
        tasks.push(tokio::spawn(async move {
            let mut run = BookRun::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.len() || Instant::now() > deadline {
                    break;
                }
                let body = json!({"TimeConstraints": [{"Type": "1001", "Period": plan[i]}]});
                let t = Instant::now();
                let res = client
                    .post(format!(
                        "{base}/seiapi/v3/trans/WorkOrder/BENCH-{i:05}/Followup"
                    ))
                    .header("x-access-token", &token)
                    .json(&body)
                    .send()
                    .await;
                let (status, text) = match res {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        (s, r.text().await.unwrap_or_default())
                    }
                    Err(e) => (0, format!("transport: {e}")),
                };
                let took = t.elapsed();
                *run.statuses.entry(status).or_default() += 1;
                match status {
                    200 => run.ok.push(took),
                    409 => {
                        run.refused.push(took);
                        let kind = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v["type"].as_str().map(str::to_string))
                            .unwrap_or_else(|| "?".into());
                        *run.conflicts.entry(kind).or_default() += 1;
                    }
                    _ => {
                        run.other.push(took);
                        run.first_other
                            .get_or_insert_with(|| format!("{status}: {text}"));
                    }
                }
            }
            run
        }));
    }
    let mut all = BookRun::default();
    for t in tasks {
        let r = t.await?;
        for (k, v) in r.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
        for (k, v) in r.conflicts {
            *all.conflicts.entry(k).or_default() += v;
        }
        all.ok.extend(r.ok);
        all.refused.extend(r.refused);
        all.other.extend(r.other);
        if all.first_other.is_none() {
            all.first_other = r.first_other;
        }
    }
    all.elapsed = started.elapsed();
    all.cpu = cpu_per_request(cpu, all.statuses.values().sum());
    all.ok = all.ok.sorted();
    all.refused = all.refused.sorted();
    all.other = all.other.sorted();
    Ok(all)
}
