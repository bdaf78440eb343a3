//! Revisit's built-in scheduler behind the `Scheduler` interface: loads the entity's set-up and
//! its technicians' visits, asks the pure `revisit_scheduler` crate, and books in one
//! transaction that re-reads the visits under the booking lock.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use jiff::{Timestamp, tz::TimeZone};
use revisit_scheduler::{
    self as sched, Availability, GeoPoint, Job, OrderType, PartEta, Snapshot, Technician, Visit,
    Window, WorkCenter,
};
use serde_json::{Map, Value, json};

use super::{Call, Reply, ScheduleError, Scheduler, cache::View};
use crate::{
    domain::{
        DomainError, EntityId, WorkOrderNum,
        bookjob::{BookJob, Period},
        status::OrderStatus,
        time,
        workorder::{Carried, WorkOrder},
    },
    store::{
        BookingRequest, BookingResult, BookingWrite, Decision, FollowupDone, SchedKind, Store,
        StoreError, VisitQuery, VisitRow,
    },
};

/// How often a booking transaction that lost a serialisation race or a deadlock is tried.
const MAX_BOOKING_ATTEMPTS: u32 = 3;

/// Minutes a visit lasts when neither the order nor its type says.
pub const DEFAULT_DURATION_MINUTES: u32 = 60;

/// How many in-process booking gates there are; a booking lock key hashes to one of them.
const GATES: usize = 64;

pub struct Builtin {
    store: Arc<dyn Store>,
    cache: super::cache::SchedCache,
    /// Bookings in this process that would queue on the same database lock queue here
    /// instead, without holding a database connection, and check the cache again when their
    /// turn comes: most of a rush for the last window is then refused without a transaction.
    /// (Two keys may share a gate; that only costs them some parallelism.)
    gates: Box<[tokio::sync::Mutex<()>]>,
    /// How long a booking waits at its gate before it gives up with a 503 (`booking_queue_wait`,
    /// 10 s by default: well under the time after which its pending claim would be taken for
    /// abandoned).
    max_wait: std::time::Duration,
}

impl Builtin {
    pub fn new(store: Arc<dyn Store>, max_wait: std::time::Duration) -> Self {
        Self {
            store,
            cache: Default::default(),
            gates: (0..GATES).map(|_| tokio::sync::Mutex::new(())).collect(),
            max_wait,
        }
    }

    fn gate(&self, entity: &EntityId, key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one((entity.as_str(), key));
        &self.gates[(h % GATES as u64) as usize]
    }
}

/// An entity's scheduler set-up, as stored.
pub struct Setup {
    pub work_centers: Vec<WorkCenter>,
    pub technicians: Vec<Technician>,
    pub order_types: HashMap<String, OrderType>,
}

fn typed<T: serde::de::DeserializeOwned>(values: Vec<Value>) -> Vec<T> {
    values
        .into_iter()
        .filter_map(|v| match serde_json::from_value(v) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "skipping a stored scheduler object that no longer parses");
                None
            }
        })
        .collect()
}

pub async fn load_setup(store: &dyn Store, entity: &EntityId) -> Result<Setup, ScheduleError> {
    let work_centers = typed(store.list_sched(entity, SchedKind::WorkCenters).await?);
    let technicians = typed(store.list_sched(entity, SchedKind::Technicians).await?);
    let order_types = typed::<OrderType>(store.list_sched(entity, SchedKind::OrderTypes).await?)
        .into_iter()
        .map(|t| (t.order_type.clone(), t))
        .collect();
    Ok(Setup {
        work_centers,
        technicians,
        order_types,
    })
}

fn coords(location: Option<&Value>) -> Option<GeoPoint> {
    let addr = location?.get("Address")?;
    let num = |k: &str| match addr.get(k)? {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    Some(GeoPoint {
        lat: num("Lat")?,
        lon: num("Lon")?,
    })
}

fn str_of<'a>(v: Option<&'a Value>, k: &str) -> Option<&'a str> {
    v?.get(k)?.as_str().filter(|s| !s.is_empty())
}

