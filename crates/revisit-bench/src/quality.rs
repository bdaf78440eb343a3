//! `revisit-bench quality`: route quality of the server as a company would run it. A seeded city
//! (30 km across, T technicians with homes spread over it, shifts 08:00-20:00 every day, three
//! 4-hour windows a day) is set up over HTTP; N one-hour follow-ups, spread uniformly over the
//! city, are each searched (`OpenSlots`) and booked (`Followup`) one at a time over HTTP, the
//! customer taking the first window offered or the cheapest (`Best`, least `AddedTravelMinutes`);
//! meanwhile the server's own background re-optimisation after bookings runs or not
//! (`--after-booking`); then the coming days are re-optimised on demand
//! (`POST /scheduling/v1/reoptimize`). Printed: bookings and refusals, the travel as booked and
//! re-optimised, the time a booking and the final run took.
//!
//! `--export FILE` writes the instance (technicians, the booked jobs with the window each was
//! promised, the refused jobs with every window they could have had, the travel matrix in
//! seconds the server used) for `bench/vroom_compare.py`, which solves the same jobs with VROOM
//! keeping each job in its promised day and window.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};
use rand::{Rng, SeedableRng, rngs::StdRng};
use revisit::{
    app::AppState,
    config::{Config, Secret},
    domain::{EntityId, Role, UserName, time},
};
use revisit_scheduler::{GeoPoint, GreatCircle, Policy, Travel};
use serde_json::{Value, json};

use crate::{
    harness::{hash, http_client, login, random_hex, serve},
    report::nearest_rank,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Order {
    /// Offers in time order (the default policy).
    Date,
    /// `OfferOrder: Cost`: the cheapest first.
    Cost,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Customer {
    /// Takes the first window offered.
    First,
    /// Takes the cheapest: a `Best` window with the least `AddedTravelMinutes`.
    Best,
}

#[derive(Args, Debug)]
pub(crate) struct QualityArgs {
    #[arg(long, default_value_t = 8)]
    technicians: usize,
    /// Days booked, from tomorrow.
    #[arg(long, default_value_t = 4)]
    days: u32,
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Order::Cost)]
    order: Order,
    #[arg(long, value_enum, default_value_t = Customer::First)]
    customer: Customer,
    /// The server re-optimises in the background after bookings (debounce 0: as soon as its
    /// 250 ms tick sees a booked date), as in production with its default on.
    #[arg(long)]
    after_booking: bool,
    /// Milliseconds between one customer's booking and the next one's search. Real bookings
    /// come minutes apart, so the background runs see every booking; with 0 the bench books
    /// faster than the runs' 250 ms tick.
    #[arg(long, default_value_t = 0)]
    pace_ms: u64,
    /// Iterations of the final on-demand run.
    #[arg(long, default_value_t = 20_000)]
    iterations: u64,
    /// Write the instance here for bench/vroom_compare.py.
    #[arg(long)]
    export: Option<String>,
}

const ENTITY: &str = "bench-quality";
const AREA: &str = "CITY";
const ZONE: &str = "America/Chicago";
const CENTER: (f64, f64) = (41.88, -87.63);
const WEEK: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn spot(rng: &mut StdRng) -> GeoPoint {
    GeoPoint {
        lat: CENTER.0 + rng.gen_range(-15.0..15.0) / 111.2,
        lon: CENTER.1 + rng.gen_range(-15.0..15.0) / 82.9,
    }
}

fn policy(args: &QualityArgs) -> Value {
    json!({
        "Windows": [
            {"Days": WEEK, "Start": "08:00", "End": "12:00"},
            {"Days": WEEK, "Start": "12:00", "End": "16:00"},
            {"Days": WEEK, "Start": "16:00", "End": "20:00"},
        ],
        "HorizonDays": args.days + 1,
        "MaxSlots": 3 * (args.days as usize + 1),
        // No preferred technician: the originals are the dispatcher's, as in the crate's
        // `quality` example.
        "NonOriginalPenaltyMinutes": 0,
        "OfferOrder": match args.order { Order::Date => "Chronological", Order::Cost => "Cost" },
        "FreezeMinutes": 0,
    })
}

