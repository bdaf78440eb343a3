//! `revisit-bench search`: slot-search latency (the pure search in process, then the whole
//! request over HTTP, one client at a time) and slot-search throughput over HTTP.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use jiff::Timestamp;
use rand::{Rng, SeedableRng, rngs::StdRng};
use revisit::config::Config;
use revisit_scheduler::{self as sched, GeoPoint, Job, Snapshot, Visit};
use serde_json::{Map, Value, json};

use crate::{
    check::{OPEN_STATUSES, VisitsByTech},
    harness::{Bench, DataArgs, MAX_PHASE, Setup, http_client},
    report::{Lat, Table, cpu_per_request, cpu_time, mib, proc_status_kib, reset_peak, verdict},
};

#[derive(Args, Debug)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Searches measured one at a time, in process and over HTTP (after 10 unmeasured ones).
    #[arg(long, default_value_t = 500)]
    iterations: usize,
    /// Concurrent HTTP clients of the throughput phase.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Length of the throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// One search to make: the same job in process (for `revisit_scheduler::search`) and as an
/// Appointment Search object (for `OpenSlots`).
#[derive(Clone)]
struct Query {
    job: Job,
    body: Map<String, Value>,
}

/// A job and its search body: an order type, a place, its work center and, for the follow-up
/// of a visit, the technician the customer knows.
fn query(setup: &Setup, order_type: &str, at: GeoPoint, wc: &str, tech: Option<&str>) -> Query {
    let ot = setup.order_types.get(order_type);
    let job = Job {
        duration_minutes: ot.map_or(60, |t| t.duration_minutes),
        skills: ot.map(|t| t.skills.clone()).unwrap_or_default(),
        location: at,
        service_area_id: Some(wc.to_string()),
        preferred_tech: tech.map(str::to_string),
        customer: Vec::new(),
        required_parts: Vec::new(),
    };
    let mut body = json!({
        "OrderType": order_type,
        "Location": {
            "ServiceAreaID": wc,
            "Address": {"Lat": format!("{:.6}", at.lat), "Lon": format!("{:.6}", at.lon)},
        },
    });
    if let Some(t) = tech {
        body["UserName"] = json!(t);
    }
    Query {
        job,
        body: body.as_object().cloned().unwrap_or_default(),
    }
}

/// A random order type at a random place near a random work center.
fn random_query(rng: &mut StdRng, setup: &Setup) -> Query {
    let wc = &setup.work_centers[rng.gen_range(0..setup.work_centers.len())];
    let mut types: Vec<&String> = setup.order_types.keys().collect();
    types.sort();
    let ty = types[rng.gen_range(0..types.len())];
    let at = revisit::demo::near(rng, wc.location(), 9.0);
    query(setup, ty, at, &wc.service_area_id, None)
}

/// The follow-up of a booked visit: its type, its place, its work center, its technician.
fn follow_up_query(setup: &Setup, order: &Value) -> Option<Query> {
    let addr = &order["Location"]["Address"];
    let at = GeoPoint {
        lat: addr["Lat"].as_str()?.parse().ok()?,
        lon: addr["Lon"].as_str()?.parse().ok()?,
    };
    Some(query(
        setup,
        order["OrderType"].as_str()?,
        at,
        order["Location"]["ServiceAreaID"].as_str()?,
        order["UserName"].as_str(),
    ))
}

/// Half of the searches follow up a booked visit of `sample`, half are a random type at a random
/// place.
fn queries(b: &Bench, sample: Vec<Query>, n: usize, seed: u64) -> Vec<Query> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5ea);
    (0..n)
        .map(
            |i| match sample.get(rng.gen_range(0..sample.len().max(1))) {
                Some(q) if i % 2 == 0 => q.clone(),
                _ => random_query(&mut rng, &b.setup),
            },
        )
        .collect()
}

async fn open_slots(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Map<String, Value>,
) -> (u16, String) {
    match client
        .post(url)
        .header("x-access-token", token)
        .json(body)
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, format!("transport: {e}")),
    }
}

