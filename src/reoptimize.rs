//! Re-optimising booked days (README, "Re-optimisation"): reads a work center's coming days,
//! asks the pure scheduler for a plan with less travel that keeps every promise
//! (`revisit_scheduler::reoptimize`), and commits it one date at a time under the locks bookings
//! and work-order writes take. Whoever writes first wins: a date that changed since it was read
//! is planned again from what it is now.
//!
//! It runs on demand (`POST /scheduling/v1/reoptimize`), in the background a little after
//! bookings (debounced per work center and date), and every night for the coming days. One run
//! at a time per work center: in this process by a lock, across PostgreSQL nodes by an advisory
//! lock held for the run (another node finding it taken leaves the work center to it).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jiff::{Timestamp, civil::Date, tz::TimeZone};
use revisit_scheduler::{self as sched, BookedVisit, Budget, Reoptimize, VisitFacts};

use crate::{
    domain::{DomainError, EntityId, status::OrderStatus, time::Time},
    schedule::{
        ScheduleError,
        builtin::{load_setup, to_visit},
    },
    store::{MoveCommit, PlannedMove, Store, StoreError, VisitQuery, VisitRow},
};

/// Visits of technicians whose shifts are kept in another zone may lie this far outside a date.
const DAY_MARGIN_MS: i64 = 3 * 3_600_000;
/// How often a date is planned again when a write came first.
const MAX_ATTEMPTS: u32 = 3;

/// What to re-optimise.
#[derive(Debug, Clone)]
pub struct Request {
    pub service_area_id: String,
    /// The first local date (default: today in the work center's zone).
    pub from: Option<Date>,
    /// How many dates (default 7).
    pub days: u32,
    /// Report the moves and the travel saved without writing anything.
    pub dry_run: bool,
    pub seed: u64,
    pub iterations: u64,
    /// Stop searching after this long (the result is then still valid, maybe less good).
    pub time_limit: Duration,
    /// Recorded with each move: `reoptimize` (on demand), `after-booking` (the debounced run
    /// after bookings) or `nightly`.
    pub reason: &'static str,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub run_id: String,
    pub dry_run: bool,
    pub moves: Vec<PlannedMove>,
    pub travel_before_minutes: i64,
    pub travel_after_minutes: i64,
    /// Dates whose moves were written, and dates left as they were because they kept changing.
    pub committed: Vec<Date>,
    pub conflicted: Vec<Date>,
    /// Technician-days the search could not touch, with why.
    pub untouched: Vec<(String, Date, String)>,
    /// Another run held the work center (this process or another node): nothing was done.
    pub busy: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReoptError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// Settings of the background runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Run after bookings (debounced).
    pub after_booking: bool,
    /// A work center's date is re-optimised once no booking touched it for this long...
    pub debounce: Duration,
    /// ...or once this long passed since the first booking that touched it.
    pub max_delay: Duration,
    pub iterations_after_booking: u64,
    /// Local time of the nightly run of each work center; `None` for no nightly run.
    pub nightly_at: Option<jiff::civil::Time>,
    pub nightly_days: u32,
    pub nightly_iterations: u64,
}

/// A work center's date, of an entity.
type DateKey = (EntityId, String, Date);

/// The re-optimiser of a process.
pub struct Reoptimizer {
    store: Arc<Store>,
    settings: Settings,
    /// Work centers being re-optimised in this process.
    running: Mutex<HashSet<(EntityId, String)>>,
    /// Dates touched by bookings and not yet re-optimised: when first, when last touched.
    touched: Mutex<HashMap<DateKey, (Instant, Instant)>>,
}

