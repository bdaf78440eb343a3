//! Revisit's built-in scheduler: searches and books on the in-memory copy of each entity's
//! set-up and visits (`cache.rs`), asks the pure `revisit_scheduler` crate, and commits a booking
//! in one transaction that reads the technicians' visits again under the booking lock and records
//! the booking with it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use jiff::{Timestamp, civil::Date, tz::TimeZone};
use revisit_scheduler::{
    self as sched, Availability, GeoPoint, Job, OrderType, PartEta, Snapshot, Technician, Visit,
    Window, WorkCenter,
};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use super::{
    Outcome, ScheduleError,
    cache::{View, VisitMap},
};
use crate::{
    domain::{
        DomainError, EntityId, WorkOrderNum,
        bookjob::{BookJob, Period},
        followup::{FollowupDone, NewClaim},
        status::OrderStatus,
        time::{self, Time},
        workorder::{Carried, WorkOrder},
    },
    store::{
        BookingEvents, BookingResult, BookingTx, BookingWrite, Decision, FromCache, Reassigned,
        SchedKind, Store, StoreError, VisitChange, VisitQuery, VisitRow,
    },
};

/// Minutes a visit lasts when neither the order nor its type says.
pub const DEFAULT_DURATION_MINUTES: u32 = 60;

/// How many in-process booking gates there are; a booking lock key hashes to one of them.
const GATES: usize = 64;

/// Visits of technicians whose shifts are kept in another work center's zone may lie this far
/// outside the window's local day.
const DAY_MARGIN_MS: i64 = 3 * 3_600_000;

pub struct Builtin {
    store: Arc<Store>,
    cache: super::cache::SchedCache,
    /// Bookings in this process that would queue on the same database lock queue here
    /// instead, without holding a database connection, and check the cache again when their
    /// turn comes: most of a rush for the last window is then refused without a transaction.
    /// (Two keys may share a gate; that only costs them some parallelism.)
    gates: Box<[Mutex<()>]>,
    /// How long a booking waits at its gate before it gives up (`booking_queue_wait`).
    max_wait: Duration,
    /// Told of every committed booking: its work center and local date (the re-optimiser's
    /// debounced runs after bookings).
    on_booked: Option<OnBooked>,
}

/// See [`Builtin::on_booked`].
pub(crate) type OnBooked = Arc<dyn Fn(&EntityId, &str, Date) + Send + Sync>;

impl Builtin {
    pub fn new(store: Arc<Store>, max_wait: Duration) -> Self {
        Self {
            store,
            cache: Default::default(),
            gates: (0..GATES).map(|_| Mutex::new(())).collect(),
            max_wait,
            on_booked: None,
        }
    }

    /// Calls `f` with the work center and local date of every booking this scheduler commits.
    pub(crate) fn on_booked(mut self, f: OnBooked) -> Self {
        self.on_booked = Some(f);
        self
    }

    fn gate(&self, entity: &EntityId, key: &str) -> &Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one((entity.as_str(), key));
        &self.gates[(h % GATES as u64) as usize]
    }
}

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

pub async fn load_setup(store: &Store, entity: &EntityId) -> Result<Setup, ScheduleError> {
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
pub(crate) fn job_for(
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
            start: p.start.to_timestamp(),
            end: p.end.to_timestamp(),
        })
        .collect();
    customer.extend(req.unavailable.iter().map(|p| Availability {
        available: false,
        start: p.start.to_timestamp(),
        end: p.end.to_timestamp(),
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
                        .and_then(|s| time::parse(s).ok())
                        .map(Time::to_timestamp),
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
pub(crate) fn work_center_of<'a>(setup: &'a Setup, job: &Job) -> Option<&'a WorkCenter> {
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
pub(crate) fn techs_of(setup: &Setup, wc: Option<&WorkCenter>) -> Vec<String> {
    technicians_of(setup, wc)
        .map(|t| t.user_name.clone())
        .collect()
}

/// The technicians of a work center, as set up (none without one).
pub(crate) fn technicians_of<'a>(
    setup: &'a Setup,
    wc: Option<&'a WorkCenter>,
) -> impl Iterator<Item = &'a Technician> {
    setup
        .technicians
        .iter()
        .filter(move |t| wc.is_some_and(|wc| t.service_area_ids.contains(&wc.service_area_id)))
}