pub(crate) async fn run(args: QualityArgs, mut config: Config) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; run `cargo run --release -p revisit-bench -- quality` for figures"
        );
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    config.database_url = Secret::new(format!("sqlite:{}", dir.path().join("bench.db").display()));
    config.jwt_secret = Some(Secret::new(random_hex(32)));
    config.reoptimize.after_booking = args.after_booking;
    config.reoptimize.debounce = Duration::ZERO;
    config.reoptimize.max_delay = Duration::ZERO;
    config.reoptimize.nightly_at = None;
    let state = AppState::build(config).await?;
    let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;
    state.store.ensure_entity(&entity).await?;
    let pw = random_hex(12);
    let pw_hash = hash(pw.clone()).await?;
    let user = UserName::parse("admin").map_err(anyhow::Error::msg)?;
    state
        .store
        .add_user(&entity, &user, Role::Admin, &pw_hash)
        .await?;
    let (base, stop, server) = serve(state).await?;
    let client = http_client()?;
    let admin = login(&client, &base, "admin", &pw).await?;
    // The admin sets up the city, books and re-optimises (a dispatcher could do the last two).
    let token = admin.clone();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let mut req = client
                .request(method, format!("{base}{path}"))
                .header("x-access-token", &token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await?;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status.as_u16(), body))
        }
    };
    let ok = |what: &str, (status, body): (u16, Value)| {
        anyhow::ensure!((200..300).contains(&status), "{what}: {status} {body}");
        Ok(body)
    };

    // The city.
    let mut rng = StdRng::seed_from_u64(args.seed);
    let tz = TimeZone::get(ZONE)?;
    let policy_json = policy(&args);
    let pol: Policy = serde_json::from_value(policy_json.clone())?;
    client
        .post(format!("{base}/seiapi/v3/SysConfig/mobility"))
        .header("x-access-token", &admin)
        .json(&json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}}))
        .send()
        .await?
        .error_for_status()?;
    let sched = |kind: &str, id: &str| format!("/scheduling/v1/{kind}/{id}");
    ok(
        "the work center",
        call(
            reqwest::Method::PUT,
            sched("workcenters", AREA),
            Some(
                json!({"ServiceAreaID": AREA, "Name": "City", "TimeZone": ZONE,
                "Lat": CENTER.0, "Lon": CENTER.1, "Policy": policy_json}),
            ),
        )
        .await?,
    )?;
    ok(
        "the order type",
        call(
            reqwest::Method::PUT,
            sched("ordertypes", "FIX"),
            Some(json!({"OrderType": "FIX", "Desc": "Follow-up", "DurationMinutes": 60, "Skills": []})),
        )
        .await?,
    )?;
    let homes: Vec<GeoPoint> = (0..args.technicians).map(|_| spot(&mut rng)).collect();
    for (i, home) in homes.iter().enumerate() {
        let user = format!("t{i:03}");
        ok(
            "a technician",
            call(
                reqwest::Method::PUT,
                sched("technicians", &user),
                Some(
                    json!({"UserName": user, "Name": user, "ServiceAreaIDs": [AREA], "Skills": [],
                    "Home": {"Lat": home.lat, "Lon": home.lon},
                    "Shifts": [{"Days": WEEK, "Start": "08:00", "End": "20:00"}]}),
                ),
            )
            .await?,
        )?;
    }
    let jobs: Vec<GeoPoint> = (0..args.jobs).map(|_| spot(&mut rng)).collect();
    let today = Timestamp::now().to_zoned(tz.clone()).date();
    let first_day = today.tomorrow()?;
    let at = |d: Date, h: i8| -> anyhow::Result<Timestamp> {
        Ok(d.at(h, 0, 0, 0).to_zoned(tz.clone())?.timestamp())
    };
    let from = at(first_day, 0)?;
    let to = at(first_day + jiff::Span::new().days(i64::from(args.days)), 0)?;
    for (j, p) in jobs.iter().enumerate() {
        let start = Timestamp::now() - SignedDuration::from_hours(2);
        ok(
            "an original",
            call(
                reqwest::Method::PUT,
                format!("/seiapi/v3/trans/WorkOrder/J{j}"),
                Some(json!({"OrderNum": format!("J{j}"), "OrderType": "FIX", "OrderStatus": 4097,
                    "ReasonCode": "2001", "CanScheduleFollowup": true,
                    "PlannedStartDate": time::format(start),
                    "PlannedEndDate": time::format(start + SignedDuration::from_hours(1)),
                    "Location": {"LocationNum": format!("L{j}"), "ServiceAreaID": AREA,
                        "Address": {"Lat": format!("{:.5}", p.lat), "Lon": format!("{:.5}", p.lon)}}})),
            )
            .await?,
        )?;
    }

    // One customer at a time: search, choose, book.
    let available =
        json!([{"Type": "1002", "Period": {"Start": time::format(from), "End": time::format(to)}}]);
    let mut booked: Vec<(usize, String, [Timestamp; 2])> = Vec::new();
    let mut refused = Vec::new();
    let mut took = Vec::new();
    let started = Instant::now();
    for j in 0..args.jobs {
        if args.pace_ms > 0 && j > 0 {
            tokio::time::sleep(Duration::from_millis(args.pace_ms)).await;
        }
        let t = Instant::now();
        let found = ok(
            "a search",
            call(
                reqwest::Method::POST,
                "/seiapi/v3/trans/Appointments/OpenSlots".into(),
                Some(json!({"OriginalOrderNum": format!("J{j}"), "TimeConstraints": available})),
            )
            .await?,
        )?;
        let offers = found["TimeConstraints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let chosen = match args.customer {
            Customer::First => offers.first().cloned(),
            Customer::Best => offers
                .iter()
                .filter(|o| o["Best"] == true)
                .min_by_key(|o| o["AddedTravelMinutes"].as_i64().unwrap_or(i64::MAX))
                .cloned(),
        };
        let Some(chosen) = chosen else {
            refused.push(j);
            continue;
        };
        let (status, answer) = call(
            reqwest::Method::POST,
            format!("/seiapi/v3/trans/WorkOrder/J{j}/Followup"),
            Some(json!({"TimeConstraints": [chosen]})),
        )
        .await?;
        took.push(t.elapsed().as_micros() as i64);
        anyhow::ensure!(status == 200, "booking J{j}: {status} {answer}");
        let num = answer["OrderNum"].as_str().context("OrderNum")?.to_string();
        let w = |k: &str| -> anyhow::Result<Timestamp> {
            Ok(chosen["Period"][k].as_str().context("Period")?.parse()?)
        };
        booked.push((j, num, [w("Start")?, w("End")?]));
    }
    let booking_wall = started.elapsed();

    // Where each booked job is, as the server has it now.
    let placed = |nums: Vec<(usize, String)>| {
        let call = &call;
        async move {
            let mut out = Vec::new();
            for (j, num) in nums {
                let o = ok(
                    "a follow-up",
                    call(
                        reqwest::Method::GET,
                        format!("/seiapi/v3/trans/WorkOrder/{num}"),
                        None,
                    )
                    .await?,
                )?;
                let start: Timestamp = o["PlannedStartDate"]
                    .as_str()
                    .context("PlannedStartDate")?
                    .parse()?;
                out.push((
                    j,
                    o["UserName"].as_str().unwrap_or_default().to_string(),
                    start,
                ));
            }
            anyhow::Ok(out)
        }
    };
    let nums: Vec<(usize, String)> = booked.iter().map(|(j, n, _)| (*j, n.clone())).collect();
    // Let a background run that is under way finish, so that "as booked" is what the
    // bookings and the runs after them made.
    if args.after_booking {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let as_booked = placed(nums.clone()).await?;
    let reopt = json!({"ServiceAreaID": AREA, "From": first_day.to_string(), "Days": args.days,
        "Iterations": args.iterations, "Seed": args.seed});
    let t = Instant::now();
    let report = ok(
        "the re-optimisation",
        call(
            reqwest::Method::POST,
            "/scheduling/v1/reoptimize".into(),
            Some(reopt),
        )
        .await?,
    )?;
    let reopt_took = t.elapsed();
    let after = placed(nums).await?;

    // Travel of both plans by the server's own travel model, home to home.
    let gc = GreatCircle::from_policy(&pol);
    let home_of = |user: &str| -> usize { user.trim_start_matches('t').parse().unwrap_or(0) };
    let travel_of = |plan: &[(usize, String, Timestamp)]| -> i64 {
        let mut by: std::collections::BTreeMap<(String, Date), Vec<(Timestamp, usize)>> =
            Default::default();
        for (j, user, start) in plan {
            let day = start.to_zoned(tz.clone()).date();
            by.entry((user.clone(), day))
                .or_default()
                .push((*start, *j));
        }
        let mut total = 0i64;
        for ((user, _), mut stops) in by {
            stops.sort();
            let home = homes[home_of(&user)];
            let mut at = home;
            for (_, j) in stops {
                total += i64::from(gc.minutes(at, jobs[j]));
                at = jobs[j];
            }
            total += i64::from(gc.minutes(at, home));
        }
        total
    };
    let (before_min, after_min) = (travel_of(&as_booked), travel_of(&after));

    took.sort_unstable();
    println!(
        "Route quality over HTTP: {} technicians, {} days from {first_day}, {} jobs, seed {}, offers {:?}, customer {:?}, background re-optimisation after bookings {}, {} ms between bookings",
        args.technicians,
        args.days,
        args.jobs,
        args.seed,
        args.order,
        args.customer,
        if args.after_booking { "on" } else { "off" },
        args.pace_ms
    );
    println!();
    println!("| | |");
    println!("|---|---:|");
    println!("| booked | {} |", booked.len());
    println!("| refused (no window offered) | {} |", refused.len());
    println!(
        "| search + book, p50 / p99 / max ms | {:.1} / {:.1} / {:.1} |",
        nearest_rank(&took, 0.5).unwrap_or(0) as f64 / 1000.0,
        nearest_rank(&took, 0.99).unwrap_or(0) as f64 / 1000.0,
        took.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "| all bookings, wall | {:.1} s |",
        booking_wall.as_secs_f64()
    );
    println!("| travel as booked (min) | {before_min} |");
    println!(
        "| travel re-optimised (min; the server says {} -> {}) | {after_min} |",
        report["TravelBeforeMinutes"], report["TravelAfterMinutes"]
    );
    println!(
        "| final re-optimisation, {} iterations, over HTTP | {:.2} s |",
        args.iterations,
        reopt_took.as_secs_f64()
    );

    if let Some(path) = &args.export {
        let base_s = from.as_second();
        let rel = |t: Timestamp| t.as_second() - base_s;
        let mut locs: Vec<GeoPoint> = homes.clone();
        locs.extend(jobs.iter().copied());
        let matrix: Vec<Vec<i64>> = locs
            .iter()
            .map(|a| {
                locs.iter()
                    .map(|b| i64::from(gc.minutes(*a, *b)) * 60)
                    .collect()
            })
            .collect();
        let mut technicians = Vec::new();
        for i in 0..args.technicians {
            let mut shifts = Vec::new();
            for d in 0..args.days {
                let day = first_day + jiff::Span::new().days(i64::from(d));
                shifts.push([rel(at(day, 8)?), rel(at(day, 20)?)]);
            }
            technicians.push(json!({"id": format!("t{i:03}"), "home": i, "shifts": shifts}));
        }
        let find = |plan: &[(usize, String, Timestamp)], j: usize| {
            plan.iter()
                .find(|p| p.0 == j)
                .map(|p| json!({"tech": p.1, "start": rel(p.2)}))
        };
        let booked_jobs: Vec<Value> = booked
            .iter()
            .map(|(j, _, w)| {
                json!({"id": format!("J{j}"), "location": args.technicians + j, "duration": 3600,
                    "window": [rel(w[0]), rel(w[1])],
                    "day": w[0].to_zoned(tz.clone()).date().to_string(),
                    "booked": find(&as_booked, *j), "reoptimised": find(&after, *j)})
            })
            .collect();
        let mut all_windows = Vec::new();
        for d in 0..args.days {
            let day = first_day + jiff::Span::new().days(i64::from(d));
            for (a, b) in [(8, 12), (12, 16), (16, 20)] {
                all_windows.push([rel(at(day, a)?), rel(at(day, b)?)]);
            }
        }
        let refused_jobs: Vec<Value> = refused
            .iter()
            .map(|j| json!({"id": format!("J{j}"), "location": args.technicians + j, "duration": 3600, "windows": all_windows}))
            .collect();
        let doc = json!({
            "seed": args.seed,
            "offers": format!("{:?}", args.order).to_lowercase(),
            "customer": format!("{:?}{}", args.customer, if args.after_booking { format!("+after-booking/{}ms", args.pace_ms) } else { String::new() }).to_lowercase(),
            "technicians": technicians, "jobs": booked_jobs, "refused": refused_jobs, "matrix": matrix,
            "travel_booked_seconds": before_min * 60, "travel_reoptimised_seconds": after_min * 60,
        });
        std::fs::write(path, serde_json::to_string(&doc)?)
            .with_context(|| format!("writing {path}"))?;
        eprintln!("wrote {path}");
    }
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