/// The job to place, from the request and, where it is silent, the original order (§4).
pub fn job_for(
    setup: &Setup,
    original: Option<&WorkOrder>,
    req: &BookJob,
) -> Result<Job, DomainError> {
    let order_type = req
        .str("OrderType")
        .or_else(|| original.and_then(WorkOrder::order_type));
    let ot = order_type.and_then(|t| setup.order_types.get(t));
    let duration_minutes = ot
        .map(|t| t.duration_minutes)
        .or_else(|| original.and_then(WorkOrder::planned_dur))
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_DURATION_MINUTES);
    let location = coords(req.raw.get("Location"))
        .or_else(|| {
            let (lat, lon) = original?.coordinates()?;
            Some(GeoPoint { lat, lon })
        })
        .ok_or_else(|| {
            DomainError::invalid(
                "$.Location.Address.Lat",
                "the built-in scheduler needs the visit's place: Location.Address.Lat and Lon in the request or on the original order",
            )
        })?;
    let service_area_id = str_of(req.raw.get("Location"), "ServiceAreaID")
        .or_else(|| original?.service_area_id().filter(|s| !s.is_empty()))
        .map(str::to_string);
    let preferred_tech = req
        .str("UserName")
        .or_else(|| original.and_then(WorkOrder::user_name))
        .map(str::to_string);
    let mut customer: Vec<Availability> = req
        .available
        .iter()
        .map(|p| Availability {
            available: true,
            start: p.start,
            end: p.end,
        })
        .collect();
    customer.extend(req.unavailable.iter().map(|p| Availability {
        available: false,
        start: p.start,
        end: p.end,
    }));
    let required_parts = req
        .raw
        .get("RequiredParts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .map(|p| PartEta {
                    estimated_delivery: p
                        .get("EstimatedDelivery")
                        .and_then(Value::as_str)
                        .and_then(time::parse),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Job {
        duration_minutes,
        skills: ot.map(|t| t.skills.clone()).unwrap_or_default(),
        location,
        service_area_id,
        preferred_tech,
        customer,
        required_parts,
    })
}

/// The work center the job belongs to: the named one, else the nearest.
pub fn work_center_of<'a>(setup: &'a Setup, job: &Job) -> Option<&'a WorkCenter> {
    match &job.service_area_id {
        Some(id) => setup.work_centers.iter().find(|w| &w.service_area_id == id),
        None => setup.work_centers.iter().min_by(|a, b| {
            let da = sched::travel::great_circle_km(a.location(), job.location);
            let db = sched::travel::great_circle_km(b.location(), job.location);
            da.total_cmp(&db)
        }),
    }
}

/// The time zone of a work center (UTC without one, or with an unknown zone).
fn zone_of(wc: Option<&WorkCenter>) -> TimeZone {
    wc.and_then(|w| TimeZone::get(&w.time_zone).ok())
        .unwrap_or(TimeZone::UTC)
}

/// The technicians of a work center (none without one).
pub fn techs_of(setup: &Setup, wc: Option<&WorkCenter>) -> Vec<String> {
    match wc {
        Some(wc) => setup
            .technicians
            .iter()
            .filter(|t| t.service_area_ids.contains(&wc.service_area_id))
            .map(|t| t.user_name.clone())
            .collect(),
        None => Vec::new(),
    }
}