/// A stored time; one outside the range (which no write lets in) is taken as its nearest end.
fn ms(t: i64) -> Timestamp {
    Time::from_millis(t)
        .unwrap_or(if t < 0 { Time::MIN } else { Time::MAX })
        .to_timestamp()
}

/// Visits per technician, in the shape the scheduler takes.
pub fn visits_by_tech(setup: &Setup, rows: Vec<VisitRow>) -> HashMap<String, Vec<Visit>> {
    VisitMap::from_rows(setup, rows).into_lists()
}

/// One stored visit as the scheduler sees it, with its technician: its length from its end,
/// else its order type, else the default; its promised window, else its planned start alone.
pub(crate) fn to_visit(setup: &Setup, r: VisitRow) -> (String, Visit) {
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

/// An offered window as a TimeConstraints item, with what it costs ([Revisit] extension
/// properties, docs/api.md): the added travel of its cheapest insertion, and whether it is among
/// the policy's `BestOffers` cheapest.
fn offer_json(o: &sched::Offer) -> Value {
    json!({
        "ID": o.id,
        "Desc": o.desc,
        "Type": "1001",
        "Period": {"Start": time::format(o.window.start), "End": time::format(o.window.end)},
        "AddedTravelMinutes": o.added_travel_minutes,
        "Best": o.best,
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
        let view = self.cache.view(&self.store, entity, now).await?;
        let job = job_for(&view.setup, original, req)?;
        let area = work_center_of(&view.setup, &job).map(|w| w.service_area_id.as_str());
        let facts = view.visits.facts(&view.setup, area);
        Ok(sched::search_with_repair(
            &view.snapshot(),
            &job,
            now,
            None,
            &facts,
        ))
    }

    /// The entity's set-up and visits as the scheduler holds them, brought up to date first.
    pub async fn view(&self, entity: &EntityId) -> Result<View, ScheduleError> {
        self.cache.view(&self.store, entity, Timestamp::now()).await
    }

    /// The work center a follow-up of `original` (as `req` asks) goes to, and its local date
    /// now: from the cached set-up as the search or booking just left it (a query only when
    /// nothing is cached).
    pub(crate) async fn work_center_today(
        &self,
        entity: &EntityId,
        original: Option<&WorkOrder>,
        req: &BookJob,
    ) -> Result<Option<(String, Date)>, ScheduleError> {
        let now = Timestamp::now();
        let view = match self.cache.cached(entity) {
            Some(v) => v,
            None => self.cache.view(&self.store, entity, now).await?,
        };
        let Ok(job) = job_for(&view.setup, original, req) else {
            return Ok(None);
        };
        let wc = work_center_of(&view.setup, &job);
        Ok(wc.map(|w| {
            (
                w.service_area_id.clone(),
                now.to_zoned(zone_of(Some(w))).date(),
            )
        }))
    }

    /// The Appointment Search answer (`StatusMsg` and the offered windows), and whether
    /// nothing was offered because everything is booked.
    pub async fn open_slots(
        &self,
        entity: &EntityId,
        original: Option<&WorkOrder>,
        req: &BookJob,
    ) -> Result<(Value, bool), ScheduleError> {
        let outcome = self.search(entity, original, req, Timestamp::now()).await?;
        Ok((
            json!({
                "StatusMsg": outcome.status_msg,
                "TimeConstraints": outcome.offers.iter().map(offer_json).collect::<Vec<_>>(),
            }),
            outcome.fully_booked,
        ))
    }

    /// Books a follow-up of `original` in `slot` and records `claim` with it, in one
    /// transaction. A window the cache already knows to be gone is refused before any
    /// transaction; bookings of one local day take turns in this process first.
    pub async fn book(
        &self,
        entity: &EntityId,
        original: &WorkOrder,
        req: &BookJob,
        slot: Period,
        claim: &NewClaim,
        events: BookingEvents,
    ) -> Result<Outcome, ScheduleError> {
        let now = Timestamp::now();
        let view = self.cache.view(&self.store, entity, now).await?;
        let mut booking = Booking::prepare(&view, original, req, slot)?;
        if let Err(refusal) = booking.check(&view, now) {
            return Ok(refusal);
        }
        // The schedule the booking was last checked on.
        let mut since = view.versions;
        // One lock per entity and local day: a technician may serve several work centers, so a
        // per-work-center lock would let two bookings plan the same day at once.
        let lock_key = format!("book:{}", booking.local_day);
        let gate = self.gate(entity, &lock_key);
        let turn = match gate.try_lock() {
            Ok(turn) => turn,
            Err(_) => {
                let Ok(turn) = tokio::time::timeout(self.max_wait, gate.lock()).await else {
                    return Ok(Outcome::Busy {
                        detail: format!(
                            "more bookings for {} are waiting than can be served within {} ms; nothing was booked, retry in a few seconds",
                            booking.local_day,
                            self.max_wait.as_millis()
                        ),
                    });
                };
                // What was booked while this one waited may leave nothing for it.
                let view = self.cache.view(&self.store, entity, now).await?;
                if !Arc::ptr_eq(&view.setup, &booking.setup) {
                    booking = Booking::prepare(&view, original, req, slot)?;
                }
                if let Err(refusal) = booking.check(&view, now) {
                    return Ok(refusal);
                }
                since = view.versions;
                turn
            }
        };
        let order = booking.follow_up(original, req)?;
        let answer = booking.answer(&order, req);
        let tx = booking.transaction(claim, lock_key, events);
        let need = (tx.visits.from_ms, tx.visits.to_ms);
        let decide = |rows: &[VisitRow]| {
            let visits = VisitMap::from_rows(&booking.setup, rows.to_vec());
            booking.decide(&visits, &order, &answer, now)
        };
        // The cache brought up to date in the transaction: every visit of the entity, as the
        // booking commits on them (SQLite) or as its technician's lock confirms (PostgreSQL).
        let decided_on: std::sync::Mutex<Option<View>> = Default::default();
        let on_changes = |versions, changes: &[VisitChange]| match self
            .cache
            .advance(entity, since, versions, changes, need)
        {
            Some(view) if Arc::ptr_eq(&view.setup, &booking.setup) => {
                let decision = booking.decide(view.visits.as_ref(), &order, &answer, now);
                if let Ok(mut d) = decided_on.lock() {
                    *d = Some(view);
                }
                decision
            }
            _ => Decision::ReadVisits,
        };
        let same = |techs: &[&str], rows: &[VisitRow]| {
            let Some(view) = decided_on.lock().ok().and_then(|d| d.clone()) else {
                return false;
            };
            techs.iter().all(|t| {
                let mut now: Vec<Visit> = rows
                    .iter()
                    .filter(|r| r.user_name == *t)
                    .map(|r| to_visit(&booking.setup, r.clone()).1)
                    .collect();
                let mut then: Vec<Visit> = view
                    .visits
                    .get(t)
                    .unwrap_or_default()
                    .iter()
                    .filter(|v| {
                        v.start.as_millisecond() < need.1 && v.end.as_millisecond() > need.0
                    })
                    .cloned()
                    .collect();
                now.sort_by(|a, b| (a.start, &a.order_num).cmp(&(b.start, &b.order_num)));
                then.sort_by(|a, b| (a.start, &a.order_num).cmp(&(b.start, &b.order_num)));
                now == then
            })
        };
        let cached = FromCache {
            since,
            decide: &on_changes,
            same: &same,
        };
        let result = self
            .store
            .commit_booking_cached(entity, &tx, Some(&cached), &decide)
            .await;
        drop(turn);
        let why = match result {
            Ok(BookingResult::Booked(done)) => {
                if let (Some(f), Some(area)) = (&self.on_booked, &booking.service_area_id) {
                    f(entity, area, booking.local_day);
                }
                return Ok(Outcome::Booked(done));
            }
            Ok(BookingResult::Answered(a)) => return Ok(Outcome::Answered(a)),
            Ok(BookingResult::Unavailable(why)) => why,
            // The database's own check refused an overlap the code did not see: the window is
            // taken. The transaction rolled back.
            Err(StoreError::Overlap(why)) => {
                tracing::warn!(%why, "booking refused by the database's double-booking check");
                "Another booking took that time first.".into()
            }
            Err(e) => return Err(e.into()),
        };
        // Alternatives from the schedule as the database holds it now.
        let view = self.cache.view(&self.store, entity, now).await?;
        Ok(booking.unavailable(&view, now, &why))
    }
}

/// What a booking needs to know, worked out once from the set-up: the job, where and when.
struct Booking {
    setup: Arc<Setup>,
    job: Job,
    window: Window,
    service_area_id: Option<String>,
    tz: TimeZone,
    local_day: Date,
    techs: Vec<String>,
}

impl Booking {
    fn prepare(
        view: &View,
        original: &WorkOrder,
        req: &BookJob,
        slot: Period,
    ) -> Result<Self, DomainError> {
        let setup = view.setup.clone();
        let job = job_for(&setup, Some(original), req)?;
        let wc = work_center_of(&setup, &job);
        let tz = zone_of(wc);
        Ok(Self {
            window: Window {
                start: slot.start.to_timestamp(),
                end: slot.end.to_timestamp(),
            },
            service_area_id: wc.map(|w| w.service_area_id.clone()),
            local_day: slot.start.to_timestamp().to_zoned(tz.clone()).date(),
            techs: techs_of(&setup, wc),
            tz,
            job,
            setup,
        })
    }

    /// Whether `view` can still place the visit in the window (a repair allowed); the refusal
    /// if not.
    fn check(&self, view: &View, now: Timestamp) -> Result<(), Outcome> {
        match self.plan(&view.visits, now) {
            Ok(_) => Ok(()),
            Err(why) => Err(self.unavailable(view, now, &why.to_string())),
        }
    }

    /// The visit placed in the window on `visits`: plain insertion, else a bounded repair
    /// (docs/scheduler.md §6).
    fn plan(
        &self,
        visits: &VisitMap,
        now: Timestamp,
    ) -> Result<sched::Repaired, sched::Unavailable> {
        let snap = Snapshot {
            work_centers: &self.setup.work_centers,
            technicians: &self.setup.technicians,
            visits,
        };
        let facts = visits.facts(&self.setup, self.service_area_id.as_deref());
        sched::plan_with_repair(&snap, &self.job, self.window, now, None, &facts)
    }

    /// The refusal of the window, with up to three alternatives from `view`: what is still
    /// free nearest to the window asked for.
    fn unavailable(&self, view: &View, now: Timestamp, why: &str) -> Outcome {
        let facts = view
            .visits
            .facts(&self.setup, self.service_area_id.as_deref());
        let mut offers =
            sched::search_with_repair(&view.snapshot(), &self.job, now, None, &facts).offers;
        offers.retain(|o| o.window != self.window);
        offers.sort_by_key(|o| (o.window.start - self.window.start).get_seconds().abs());
        offers.truncate(3);
        offers.sort_by_key(|o| o.window.start);
        Outcome::Unavailable {
            detail: format!(
                "the window {} can no longer be booked: {why} Pick one of the Alternatives or search again.",
                sched::describe(&self.window, &self.tz)
            ),
            alternatives: offers.iter().map(offer_json).collect(),
        }
    }

    /// The follow-up order as it will be written, but for its technician and planned times.
    fn follow_up(&self, original: &WorkOrder, req: &BookJob) -> Result<WorkOrder, ScheduleError> {
        let num =
            new_order_num(original.order_num()).map_err(|e| ScheduleError::Fault(e.to_string()))?;
        let offer = (
            sched::offer_id(self.service_area_id.as_deref().unwrap_or("-"), &self.window),
            sched::describe(&self.window, &self.tz),
        );
        follow_up_order(
            &num,
            original,
            req,
            &self.job,
            &self.window,
            (&offer.0, &offer.1),
        )
        .map_err(|e| ScheduleError::Fault(format!("the follow-up order is invalid: {e}")))
    }

    /// The Book Job answer: the new order's number and its part order.
    fn answer(&self, order: &WorkOrder, req: &BookJob) -> FollowupDone {
        let num = order.order_num();
        let parts: Vec<Value> = req
            .raw
            .get("RequiredParts")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("ProdNum").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let ordered = if parts.is_empty() {
            json!([])
        } else {
            json!([{"PartOrderNum": format!("PO-{num}"), "Parts": parts}])
        };
        FollowupDone {
            order_num: Some(num.to_string()),
            status_code: 200,
            answer: json!({"OrderNum": num, "OrderedParts": ordered}),
            answer_raw: None,
        }
    }

    /// The booking's transaction: the technicians' visits of the window's local day (a margin
    /// covers technicians whose shifts are kept in another work center's zone).
    fn transaction(&self, claim: &NewClaim, lock_key: String, events: BookingEvents) -> BookingTx {
        let day_start = self
            .local_day
            .to_zoned(self.tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(self.window.start)
            .as_millisecond();
        BookingTx {
            claim: claim.clone(),
            visits: VisitQuery {
                techs: self.techs.clone(),
                from_ms: day_start - DAY_MARGIN_MS,
                to_ms: day_start + 86_400_000 + DAY_MARGIN_MS,
            },
            lock_key,
            events,
        }
    }

    /// Places the visit on the technicians' days as the transaction read them.
    fn decide(
        &self,
        visits: &VisitMap,
        order: &WorkOrder,
        done: &FollowupDone,
        now: Timestamp,
    ) -> Decision {
        let (placed, moved) = match self.plan(visits, now) {
            Ok(r) => (r.placement, r.moved),
            Err(why) => return Decision::Unavailable(why.to_string()),
        };
        let part_order = done.answer["OrderedParts"].get(0).and_then(|po| {
            Some((
                po["PartOrderNum"].as_str()?.to_string(),
                po["Parts"].clone(),
            ))
        });
        Decision::Write(Box::new(BookingWrite {
            new_order: order
                .clone()
                .assigned(&placed.tech, placed.start, placed.end),
            shifted: placed
                .shifted
                .iter()
                .map(|s| (s.order_num.clone(), s.start, s.end))
                .collect(),
            moved: moved
                .into_iter()
                .map(|m| Reassigned {
                    order_num: m.order_num,
                    from_tech: m.from_tech,
                    to_tech: m.to_tech,
                    start: m.start,
                    end: m.end,
                })
                .collect(),
            part_order,
            done: done.clone(),
        }))
    }
}

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

/// The follow-up work order (README, "The built-in scheduler"), without its technician and
/// planned times.
fn follow_up_order(
    num: &WorkOrderNum,
    original: &WorkOrder,
    req: &BookJob,
    job: &Job,
    window: &Window,
    offer: (&str, &str),
) -> Result<WorkOrder, DomainError> {
    let mut m = Map::new();
    m.insert("OrderNum".into(), json!(num.as_str()));
    m.insert("OrderStatus".into(), json!(OrderStatus::New.code()));
    m.insert("DispatchStatus".into(), json!(3));
    m.insert("OriginalOrderNum".into(), json!(original.order_num()));
    if let Some(t) = req.str("OrderType").or(original.order_type()) {
        m.insert("OrderType".into(), json!(t));
    }
    // The technician and planned times are the placement's (`WorkOrder::assigned`).
    m.insert("PlannedDur".into(), json!(job.duration_minutes));
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