impl Reoptimizer {
    pub fn new(store: Arc<Store>, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            store,
            settings,
            running: Default::default(),
            touched: Default::default(),
        })
    }

    /// Notes that a booking changed `date` of a work center: it is re-optimised once bookings
    /// there pause (`debounce`), or after `max_delay` at the latest.
    pub fn touch(&self, entity: &EntityId, service_area_id: &str, date: Date) {
        if !self.settings.after_booking {
            return;
        }
        let now = Instant::now();
        let mut map = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((entity.clone(), service_area_id.to_string(), date))
            .and_modify(|t| t.1 = now)
            .or_insert((now, now));
    }

    /// Runs the background work until the process ends: debounced runs after bookings, and the
    /// nightly runs.
    pub fn start(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut nightly_done: HashMap<(EntityId, String), Date> = HashMap::new();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut next_nightly_check = Instant::now();
            loop {
                tick.tick().await;
                for (entity, wc, date) in this.due() {
                    let req = Request {
                        service_area_id: wc,
                        from: Some(date),
                        days: 1,
                        dry_run: false,
                        seed: 1,
                        iterations: this.settings.iterations_after_booking,
                        time_limit: Duration::from_secs(2),
                        reason: "after-booking",
                    };
                    if let Err(e) = this.run(&entity, &req).await {
                        tracing::warn!(entity = %entity, error = %e, "re-optimisation after bookings failed");
                    }
                }
                if Instant::now() >= next_nightly_check {
                    next_nightly_check = Instant::now() + Duration::from_secs(30);
                    if let Err(e) = this.nightly(&mut nightly_done).await {
                        tracing::warn!(error = %e, "nightly re-optimisation failed");
                    }
                }
            }
        });
    }

    /// The touched dates whose quiet time (or longest delay) has passed.
    fn due(&self) -> Vec<DateKey> {
        let now = Instant::now();
        let mut map = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        let due: Vec<_> = map
            .iter()
            .filter(|(_, (first, last))| {
                now - *last >= self.settings.debounce || now - *first >= self.settings.max_delay
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &due {
            map.remove(k);
        }
        due
    }

    /// Each work center whose nightly time has come today (in its zone) and that has not run
    /// today: its coming days.
    async fn nightly(
        &self,
        done: &mut HashMap<(EntityId, String), Date>,
    ) -> Result<(), ReoptError> {
        let Some(at) = self.settings.nightly_at else {
            return Ok(());
        };
        for (entity, wc) in self.store.all_work_centers().await? {
            let Ok(tz) = TimeZone::get(&wc.time_zone) else {
                continue;
            };
            let local = Timestamp::now().to_zoned(tz);
            let key = (entity.clone(), wc.service_area_id.clone());
            // Within the hour after the set time, once a day: a process started later in the
            // day waits for the next night.
            let secs = |t: jiff::civil::Time| {
                i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second())
            };
            let since = (secs(local.time()) - secs(at)).rem_euclid(86_400);
            if since >= 3600 || done.get(&key) == Some(&local.date()) {
                continue;
            }
            done.insert(key, local.date());
            let req = Request {
                service_area_id: wc.service_area_id.clone(),
                from: Some(local.date()),
                days: self.settings.nightly_days,
                dry_run: false,
                seed: 1,
                iterations: self.settings.nightly_iterations,
                time_limit: Duration::from_secs(60),
                reason: "nightly",
            };
            let report = self.run(&entity, &req).await?;
            tracing::info!(entity = %entity, work_center = %wc.service_area_id, moves = report.moves.len(),
                saved_minutes = report.travel_before_minutes - report.travel_after_minutes, "nightly re-optimisation");
        }
        Ok(())
    }

    /// Re-optimises a work center's dates, or reports what it would do (`dry_run`).
    pub async fn run(&self, entity: &EntityId, req: &Request) -> Result<Report, ReoptError> {
        let key = (entity.clone(), req.service_area_id.clone());
        let Some(_running) = Running::take(&self.running, key) else {
            return Ok(Report {
                busy: true,
                ..Report::default()
            });
        };
        // Across nodes: the work center's run lock, held until this run ends.
        let Some(_exclusive) = self
            .store
            .exclusive(entity, &format!("reopt:{}", req.service_area_id))
            .await?
        else {
            return Ok(Report {
                busy: true,
                ..Report::default()
            });
        };
        let mut report = Report {
            run_id: uuid::Uuid::new_v4().to_string(),
            dry_run: req.dry_run,
            ..Report::default()
        };
        let plan = self.plan(entity, req, req.from, req.days).await?;
        let dates: Vec<Date> = plan.by_date.keys().copied().collect();
        report.travel_before_minutes = plan.result.travel_before_minutes;
        report.travel_after_minutes = plan.result.travel_after_minutes;
        report.untouched = plan
            .result
            .untouched
            .iter()
            .map(|u| (u.tech.clone(), u.date, u.reason.clone()))
            .collect();
        if req.dry_run {
            report.moves = plan.by_date.values().flatten().cloned().collect();
            return Ok(report);
        }
        // One date at a time; a date some write changed since it was read is planned again.
        let mut current = plan;
        for date in dates {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let Some(moves) = current.by_date.get(&date).cloned() else {
                    break;
                };
                let commit = current.commit(date, moves.clone(), &report.run_id, req.reason);
                if self.store.commit_moves(entity, &commit).await? {
                    report.committed.push(date);
                    report.moves.extend(moves);
                    break;
                }
                if attempt >= MAX_ATTEMPTS {
                    report.conflicted.push(date);
                    break;
                }
                current = self.plan(entity, req, Some(date), 1).await?;
            }
        }
        Ok(report)
    }

    /// The plan of `days` dates from `from`, on the visits as they are now.
    async fn plan(
        &self,
        entity: &EntityId,
        req: &Request,
        from: Option<Date>,
        days: u32,
    ) -> Result<Plan, ReoptError> {
        let setup = Arc::new(load_setup(&self.store, entity).await?);
        let wc = setup
            .work_centers
            .iter()
            .find(|w| w.service_area_id == req.service_area_id)
            .cloned()
            .ok_or_else(|| {
                DomainError::NotFound(format!("no work center {:?}", req.service_area_id))
            })?;
        let tz = TimeZone::get(&wc.time_zone).map_err(|_| {
            DomainError::invalid("$.ServiceAreaID", "the work center's time zone is unknown")
        })?;
        let now = Timestamp::now();
        let first = from.unwrap_or_else(|| now.to_zoned(tz.clone()).date());
        let start = first
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(now);
        let end = first
            .checked_add(jiff::Span::new().days(i64::from(days.max(1))))
            .ok()
            .and_then(|d| d.to_zoned(tz.clone()).ok())
            .map(|z| z.timestamp())
            .unwrap_or(start);
        let techs: Vec<String> = setup
            .technicians
            .iter()
            .filter(|t| t.service_area_ids.contains(&wc.service_area_id))
            .map(|t| t.user_name.clone())
            .collect();
        let query = VisitQuery {
            techs,
            from_ms: start.as_millisecond() - DAY_MARGIN_MS,
            to_ms: end.as_millisecond() + DAY_MARGIN_MS,
        };
        let visits = if query.techs.is_empty() {
            Vec::new()
        } else {
            self.store.planned_visits(entity, &query).await?
        };
        let nums: Vec<String> = visits.iter().map(|v| v.row.order_num.clone()).collect();
        let told: HashMap<String, String> = self
            .store
            .first_technicians(entity, &nums)
            .await?
            .into_iter()
            .collect();
        let rows: Vec<VisitRow> = visits.iter().map(|v| v.row.clone()).collect();
        let booked: Vec<BookedVisit> = visits
            .into_iter()
            .map(|v| {
                let skills = v
                    .order
                    .order_type()
                    .and_then(|t| setup.order_types.get(t))
                    .map(|t| t.skills.clone())
                    .unwrap_or_default();
                let started = matches!(
                    v.order.status(),
                    Some(OrderStatus::EnRoute | OrderStatus::Onsite | OrderStatus::TravelComplete)
                );
                // A visit of another work center stays where it is.
                let elsewhere = v
                    .order
                    .service_area_id()
                    .is_some_and(|a| a != wc.service_area_id);
                let told_tech = told
                    .get(&v.row.order_num)
                    .cloned()
                    .or_else(|| v.order.user_name().map(str::to_string));
                let pinned = v.order.pinned() || elsewhere;
                let (tech, visit) = to_visit(&setup, v.row);
                BookedVisit {
                    tech,
                    visit,
                    facts: VisitFacts {
                        skills,
                        told_tech,
                        started,
                        pinned,
                    },
                }
            })
            .collect();
        let (seed, iterations, limit) = (req.seed, req.iterations, req.time_limit);
        let (wc_c, setup_c) = (wc.clone(), setup.clone());
        let result = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + limit;
            let stop = move || Instant::now() >= deadline;
            sched::reoptimize(&Reoptimize {
                work_center: &wc_c,
                technicians: &setup_c.technicians,
                visits: &booked,
                now,
                travel: None,
                seed,
                budget: Budget {
                    iterations,
                    stop: Some(&stop),
                },
            })
        })
        .await
        .map_err(|e| ScheduleError::Fault(format!("the re-optimiser failed: {e}")))?
        .map_err(|e| DomainError::invalid("$.ServiceAreaID", e))?;
        let mut by_date: BTreeMap<Date, Vec<PlannedMove>> = BTreeMap::new();
        for m in &result.moves {
            let date = m.from_start.to_zoned(tz.clone()).date();
            by_date.entry(date).or_default().push(PlannedMove {
                order_num: m.order_num.clone(),
                from_tech: m.from_tech.clone(),
                to_tech: m.to_tech.clone(),
                from: (Time::from(m.from_start), Time::from(m.from_end)),
                to: (Time::from(m.to_start), Time::from(m.to_end)),
            });
        }
        Ok(Plan {
            tz,
            rows,
            by_date,
            result,
        })
    }
}