fn ms(t: i64) -> Timestamp {
    Timestamp::from_millisecond(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Visits per technician, in the shape the scheduler takes.
pub fn visits_by_tech(setup: &Setup, rows: Vec<VisitRow>) -> HashMap<String, Vec<Visit>> {
    let mut out: HashMap<String, Vec<Visit>> = HashMap::new();
    for r in rows {
        let (tech, visit) = to_visit(setup, r);
        out.entry(tech).or_default().push(visit);
    }
    for v in out.values_mut() {
        v.sort_by_key(|x| x.start);
    }
    out
}

/// One stored visit as the scheduler sees it, with its technician: its length from its end,
/// else its order type, else the default; its promised window, else its planned start alone.
pub fn to_visit(setup: &Setup, r: VisitRow) -> (String, Visit) {
    let start = ms(r.start_ms);
    let end = match r.busy_end_ms {
        Some(e) if e > r.start_ms => ms(e),
        _ => {
            let minutes = r
                .order_type
                .as_deref()
                .and_then(|t| setup.order_types.get(t))
                .map(|t| t.duration_minutes)
                .unwrap_or(DEFAULT_DURATION_MINUTES);
            ms(r.start_ms + i64::from(minutes) * 60_000)
        }
    };
    let window = match (r.window_start_ms, r.window_end_ms) {
        (Some(s), Some(e)) if s <= r.start_ms && r.start_ms <= e => Window {
            start: ms(s),
            end: ms(e),
        },
        // A promised window the planned arrival is already outside of cannot be kept by
        // moving; hold the visit where it is.
        _ => Window { start, end: start },
    };
    let location = match (r.lat, r.lon) {
        (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
        _ => None,
    };
    (
        r.user_name,
        Visit {
            order_num: r.order_num,
            start,
            end,
            location,
            window,
        },
    )
}

fn offer_json(o: &sched::Offer) -> Value {
    json!({
        "ID": o.id,
        "Desc": o.desc,
        "Type": "1001",
        "Period": {"Start": time::format(o.window.start), "End": time::format(o.window.end)},
    })
}

impl Builtin {
    /// Slot search: the best windows, chronological, or a reason there are none.
    pub async fn search(
        &self,
        entity: &EntityId,
        original: Option<&WorkOrder>,
        req: &BookJob,
        now: Timestamp,
    ) -> Result<sched::SearchOutcome, ScheduleError> {
        let view = self.cache.view(self.store.as_ref(), entity, now).await?;
        let job = job_for(&view.setup, original, req)?;
        Ok(sched::search(&view.snapshot(), &job, now))
    }
}

impl Builtin {
    /// The 409 for a window that cannot be booked, with alternatives from the schedule as the
    /// database holds it now.
    #[allow(clippy::too_many_arguments)]
    async fn unavailable(
        &self,
        entity: &EntityId,
        original: &WorkOrder,
        req: &BookJob,
        now: Timestamp,
        window: Window,
        tz: &TimeZone,
        why: &str,
    ) -> ScheduleError {
        match self.cache.view(self.store.as_ref(), entity, now).await {
            Ok(view) => {
                let job = job_for(&view.setup, Some(original), req).ok();
                unavailable_on(&view, job.as_ref(), now, window, tz, why)
            }
            Err(_) => unavailable_on_offers(Vec::new(), window, tz, why),
        }
    }
}

/// The job of a follow-up of `original`, if `view` can still place it in `window`; else the
/// 409 with alternatives from `view`.
fn check_on(
    view: &View,
    original: &WorkOrder,
    req: &BookJob,
    window: Window,
    now: Timestamp,
) -> Result<Job, ScheduleError> {
    let job = job_for(&view.setup, Some(original), req)?;
    match sched::plan(&view.snapshot(), &job, window, now) {
        Ok(_) => Ok(job),
        Err(why) => {
            let tz = zone_of(work_center_of(&view.setup, &job));
            Err(unavailable_on(
                view,
                Some(&job),
                now,
                window,
                &tz,
                &why.to_string(),
            ))
        }
    }
}

/// The 409 for a window that cannot be booked, with up to three alternatives from `view`:
/// what is still free nearest to the window asked for.
fn unavailable_on(
    view: &View,
    job: Option<&Job>,
    now: Timestamp,
    window: Window,
    tz: &TimeZone,
    why: &str,
) -> ScheduleError {
    let offers = job
        .map(|job| sched::search(&view.snapshot(), job, now).offers)
        .unwrap_or_default();
    unavailable_on_offers(offers, window, tz, why)
}

fn unavailable_on_offers(
    mut alternatives: Vec<sched::Offer>,
    window: Window,
    tz: &TimeZone,
    why: &str,
) -> ScheduleError {
    alternatives.retain(|o| o.window != window);
    alternatives.sort_by_key(|o| (o.window.start - window.start).get_seconds().abs());
    alternatives.truncate(3);
    alternatives.sort_by_key(|o| o.window.start);
    ScheduleError::SlotUnavailable {
        detail: format!(
            "the window {} can no longer be booked: {why} Pick one of the Alternatives or search again.",
            sched::describe(&window, tz)
        ),
        alternatives: alternatives.iter().map(offer_json).collect(),
    }
}

/// The number of the follow-up order: readable, and unique without a counter.
fn new_order_num(original: &WorkOrderNum) -> Result<WorkOrderNum, DomainError> {
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..6].to_uppercase();
    let candidate = format!("{original}-F{suffix}");
    WorkOrderNum::parse(&candidate)
        .or_else(|_| WorkOrderNum::parse(&format!("F-{}", uuid::Uuid::new_v4().simple())))
        .map_err(|e| DomainError::invalid("$.OriginalOrderNum", e))
}

/// `Account`/`Location` as §7.1 says: absent ones come from the original; a managed one (only
/// its number) is expanded from the original when the numbers match.
fn customer_part(
    req: &BookJob,
    original: &WorkOrder,
    part: Carried,
    num_key: &str,
) -> Option<Value> {
    let given = req.raw.get(part.name()).filter(|v| !v.is_null());
    let theirs = original.carried(part);
    match given {
        None => theirs,
        Some(Value::Object(m)) if m.len() == 1 && m.contains_key(num_key) => match theirs {
            Some(t) if t.get(num_key) == m.get(num_key) => Some(t),
            _ => given.cloned(),
        },
        Some(v) => Some(v.clone()),
    }
}

/// The follow-up work order of scheduler.md §5.
fn follow_up_order(
    num: &WorkOrderNum,
    original: &WorkOrder,
    req: &BookJob,
    placed: &sched::Placement,
    window: &Window,
    offer: (&str, &str),
) -> Result<WorkOrder, DomainError> {
    let mut m = Map::new();
    m.insert("OrderNum".into(), json!(num.as_str()));
    m.insert("OrderStatus".into(), json!(OrderStatus::New.code()));
    m.insert("DispatchStatus".into(), json!(3));
    let (tech, start, end) = (&placed.tech, placed.start, placed.end);
    m.insert("UserName".into(), json!(tech));
    m.insert("OriginalOrderNum".into(), json!(original.order_num()));
    if let Some(t) = req.str("OrderType").or(original.order_type()) {
        m.insert("OrderType".into(), json!(t));
    }
    m.insert("PlannedStartDate".into(), json!(time::format(start)));
    m.insert("PlannedEndDate".into(), json!(time::format(end)));
    // `end - start` is a Span balanced to seconds, whose minutes field is 0: use the duration.
    m.insert(
        "PlannedDur".into(),
        json!(end.duration_since(start).as_mins()),
    );
    m.insert("OrderDate".into(), json!(time::format(Timestamp::now())));
    m.insert(
        "TimeConstraints".into(),
        json!([{
            "ID": offer.0, "Desc": offer.1, "Type": "1001",
            "Period": {"Start": time::format(window.start), "End": time::format(window.end)},
        }]),
    );
    if let Some(a) = customer_part(req, original, Carried::Account, "AccountNum") {
        m.insert("Account".into(), a);
    }
    if let Some(l) = customer_part(req, original, Carried::Location, "LocationNum") {
        m.insert("Location".into(), l);
    }
    for part in [
        Carried::Assets,
        Carried::FlexAttrs,
        Carried::FlexForms,
        Carried::RequiredParts,
    ] {
        let k = part.name();
        if let Some(v) = req
            .raw
            .get(k)
            .cloned()
            .or_else(|| original.carried(part))
            .filter(|v| !v.is_null())
        {
            m.insert(k.into(), v);
        }
    }
    for part in [Carried::Description, Carried::Priority] {
        if let Some(v) = original.carried(part) {
            m.insert(part.name().into(), v);
        }
    }
    WorkOrder::parse(num, m)
}

#[async_trait]
impl Scheduler for Builtin {
    async fn open_slots(
        &self,
        call: &Call<'_>,
        _target: &str,
        original: Option<&WorkOrder>,
        req: &BookJob,
    ) -> Result<Reply, ScheduleError> {
        let outcome = self
            .search(&call.caller.entity, original, req, Timestamp::now())
            .await?;
        Ok(Reply::ok(json!({
            "StatusMsg": outcome.status_msg,
            "TimeConstraints": outcome.offers.iter().map(offer_json).collect::<Vec<_>>(),
        })))
    }

    async fn precheck(
        &self,
        call: &Call<'_>,
        original: &WorkOrder,
        req: &BookJob,
        slot: Period,
    ) -> Result<(), ScheduleError> {
        let now = Timestamp::now();
        let view = self
            .cache
            .view(self.store.as_ref(), &call.caller.entity, now)
            .await?;
        let window = Window {
            start: slot.start,
            end: slot.end,
        };
        check_on(&view, original, req, window, now).map(|_| ())
    }

    async fn book(
        &self,
        call: &Call<'_>,
        _target: &str,
        original: &WorkOrder,
        req: &BookJob,
        slot: Period,
        claim_id: &str,
    ) -> Result<Reply, ScheduleError> {
        let entity = &call.caller.entity;
        let now = Timestamp::now();
        let window = Window {
            start: slot.start,
            end: slot.end,
        };
        // The pre-check before the claim brought the cache up to date moments ago.
        let view = match self.cache.cached(entity) {
            Some(view) => view,
            None => self.cache.view(self.store.as_ref(), entity, now).await?,
        };
        let local_day = {
            let job = job_for(&view.setup, Some(original), req)?;
            slot.start
                .to_zoned(zone_of(work_center_of(&view.setup, &job)))
                .date()
        };
        // One lock per entity and local day: a technician may serve several work centers, so a
        // per-work-center lock would let two bookings plan the same day at once.
        let lock_key = format!("book:{local_day}");
        let gate = self.gate(entity, &lock_key);
        // A booking that had to wait for its turn looks at the schedule again: what was booked
        // meanwhile may leave nothing for it.
        let (turn, view) = match gate.try_lock() {
            Ok(turn) => (turn, view),
            Err(_) => {
                let Ok(turn) = tokio::time::timeout(self.max_wait, gate.lock()).await else {
                    self.store.abandon_followup(entity, claim_id).await?;
                    return Err(ScheduleError::Busy(format!(
                        "more bookings for {local_day} are waiting than can be served within {} ms; nothing was booked, retry in a few seconds",
                        self.max_wait.as_millis()
                    )));
                };
                (
                    turn,
                    self.cache.view(self.store.as_ref(), entity, now).await?,
                )
            }
        };
        // What the cache (current as of the version check above) cannot place, the database
        // cannot either: refuse without a transaction. Most requests in a rush for the last
        // window end here.
        let job = match check_on(&view, original, req, window, now) {
            Ok(job) => job,
            Err(e) => {
                drop(turn);
                self.store.abandon_followup(entity, claim_id).await?;
                return Err(e);
            }
        };
        let setup = view.setup.clone();
        let wc = work_center_of(&setup, &job);
        let tz = zone_of(wc);
        let techs = techs_of(&setup, wc);
        let local_day = slot.start.to_zoned(tz.clone()).date();
        const MARGIN_MS: i64 = 3 * 3_600_000;
        let day_start = local_day
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(slot.start);
        let request = BookingRequest {
            claim_id: claim_id.to_string(),
            // The plan works on the window's local day; a margin covers technicians whose
            // shifts are kept in another work center's zone.
            visits: VisitQuery {
                techs,
                from_ms: day_start.as_millisecond() - MARGIN_MS,
                to_ms: day_start.as_millisecond() + 86_400_000 + MARGIN_MS,
            },
            lock_key,
        };
        let num = new_order_num(original.order_num())?;
        let offer_id = sched::offer_id(
            wc.map(|w| w.service_area_id.as_str()).unwrap_or("-"),
            &window,
        );
        let offer_desc = sched::describe(&window, &tz);
        let (original_c, req_c, setup_c, job_c) =
            (original.clone(), req.clone(), setup.clone(), job.clone());
        // Built anew for each attempt: a transaction that lost a serialisation race is retried.
        let make_decide = move || {
            let (num, original_c, req_c, setup_c, job_c, offer_id, offer_desc) = (
                num.clone(),
                original_c.clone(),
                req_c.clone(),
                setup_c.clone(),
                job_c.clone(),
                offer_id.clone(),
                offer_desc.clone(),
            );
            Box::new(move |view: crate::store::BookingView| {
                let visits = visits_by_tech(&setup_c, view.visits);
                let snap = Snapshot {
                    work_centers: &setup_c.work_centers,
                    technicians: &setup_c.technicians,
                    visits: &visits,
                };
                let placement = match sched::plan(&snap, &job_c, window, now) {
                    Ok(p) => p,
                    Err(why) => return Decision::Unavailable(why.to_string()),
                };
                let order = match follow_up_order(
                    &num,
                    &original_c,
                    &req_c,
                    &placement,
                    &window,
                    (&offer_id, &offer_desc),
                ) {
                    Ok(o) => o,
                    Err(e) => {
                        return Decision::Unavailable(format!(
                            "the follow-up order could not be built: {e}"
                        ));
                    }
                };
                let parts: Vec<Value> = req_c
                    .raw
                    .get("RequiredParts")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| p.get("ProdNum").cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                let part_order =
                    (!parts.is_empty()).then(|| (format!("PO-{num}"), Value::Array(parts.clone())));
                let ordered = match &part_order {
                    Some((po, parts)) => json!([{"PartOrderNum": po, "Parts": parts}]),
                    None => json!([]),
                };
                let answer = json!({"OrderNum": num.as_str(), "OrderedParts": ordered});
                Decision::Write(Box::new(BookingWrite {
                    new_order: order,
                    shifted: placement
                        .shifted
                        .iter()
                        .map(|s| (s.order_num.clone(), s.start, s.end))
                        .collect(),
                    part_order,
                    done: FollowupDone {
                        order_num: Some(num.to_string()),
                        status_code: 200,
                        answer,
                    },
                }))
            }) as crate::store::DecideFn
        };
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self
                .store
                .commit_booking(entity, &request, make_decide())
                .await
            {
                Err(StoreError::Retry(why)) if attempt < MAX_BOOKING_ATTEMPTS => {
                    tracing::debug!(%why, attempt, "booking transaction retried");
                }
                // The database's own check (constraint or trigger) refused an overlap the code
                // did not see: the window is taken. The transaction rolled back; drop the claim.
                Err(StoreError::Conflict(why)) => {
                    tracing::warn!(%why, "booking refused by the database's double-booking check");
                    self.store.abandon_followup(entity, claim_id).await?;
                    break BookingResult::Unavailable(
                        "Another booking took that time first.".into(),
                    );
                }
                other => break other?,
            }
        };
        drop(turn);
        match result {
            BookingResult::Booked(done) => Ok(Reply::ok(done.answer)),
            BookingResult::Unavailable(why) => Err(self
                .unavailable(entity, original, req, now, window, &tz, &why)
                .await),
        }
    }
}
