//! `revisit-bench book`: follow-up bookings over HTTP by concurrent clients, then a check of
//! every open visit for double bookings. Contended by default (every request competes for the
//! same few windows: mostly refusals); `--spread` books over every window the searches offer, so
//! most requests succeed.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use jiff::{Timestamp, tz::TimeZone};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use revisit::{app::AppState, config::Config};
use serde_json::{Map, Value, json};

use crate::{
    check::{OPEN_STATUSES, VisitsByTech, check_days},
    harness::{Bench, DataArgs, MAX_PHASE, http_client, serve},
    report::{Lat, Table, cpu_per_request, cpu_time, verdict},
};

/// The work center every contended booking goes to, so the bookings contend.
const BOOK_WC: &str = "CHI-C";

#[derive(Args, Debug)]
pub(crate) struct BookArgs {
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
    /// Notifications on: every booking's `FollowUpBooked` and `VisitMoved` events go to a
    /// receiver on loopback; reports their delivery latency from commit to arrival.
    #[arg(long)]
    notify: bool,
}

/// Closed Incomplete (4097, reason 2001) MAINT orders, one per entry of `work_centers`, each of
/// a technician of that work center and placed near it: the originals whose follow-ups the
/// clients book (`BENCH-00000`, `BENCH-00001`, ... in that order).
fn originals(
    b: &Bench,
    work_centers: &[&str],
    seed: u64,
) -> anyhow::Result<Vec<Map<String, Value>>> {
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
                .setup
                .work_center(wc_id)
                .with_context(|| format!("the generated data has no {wc_id} work center"))?;
            let techs = techs
                .get(wc_id)
                .with_context(|| format!("no technician works in {wc_id}"))?;
            let num = format!("BENCH-{i:05}");
            let p = revisit::demo::near(&mut rng, wc.location(), 9.0);
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
            let Value::Object(m) = body else {
                unreachable!("a JSON object literal")
            };
            Ok(m)
        })
        .collect()
}

/// Every window the searches offer, as `(work center, TimeConstraints item)`, and how many
/// searches that took: one dispatcher search per work center and local day of its horizon, for
/// a MAINT visit at the work center, narrowed to that day by a customer-availability period
/// (type 1002). A search returns at most `max_slots` windows; a day has fewer, so this finds
/// them all.
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
                    "Start": start.to_string(),
                    "End": end.to_string(),
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
    /// The `OrderNum` of every 200 answer: the follow-up orders the server says it wrote.
    booked: Vec<String>,
    ok: Lat,
    refused: Lat,
    other: Lat,
    first_other: Option<String>,
    cpu: String,
}

pub(crate) async fn run(mut a: BookArgs, mut config: Config) -> anyhow::Result<()> {
    if a.spread {
        // Room for every booking: the standard data's number of booked visits (about 3,400)
        // over twice the fleet, so the run measures bookings, not refusals of full windows
        // (50 technicians at 6 visits a day have room for only about 2,800 more).
        a.data.technicians.get_or_insert(100);
        a.data.visits_per_day.get_or_insert(3);
    }
    let receiver = if a.notify {
        config.outbound.allow_private_networks = true;
        Some(crate::notify::Receiver::start().await?)
    } else {
        None
    };
    let b = Bench::start(&a.data, config).await?;
    if let Some(r) = &receiver {
        r.subscribe(&b, &["FollowUpBooked", "VisitMoved"]).await?;
    }
    let bookings = a.bookings.unwrap_or(if a.spread { 4000 } else { 2000 });
    let mut head = b.machine(&a.data);

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
        let dates: BTreeSet<&str> = slots
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
                    .work_center(wc)
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
    let t = Instant::now();
    b.put_orders(originals(&b, &work_centers, a.data.seed)?, 8)
        .await?;
    head.row(
        "originals written",
        format!(
            "{bookings} PUT WorkOrder in {:.1} s",
            t.elapsed().as_secs_f64()
        ),
    );

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
        let (base, stop, server) = serve(state).await?;
        bases.push(base);
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

    // The check, on what the server answers now: every open work order of the entity, read as
    // the dispatcher.
    let mut visits = VisitsByTech::default();
    let mut per_original: HashMap<String, usize> = HashMap::new();
    let mut stored: BTreeSet<String> = BTreeSet::new();
    let (orders, reads) = b.stable_orders(OPEN_STATUSES).await?;
    for o in &orders {
        visits.add(&b.setup, o);
        if let Some(orig) = o["OriginalOrderNum"]
            .as_str()
            .filter(|n| n.starts_with("BENCH-"))
        {
            *per_original.entry(orig.to_string()).or_default() += 1;
            stored.insert(o["OrderNum"].as_str().unwrap_or("?").to_string());
        }
    }
    let twice = per_original.values().filter(|n| **n > 1).count();
    let answered: BTreeSet<String> = run.booked.iter().cloned().collect();
    let unanswered = stored.difference(&answered).count();
    let missing = answered.difference(&stored).count();
    let visits = visits.sorted();
    let open_visits: usize = visits.values().map(Vec::len).sum();
    let check = check_days(&b.setup, &visits);

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
        "{} booking over HTTP (POST WorkOrder/{{id}}/Followup, {} clients, {} node(s), {secs:.2} s)",
        if a.spread { "spread" } else { "contended" },
        a.clients,
        bases.len()
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

    if let Some(r) = &receiver {
        r.report(run.booked.len()).await;
    }

    let mut t = Table::new("double-booking check (every open work order, read over HTTP)");
    t.row(
        "read",
        format!("{reads} read(s) of every open work order until one saw no write meanwhile"),
    )
    .row("open visits", open_visits.to_string())
        .row(
            "follow-ups stored",
            format!(
                "{} (200 answers: {ok}; stored but not answered: {unanswered}; answered but not stored: {missing})",
                stored.len()
            ),
        )
        .row("originals with more than one follow-up", twice.to_string())
        .row(
            "overlapping visit pairs (double bookings)",
            check.overlaps.to_string(),
        )
        .row(
            "technicians failing check_day",
            format!("{} of {}", check.day_failures.len(), check.technicians),
        )
        .row(
            "technicians failing check_shift_bounds",
            format!("{} of {}", check.shift_failures, check.technicians),
        );
    for f in check.day_failures.iter().take(5) {
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
            check.overlaps == 0
                && check.day_failures.is_empty()
                && twice == 0
                && unanswered == 0
                && missing == 0
                && stored.len() == ok,
            format!(
                "{} overlaps, {} check_day failures, {twice} originals booked twice, {} stored for {ok} answered",
                check.overlaps,
                check.day_failures.len(),
                stored.len()
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
                let answer = serde_json::from_str::<Value>(&text).ok();
                match status {
                    200 => {
                        run.ok.push(took);
                        let num = answer.as_ref().and_then(|v| v["OrderNum"].as_str());
                        run.booked.push(num.unwrap_or("?").to_string());
                    }
                    409 => {
                        run.refused.push(took);
                        let kind = answer
                            .as_ref()
                            .and_then(|v| v["type"].as_str())
                            .unwrap_or("?");
                        *run.conflicts.entry(kind.to_string()).or_default() += 1;
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
        all.booked.extend(r.booked);
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