/// A plan and what it was made on.
struct Plan {
    tz: TimeZone,
    rows: Vec<VisitRow>,
    by_date: BTreeMap<Date, Vec<PlannedMove>>,
    result: sched::Reoptimized,
}

impl Plan {
    /// The commit of `date`'s moves: the visits of every technician they concern over the date,
    /// as read (the same rows, in the same order, as the store's read of them under the locks).
    fn commit(
        &self,
        date: Date,
        moves: Vec<PlannedMove>,
        run_id: &str,
        reason: &'static str,
    ) -> MoveCommit {
        let mut techs: Vec<String> = moves
            .iter()
            .flat_map(|m| [m.from_tech.clone(), m.to_tech.clone()])
            .collect();
        techs.sort();
        techs.dedup();
        let start = date
            .to_zoned(self.tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(0);
        let visits = VisitQuery {
            techs: techs.clone(),
            from_ms: start - DAY_MARGIN_MS,
            to_ms: start + 86_400_000 + DAY_MARGIN_MS,
        };
        let seen = self
            .rows
            .iter()
            .filter(|r| {
                techs.contains(&r.user_name)
                    && r.busy_end_ms.unwrap_or(r.start_ms) > visits.from_ms
                    && r.start_ms < visits.to_ms
            })
            .cloned()
            .collect();
        MoveCommit {
            lock_key: format!("book:{date}"),
            visits,
            seen,
            moves,
            run_id: run_id.to_string(),
            reason,
            travel_saved_minutes: self.result.travel_saved_minutes(),
        }
    }
}

/// A work center's place among this process's runs, given back when dropped.
struct Running<'a> {
    set: &'a Mutex<HashSet<(EntityId, String)>>,
    key: (EntityId, String),
}

impl<'a> Running<'a> {
    fn take(set: &'a Mutex<HashSet<(EntityId, String)>>, key: (EntityId, String)) -> Option<Self> {
        let inserted = set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        // (Built only when taken: a `Running` dropped here would give back a place it never had.)
        if inserted {
            Some(Running { set, key })
        } else {
            None
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut s = self.set.lock().unwrap_or_else(|e| e.into_inner());
        s.remove(&self.key);
    }
}