pub(crate) async fn run(a: SearchArgs, config: Config) -> anyhow::Result<()> {
    let b = Bench::start(&a.data, config).await?;
    let mut head = b.machine(&a.data);
    head.row(
        "search run",
        format!(
            "{} searches in process, the same {} over HTTP one at a time, then {} HTTP clients for {} s",
            a.iterations, a.iterations, a.clients, a.seconds
        ),
    );
    head.print();

    // The schedule as a client reads it (the in-process searches run on it), and up to 2,000
    // of its visits, chosen at random, to follow up.
    let mut visits = VisitsByTech::default();
    let mut rng = StdRng::seed_from_u64(a.data.seed ^ 0x5eed);
    let (mut sample, mut candidates) = (Vec::<Query>::new(), 0usize);
    let rows = b
        .each_order(OPEN_STATUSES, |o| {
            visits.add(&b.setup, o);
            // Reservoir sampling: each order ends up in the sample with the same chance.
            let Some(q) = follow_up_query(&b.setup, o) else {
                return;
            };
            candidates += 1;
            if sample.len() < 2000 {
                sample.push(q);
            } else if let Some(slot) = sample.get_mut(rng.gen_range(0..candidates)) {
                *slot = q;
            }
        })
        .await?;
    let visits: HashMap<String, Vec<Visit>> = visits.sorted();
    let qs = queries(&b, sample, a.iterations + 10, a.data.seed);

    let reset = reset_peak();
    let rss_start = proc_status_kib("VmRSS");

    // (1) In process: the pure search on the schedule as the database holds it, no I/O.
    let snap = Snapshot {
        work_centers: &b.setup.work_centers,
        technicians: &b.setup.technicians,
        visits: &visits,
    };
    let (mut pure, mut offers, mut none) = (Lat::default(), 0usize, 0usize);
    let started = Instant::now();
    for (i, q) in qs.iter().enumerate() {
        if started.elapsed() > MAX_PHASE {
            break;
        }
        let t = Instant::now();
        let out = std::hint::black_box(sched::search(&snap, &q.job, Timestamp::now()));
        if i >= 10 {
            pure.push(t.elapsed());
            offers += out.offers.len();
            none += usize::from(out.offers.is_empty());
        }
    }
    let in_process_peak = proc_status_kib("VmHWM");

    // (2) The same searches over HTTP, one at a time: what a client waits for (token check,
    // the server's schedule cache brought up to date, the search, JSON both ways).
    let client = http_client()?;
    let url = format!("{}/seiapi/v3/trans/Appointments/OpenSlots", b.base);
    let (mut seq, mut seq_errors, mut first_error) = (Lat::default(), 0usize, None);
    let started = Instant::now();
    for (i, q) in qs.iter().enumerate() {
        if started.elapsed() > MAX_PHASE {
            break;
        }
        let t = Instant::now();
        let (status, text) = open_slots(&client, &url, &b.token, &q.body).await;
        let took = t.elapsed();
        if status != 200 {
            seq_errors += 1;
            first_error.get_or_insert(format!("{status}: {text}"));
        } else if i >= 10 {
            seq.push(took);
        }
    }
    // The fixed cost of an HTTP request and one database round trip (`/readyz` pings the
    // database), for scale.
    let mut ready = Lat::default();
    for _ in 0..200 {
        let t = Instant::now();
        client
            .get(format!("{}/readyz", b.base))
            .send()
            .await?
            .error_for_status()?;
        ready.push(t.elapsed());
    }

    // (3) Throughput over HTTP: OpenSlots as the dispatcher, C clients for S seconds.
    let http = http_search(&b, a.clients, Duration::from_secs(a.seconds), a.data.seed).await?;
    let peak = proc_status_kib("VmHWM");

    let (pure, seq) = (pure.sorted(), seq.sorted());
    let searches = pure.0.len();
    let mut t = Table::new("slot search, one at a time, ms");
    t.row(
        "revisit_scheduler::search (pure, in process)",
        pure.summary(),
    )
    .row("POST OpenSlots over HTTP", seq.summary())
    .row(
        "GET /readyz over HTTP (one SELECT 1)",
        ready.sorted().summary(),
    )
    .row("visits in the schedule", rows.to_string())
    .row(
        "offers per search",
        format!(
            "{:.1} on average; {none} of {searches} searches offered nothing",
            offers as f64 / searches.max(1) as f64
        ),
    );
    if seq_errors > 0 {
        t.row(
            "non-200 answers over HTTP",
            format!(
                "{seq_errors}, the first: {}",
                first_error.unwrap_or_default()
            ),
        );
    }
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
        t.row("peak during the HTTP phases too", mib(peak));
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
    let p99 = seq.q(0.99);
    let mut t = Table::new("targets");
    t.row(
        format!("search p99 <= {label} (over HTTP, one at a time)"),
        verdict(
            p99 <= limit && seq_errors == 0,
            format!(
                "p99 {p99:.2} ms = {:.0}% of the target; {seq_errors} non-200 answers",
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
    // Each client's searches, made before the clock starts.
    let bodies: Vec<Arc<Vec<Map<String, Value>>>> = (0..clients.max(1))
        .map(|c| {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(c as u64));
            Arc::new(
                (0..1000)
                    .map(|_| random_query(&mut rng, &b.setup).body)
                    .collect(),
            )
        })
        .collect();
    let length = length.min(MAX_PHASE);
    let cpu = cpu_time();
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for bodies in bodies {
        let (url, token) = (url.clone(), b.token.clone());
        let client = http_client()?;
        tasks.push(tokio::spawn(async move {
            let mut lat = Lat::default();
            let mut statuses = BTreeMap::<u16, usize>::new();
            let mut first_error = None;
            for body in bodies.iter().cycle() {
                if Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                let (status, text) = open_slots(&client, &url, &token, body).await;
                if status != 200 {
                    first_error.get_or_insert_with(|| format!("{status}: {text}"));
                }
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
