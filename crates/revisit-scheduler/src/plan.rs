//! Slot search and booking placement (docs/scheduler.md §4–§5).
//!
//! # The model of a technician's day
//!
//! A technician's day is a route from home, through their booked visits in order of planned
//! arrival, back home. For a window and a technician we try the new visit at every position of that
//! route (visits keep their order) and take the earliest arrival the route allows:
//!
//! - the new visit arrives inside the window, inside one of the day's shift segments, no earlier
//!   than shift start + travel from home when it is first, after the previous visit's finish +
//!   travel otherwise, and fits the customer's availability;
//! - it finishes within that shift segment, and, when last, has time to drive home before it ends;
//! - every later visit is pushed later only as much as needed (never earlier), and a pushed visit
//!   must still arrive inside its own promised window, lie wholly inside one shift segment (a
//!   visit is never pushed into a break between two segments), and, when last, reach home before
//!   that segment ends.
//!
//! Visits the insertion leaves untouched are accepted as they are booked (a CRM may have put one
//! outside the rules); only what we add or move is checked. Taking the earliest arrival is optimal:
//! arriving later never helps the visits after it, and the added travel does not depend on the time.
//!
//! All instants inside this module are UTC seconds (`i64`); travel is whole minutes.
//!
//! # Customer availability (`TimeConstraints` 1002 / 1003)
//!
//! When any 1002 ("available") period is given, the whole visit `[arrival, arrival + duration]` must
//! lie inside one of them. The visit must not overlap any 1003 ("not available") period (touching
//! its edge is fine). Within those rules the arrival is still anywhere inside the window.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::model::{
    GeoPoint, OfferOrder, Policy, Skill, Technician, WorkCenter, parse_date, parse_hhmm,
    weekday_mask,
};
use crate::reopt::{FactsSource, STRANGER, minutes_to_secs};
use crate::repair;
use crate::route::{Model, Node, RouteDef, Sol};
use crate::travel::{GreatCircle, Travel, great_circle_km};
use crate::windows::{LocalDays, Window, describe, describe_instant, offer_id, windows_by_day};

/// A booked visit of a technician.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub order_num: String,
    /// Planned arrival.
    pub start: Timestamp,
    /// Planned finish: `end - start` is the duration.
    pub end: Timestamp,
    /// `None` = at the technician's home (for travel).
    pub location: Option<GeoPoint>,
    /// The window promised to the customer; the arrival must stay inside it.
    pub window: Window,
}

/// Everything the scheduler knows at one moment. `visits` maps `UserName` to that technician's
/// visits, sorted by start (an unsorted list is sorted on a copy).
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub work_centers: &'a [WorkCenter],
    pub technicians: &'a [Technician],
    pub visits: &'a dyn VisitSource,
}

/// Where a snapshot finds a technician's visits: a plain map, or a map of shared vectors (so a
/// cache can replace one technician's day without copying everyone's).
pub trait VisitSource: std::fmt::Debug + Sync {
    fn visits_of(&self, user_name: &str) -> Option<&[Visit]>;
}

impl VisitSource for HashMap<String, Vec<Visit>> {
    fn visits_of(&self, user_name: &str) -> Option<&[Visit]> {
        self.get(user_name).map(Vec::as_slice)
    }
}

impl VisitSource for HashMap<String, std::sync::Arc<Vec<Visit>>> {
    fn visits_of(&self, user_name: &str) -> Option<&[Visit]> {
        self.get(user_name).map(|v| v.as_slice())
    }
}

/// A customer time constraint: 1002 (`available: true`) or 1003 (`available: false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    pub available: bool,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEta {
    /// `None` = no estimate: counts as delivered `parts_default_lead_days` after now.
    pub estimated_delivery: Option<Timestamp>,
}

/// The visit to place.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub duration_minutes: u32,
    pub skills: Vec<Skill>,
    pub location: GeoPoint,
    /// `None` = the work center nearest to `location`.
    pub service_area_id: Option<String>,
    /// The original order's technician: others cost `non_original_penalty_minutes` more.
    pub preferred_tech: Option<String>,
    pub customer: Vec<Availability>,
    pub required_parts: Vec<PartEta>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub window: Window,
    /// Stable id, see [`offer_id`].
    pub id: String,
    /// Person-readable local window, see [`describe`].
    pub desc: String,
    /// Lower is better: added travel minutes of the cheapest feasible insertion (over technicians
    /// and positions) + `non_original_penalty_minutes` when that technician is not
    /// `preferred_tech` + `per_day_penalty_minutes` x local dates between now and the window.
    pub cost: f64,
    /// The technician the cheapest insertion uses (booking re-decides).
    pub tech: String,
    /// Added travel minutes of that insertion (the travel part of `cost`; with a repair, the
    /// change of the whole repair's travel).
    pub added_travel_minutes: i64,
    /// Among the policy's `BestOffers` cheapest offers (by `cost`, earlier first on ties).
    pub best: bool,
    /// Only possible by moving one or two booked visits to other technicians: book it with
    /// [`plan_with_repair`]. Always false from [`search`].
    pub repair: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// At most `max_slots`, in the policy's `OfferOrder` (chronological by default).
    pub offers: Vec<Offer>,
    /// Empty when there are offers, unless parts pushed the first slot out; otherwise says why
    /// there is nothing to offer.
    pub status_msg: String,
    /// Nothing offered because every window of the horizon is taken on the days the
    /// technicians work (not for want of a technician, a work center or parts).
    pub fully_booked: bool,
}

/// An existing visit moved later to make room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shifted {
    pub order_num: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Where a booking goes: technician, planned arrival and finish, and the visits it pushes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub tech: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub shifted: Vec<Shifted>,
    pub cost: f64,
}

/// A booked visit a repair gives to another technician, or whose time it changes on a day it
/// touches (then `from_tech == to_tech`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub order_num: String,
    pub from_tech: String,
    pub to_tech: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Where a booking goes when a repair may be needed ([`plan_with_repair`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Repaired {
    /// The new visit as from [`plan`]: `shifted` lists the booking technician's visits whose
    /// times change (with a repair they may also move earlier, within their windows); `cost`
    /// includes the travel the repair changes.
    pub placement: Placement,
    /// Visits the repair moves to other technicians, and time changes on those technicians'
    /// days. Empty when plain insertion was enough. Commit them with the booking, atomically.
    pub moved: Vec<Moved>,
}

/// Why a window cannot be booked. `Display` gives a sentence for `StatusMsg` / problem details.
#[derive(Debug, Clone, PartialEq)]
pub enum Unavailable {
    /// The job's work center is unknown or unusable (the message says which).
    WorkCenter(String),
    /// The window is not one the policy offers within the horizon.
    NotOffered,
    /// The window starts before the lead time or the parts allow.
    TooEarly { earliest: Timestamp },
    /// The customer's availability leaves no arrival in the window.
    Customer,
    /// No active technician of the work center has the skills (the message names them).
    NoTechnician(String),
    /// No technician can fit the visit in the window any more.
    Booked,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::WorkCenter(msg) | Unavailable::NoTechnician(msg) => f.write_str(msg),
            Unavailable::NotOffered => {
                f.write_str("The window is not an arrival window the work center offers.")
            }
            Unavailable::TooEarly { earliest } => write!(
                f,
                "The window starts too early: the first possible start is {earliest}."
            ),
            Unavailable::Customer => {
                f.write_str("The customer is not available for the whole visit in this window.")
            }
            Unavailable::Booked => {
                f.write_str("No technician can fit the visit into this window any more.")
            }
        }
    }
}

impl std::error::Error for Unavailable {}

// =============================================================================================
// Search context: everything derived from the job and the work center once per call.

const MINUTE: i64 = 60;

struct Ctx<'a> {
    snap: &'a Snapshot<'a>,
    job: &'a Job,
    wc: &'a WorkCenter,
    policy: &'a Policy,
    tz: TimeZone,
    travel: &'a dyn Travel,
    /// The horizon's local dates (work center zone), index 0 = now's local date.
    local: LocalDays,
    lead_gate: i64,
    /// Latest part delivery (no buffer) and the resulting earliest start, when parts are needed.
    parts_eta: Option<i64>,
    parts_gate: Option<i64>,
    dur: i64,
    /// Customer periods, sorted by start.
    avail: Vec<(i64, i64)>,
    unavail: Vec<(i64, i64)>,
}

fn secs(t: Timestamp) -> i64 {
    t.as_second()
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap_or(Timestamp::MAX)
}

/// The job's work center: by id, else the nearest to the job.
fn resolve_work_center<'a>(snap: &Snapshot<'a>, job: &Job) -> Result<&'a WorkCenter, String> {
    match &job.service_area_id {
        Some(id) => snap
            .work_centers
            .iter()
            .find(|wc| &wc.service_area_id == id)
            .ok_or_else(|| {
                format!(
                    "Unknown work center \"{id}\": no such ServiceAreaID is set up for scheduling."
                )
            }),
        None => snap
            .work_centers
            .iter()
            .min_by(|a, b| {
                let da = great_circle_km(a.location(), job.location);
                let db = great_circle_km(b.location(), job.location);
                da.total_cmp(&db)
            })
            .ok_or_else(|| "No work center is set up for scheduling.".to_string()),
    }
}

impl<'a> Ctx<'a> {
    fn new(
        snap: &'a Snapshot<'a>,
        job: &'a Job,
        now: Timestamp,
        travel: &'a dyn Travel,
        wc: &'a WorkCenter,
    ) -> Result<Self, String> {
        let policy = &wc.policy;
        let tz = TimeZone::get(&wc.time_zone).map_err(|_| {
            format!(
                "Work center {} has an unknown time zone \"{}\".",
                wc.service_area_id, wc.time_zone
            )
        })?;
        let today = tz.to_datetime(now).date();
        let local = LocalDays::new(&tz, today, policy.horizon_days as usize);
        let now_s = secs(now);
        let lead_gate = now_s + i64::from(policy.min_lead_minutes) * MINUTE;
        let default_part = now_s + i64::from(policy.parts_default_lead_days) * 86_400;
        let parts_eta = job
            .required_parts
            .iter()
            .map(|p| p.estimated_delivery.map_or(default_part, secs))
            .max();
        let parts_gate = parts_eta.map(|eta| eta + i64::from(policy.parts_buffer_minutes) * MINUTE);
        let mut avail: Vec<(i64, i64)> = Vec::new();
        let mut unavail: Vec<(i64, i64)> = Vec::new();
        for a in &job.customer {
            let p = (secs(a.start), secs(a.end));
            if a.available {
                avail.push(p);
            } else {
                unavail.push(p);
            }
        }
        avail.sort_unstable();
        unavail.sort_unstable();
        Ok(Ctx {
            snap,
            job,
            wc,
            policy,
            tz,
            travel,
            local,
            lead_gate,
            parts_eta,
            parts_gate,
            dur: i64::from(job.duration_minutes) * MINUTE,
            avail,
            unavail,
        })
    }

    /// The earliest instant windows may start at (lead time and parts).
    fn gate(&self) -> i64 {
        self.parts_gate
            .map_or(self.lead_gate, |p| p.max(self.lead_gate))
    }

    /// Earliest arrival `>= a` and `<= latest` at which the customer is available for the whole
    /// visit, if any.
    fn customer_earliest(&self, mut a: i64, latest: i64) -> Option<i64> {
        loop {
            if a > latest {
                return None;
            }
            if !self.avail.is_empty() {
                // Periods are sorted by start, so the first that fits gives the earliest arrival.
                let p = self.avail.iter().find(|p| a.max(p.0) + self.dur <= p.1)?;
                a = a.max(p.0);
            }
            // Strict overlap: a visit may end exactly when the customer leaves.
            match self.unavail.iter().find(|u| u.0 < a + self.dur && u.1 > a) {
                Some(u) => a = u.1,
                None => return (a <= latest).then_some(a),
            }
        }
    }

    /// The arrivals in window `w` at which the customer is available for the whole visit, as
    /// sorted disjoint inclusive intervals: the same rule as [`Ctx::customer_earliest`].
    fn arrival_intervals(&self, w: (i64, i64)) -> Vec<(i64, i64)> {
        let mut ivs: Vec<(i64, i64)> = if self.avail.is_empty() {
            vec![w]
        } else {
            self.avail
                .iter()
                .map(|p| (p.0.max(w.0), (p.1 - self.dur).min(w.1)))
                .filter(|iv| iv.0 <= iv.1)
                .collect()
        };
        ivs.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ivs.len());
        for iv in ivs {
            match merged.last_mut() {
                Some(last) if iv.0 <= last.1 => last.1 = last.1.max(iv.1),
                _ => merged.push(iv),
            }
        }
        // A 1003 period (u0, u1) rules out the arrivals in the open interval (u0 - dur, u1).
        for &(u0, u1) in &self.unavail {
            let (cut_lo, cut_hi) = (u0 - self.dur, u1);
            merged = merged
                .into_iter()
                .flat_map(|(lo, hi)| {
                    let before = (lo, hi.min(cut_lo));
                    let after = (lo.max(cut_hi), hi);
                    [before, after].into_iter().filter(|iv| iv.0 <= iv.1)
                })
                .collect();
            merged.dedup();
        }
        merged
    }

    fn eligible(&self, t: &Technician) -> bool {
        t.active
            && t.service_area_ids.contains(&self.wc.service_area_id)
            && t.has_skills(&self.job.skills)
    }

    fn penalty(&self, tech: &Technician) -> f64 {
        match &self.job.preferred_tech {
            Some(u) if *u != tech.user_name => self.policy.non_original_penalty_minutes,
            _ => 0.0,
        }
    }

    fn skills_text(&self) -> String {
        self.job
            .skills
            .iter()
            .map(|s| format!("{} level {}", s.code, s.level))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// =============================================================================================
// A technician's shifts, parsed once per call.

pub(crate) struct ShiftPattern {
    weekly: Vec<(u8, u16, u16)>,
    exceptions: Vec<(Date, Option<(u16, u16)>)>,
}

impl ShiftPattern {
    pub(crate) fn new(t: &Technician) -> Self {
        let weekly = t
            .shifts
            .iter()
            .filter_map(|s| {
                let (a, b) = (parse_hhmm(&s.start)?, parse_hhmm(&s.end)?);
                (b > a).then_some((weekday_mask(&s.days), a, b))
            })
            .collect();
        let exceptions = t
            .exceptions
            .iter()
            .filter_map(|e| {
                let date = parse_date(&e.date)?;
                let span = match (&e.start, &e.end) {
                    (Some(s), Some(en)) => match (parse_hhmm(s), parse_hhmm(en)) {
                        (Some(a), Some(b)) if b > a => Some((a, b)),
                        _ => None,
                    },
                    // Half-specified or unparsable: safest reading is "not working".
                    _ => None,
                };
                Some((date, span))
            })
            .collect();
        ShiftPattern { weekly, exceptions }
    }

    /// Fills `out` with the UTC shift segments of day `i` of `local`, sorted by start. Exceptions
    /// on that date replace the weekly pattern (a day off when none of them has times).
    pub(crate) fn segments(&self, local: &LocalDays, i: usize, out: &mut Vec<(i64, i64)>) {
        out.clear();
        let date = local.days[i].date;
        let mut excepted = false;
        for &(d, span) in &self.exceptions {
            if d == date {
                excepted = true;
                if let Some((a, b)) = span {
                    out.push((local.at(i, a), local.at(i, b)));
                }
            }
        }
        if !excepted {
            let bit = 1u8 << date.weekday().to_monday_zero_offset();
            for &(mask, a, b) in &self.weekly {
                if mask & bit != 0 {
                    out.push((local.at(i, a), local.at(i, b)));
                }
            }
        }
        out.retain(|s| s.1 > s.0);
        out.sort_unstable();
    }
}

// =============================================================================================
// One technician-day, loaded into flat arrays so the insertion loop does not allocate.

/// Travel not computed yet (travel is never negative).
const UNKNOWN: i64 = -1;

/// A technician-day. Travel is computed on first use and memoised: most insertion positions are
/// ruled out by time alone, and travel (a haversine, or a matrix lookup) is the costly part.
struct Day<'t> {
    travel: &'t dyn Travel,
    job: GeoPoint,
    home: GeoPoint,
    start: Vec<i64>,
    end: Vec<i64>,
    /// End of each visit's promised window.
    promised_end: Vec<i64>,
    loc: Vec<GeoPoint>,
    /// Travel seconds, memoised: visit i -> i+1, visit i -> job, job -> visit i.
    leg: Vec<Cell<i64>>,
    to_job: Vec<Cell<i64>>,
    job_to: Vec<Cell<i64>>,
    home_to_first: Cell<i64>,
    last_to_home: Cell<i64>,
    /// Per technician (same every day): home -> job, job -> home.
    home_to_new: i64,
    new_to_home: i64,
    /// Index of the first loaded visit in the technician's list (to name shifted visits).
    offset: usize,
}

impl<'t> Day<'t> {
    fn new(travel: &'t dyn Travel, job: GeoPoint) -> Self {
        Day {
            travel,
            job,
            home: job,
            start: Vec::new(),
            end: Vec::new(),
            promised_end: Vec::new(),
            loc: Vec::new(),
            leg: Vec::new(),
            to_job: Vec::new(),
            job_to: Vec::new(),
            home_to_first: Cell::new(UNKNOWN),
            last_to_home: Cell::new(UNKNOWN),
            home_to_new: 0,
            new_to_home: 0,
            offset: 0,
        }
    }

    fn len(&self) -> usize {
        self.start.len()
    }

    fn secs(&self, from: GeoPoint, to: GeoPoint) -> i64 {
        i64::from(self.travel.minutes(from, to)) * MINUTE
    }

    fn memo(&self, cell: &Cell<i64>, from: GeoPoint, to: GeoPoint) -> i64 {
        let v = cell.get();
        if v != UNKNOWN {
            return v;
        }
        let v = self.secs(from, to);
        cell.set(v);
        v
    }

    /// Starts a technician: their home and the travel between home and the job.
    fn prime(&mut self, home: GeoPoint) {
        self.home = home;
        self.home_to_new = self.secs(home, self.job);
        self.new_to_home = self.secs(self.job, home);
    }

    fn load(&mut self, visits: &[Visit], offset: usize) {
        self.start.clear();
        self.end.clear();
        self.promised_end.clear();
        self.loc.clear();
        self.offset = offset;
        for v in visits {
            self.start.push(secs(v.start));
            self.end.push(secs(v.end));
            self.promised_end.push(secs(v.window.end));
            self.loc.push(v.location.unwrap_or(self.home));
        }
        let n = visits.len();
        for memo in [&mut self.leg, &mut self.to_job, &mut self.job_to] {
            memo.clear();
            memo.resize(n, Cell::new(UNKNOWN));
        }
        self.home_to_first.set(UNKNOWN);
        self.last_to_home.set(UNKNOWN);
    }

    fn leg(&self, i: usize) -> i64 {
        self.memo(&self.leg[i], self.loc[i], self.loc[i + 1])
    }
    fn to_job(&self, i: usize) -> i64 {
        self.memo(&self.to_job[i], self.loc[i], self.job)
    }
    fn job_to(&self, i: usize) -> i64 {
        self.memo(&self.job_to[i], self.job, self.loc[i])
    }
    fn home_to_first(&self) -> i64 {
        self.memo(&self.home_to_first, self.home, self.loc[0])
    }
    fn last_to_home(&self) -> i64 {
        self.memo(&self.last_to_home, self.loc[self.len() - 1], self.home)
    }

    /// Added travel (seconds) of the new visit at position `k`.
    fn added_travel(&self, k: usize) -> i64 {
        let n = self.len();
        let into = if k == 0 {
            self.home_to_new
        } else {
            self.to_job(k - 1)
        };
        let out = if k == n {
            self.new_to_home
        } else {
            self.job_to(k)
        };
        let base = match (k, n) {
            (_, 0) => 0,
            (0, _) => self.home_to_first(),
            (k, n) if k == n => self.last_to_home(),
            (k, _) => self.leg(k - 1),
        };
        into + out - base
    }
}

/// Tries the new visit at position `k` of `day`, inside shift segment `seg` (one of `segs`, the
/// day's segments), arriving in `w`. Returns the arrival, and records pushed visits (index, new
/// start) in `shifted` when given.
fn try_insert(
    ctx: &Ctx,
    day: &Day,
    k: usize,
    seg: (i64, i64),
    segs: &[(i64, i64)],
    w: (i64, i64),
    mut shifted: Option<&mut Vec<(usize, i64)>>,
) -> Option<(i64, usize)> {
    let n = day.len();
    let ready = if k == 0 {
        seg.0 + day.home_to_new
    } else {
        (day.end[k - 1] + day.to_job(k - 1)).max(seg.0)
    };
    let arrival = ctx.customer_earliest(ready.max(w.0), w.1)?;
    let finish = arrival + ctx.dur;
    if finish > seg.1 || (k == n && finish + day.new_to_home > seg.1) {
        return None;
    }
    // Push the visits after it, as little as needed.
    let (mut t, mut hop) = (finish, if k < n { day.job_to(k) } else { 0 });
    let mut pushed = 0;
    for i in k..n {
        let arrive = day.start[i].max(t + hop);
        if arrive == day.start[i] {
            break; // no push here, so none after either
        }
        let fin = arrive + (day.end[i] - day.start[i]);
        if arrive > day.promised_end[i] {
            return None;
        }
        // A pushed visit stays inside one shift block: with a split shift, pushing it past the
        // end of its block would put it in the break, even when the day's last block ends later.
        let block = segs.iter().find(|s| s.0 <= arrive && fin <= s.1)?;
        if i + 1 == n && fin + day.last_to_home() > block.1 {
            return None;
        }
        if let Some(out) = shifted.as_deref_mut() {
            out.push((i, arrive));
        }
        pushed += 1;
        t = fin;
        hop = if i + 1 < n { day.leg(i) } else { 0 };
    }
    Some((arrival, pushed))
}

/// The cheapest insertion of the job into `day` for window `w`: (added travel seconds, arrival,
/// position, segment). Among equally cheap insertions the one pushing the fewest visits wins, then
/// the earliest arrival.
fn best_insertion(
    ctx: &Ctx,
    day: &Day,
    segs: &[(i64, i64)],
    w: (i64, i64),
) -> Option<(i64, i64, usize, usize)> {
    let n = day.len();
    // (added travel, pushed visits, arrival, position, segment)
    let mut best: Option<(i64, usize, i64, usize, usize)> = None;
    for (si, &seg) in segs.iter().enumerate() {
        // The arrival must be in both the window and the segment (and leave time to work).
        if seg.0 > w.1 || seg.1 < w.0 + ctx.dur {
            continue;
        }
        for k in 0..=n {
            if k > 0 && day.end[k - 1] > w.1 {
                break; // later positions start even later
            }
            if k < n && day.promised_end[k] < w.0 {
                continue; // visit k could not be pushed behind anything in this window
            }
            let added = day.added_travel(k);
            if best.is_some_and(|b| b.0 < added || (b.0 == added && b.1 == 0)) {
                continue;
            }
            if let Some((arrival, pushed)) = try_insert(ctx, day, k, seg, segs, w, None) {
                let cand = (added, pushed, arrival, k, si);
                if best.is_none_or(|b| (cand.0, cand.1, cand.2) < (b.0, b.1, b.2)) {
                    best = Some(cand);
                }
            }
        }
    }
    best.map(|(added, _, arrival, k, si)| (added, arrival, k, si))
}

/// A technician prepared for the search: parsed shifts, sorted visits, local days of their zone.
struct TechRun<'a> {
    tech: &'a Technician,
    pattern: ShiftPattern,
    visits: Cow<'a, [Visit]>,
    local: &'a LocalDays,
}

struct Engine<'a> {
    ctx: Ctx<'a>,
    /// Local days of other time zones (technicians whose first work center is elsewhere).
    other_zones: Vec<(String, LocalDays)>,
    techs: Vec<usize>,
}

impl<'a> Engine<'a> {
    fn new(ctx: Ctx<'a>) -> Self {
        let snap = ctx.snap;
        let techs: Vec<usize> = (0..snap.technicians.len())
            .filter(|&i| ctx.eligible(&snap.technicians[i]))
            .collect();
        let mut other_zones: Vec<(String, LocalDays)> = Vec::new();
        for &i in &techs {
            let zone = tech_zone(snap, &snap.technicians[i]);
            if let Some(zone) = zone
                && zone != ctx.wc.time_zone
                && !other_zones.iter().any(|(z, _)| z == zone)
                && let Ok(tz) = TimeZone::get(zone)
            {
                let first = ctx.local.days.first().map(|d| d.date).unwrap_or_default();
                other_zones.push((
                    zone.to_string(),
                    LocalDays::new(&tz, first, ctx.local.days.len()),
                ));
            }
        }
        Engine {
            ctx,
            other_zones,
            techs,
        }
    }

    fn run(&self, i: usize) -> TechRun<'_> {
        let snap = self.ctx.snap;
        let tech = &snap.technicians[i];
        let visits: Cow<'_, [Visit]> = match snap.visits.visits_of(&tech.user_name) {
            None => Cow::Borrowed(&[]),
            Some(v) if v.is_sorted_by_key(|v| v.start) => Cow::Borrowed(v),
            Some(v) => {
                let mut v = v.to_vec();
                v.sort_by_key(|v| v.start);
                Cow::Owned(v)
            }
        };
        let local = tech_zone(snap, tech)
            .and_then(|z| self.other_zones.iter().find(|(name, _)| name == z))
            .map_or(&self.ctx.local, |(_, l)| l);
        TechRun {
            tech,
            pattern: ShiftPattern::new(tech),
            visits,
            local,
        }
    }

    /// Loads technician-day `d` into `day` and `segs`; false when the technician is off that day.
    fn load_day(&self, run: &TechRun, d: usize, day: &mut Day, segs: &mut Vec<(i64, i64)>) -> bool {
        if d >= run.local.days.len() {
            return false;
        }
        run.pattern.segments(run.local, d, segs);
        if segs.is_empty() {
            return false;
        }
        let bounds = &run.local.days[d];
        let lo = run.visits.partition_point(|v| secs(v.start) < bounds.start);
        let hi = run.visits.partition_point(|v| secs(v.start) < bounds.end);
        day.load(&run.visits[lo..hi], lo);
        true
    }

    fn cost(&self, tech: &Technician, added_travel_s: i64, day_index: usize) -> f64 {
        added_travel_s as f64 / MINUTE as f64
            + self.ctx.penalty(tech)
            + self.ctx.policy.per_day_penalty_minutes * day_index as f64
    }
}

// =============================================================================================
// Bounded repair: one local date as a route model (see `crate::repair`).

/// Insertion checks one repair may spend (per window): a few milliseconds.
const REPAIR_BUDGET: usize = 60_000;

/// A local date of the work center as a route model, the new job as its last node.
struct RepairDay<'a> {
    model: Model<'a>,
    sol: Sol,
    prepared: repair::Prepared,
    /// For each node but the job: its technician (index) and the visit.
    visits: Vec<(usize, Visit)>,
    job: u32,
}

/// A repair found for one window.
struct RepairFound {
    /// As graded: added travel and penalties (minutes) + the per-day penalty.
    cost: f64,
    /// The technician (index) who takes the job.
    tech: usize,
    /// Added travel seconds of the whole repair.
    added: i64,
    found: repair::Found,
}

impl<'a> Engine<'a> {
    /// Day `d` with every active technician of the work center (a moved visit may go to one
    /// without the job's skills) and their visits; `None` when nobody works for the center.
    fn repair_day(&self, d: usize, facts: &dyn FactsSource, now: i64) -> Option<RepairDay<'a>> {
        let ctx = &self.ctx;
        let snap = ctx.snap;
        let crew: Vec<usize> = (0..snap.technicians.len())
            .filter(|&i| {
                let t = &snap.technicians[i];
                t.active && t.service_area_ids.contains(&ctx.wc.service_area_id)
            })
            .collect();
        if crew.is_empty() {
            return None;
        }
        let tech_id: HashMap<&str, u32> = snap
            .technicians
            .iter()
            .enumerate()
            .map(|(i, t)| (t.user_name.as_str(), i as u32))
            .collect();
        let mut locs: Vec<GeoPoint> = crew.iter().map(|&i| snap.technicians[i].home).collect();
        let mut visits: Vec<(usize, Visit)> = Vec::new();
        let mut routes = Vec::with_capacity(crew.len());
        let mut seqs: Vec<Vec<u32>> = Vec::with_capacity(crew.len());
        let mut segs = Vec::new();
        for (r, &ti) in crew.iter().enumerate() {
            let run = self.run(ti);
            segs.clear();
            let mut seq = Vec::new();
            if d < run.local.days.len() {
                run.pattern.segments(run.local, d, &mut segs);
                let bounds = &run.local.days[d];
                let lo = run.visits.partition_point(|v| secs(v.start) < bounds.start);
                let hi = run.visits.partition_point(|v| secs(v.start) < bounds.end);
                for v in &run.visits[lo..hi] {
                    seq.push(visits.len() as u32);
                    locs.push(v.location.unwrap_or(run.tech.home));
                    visits.push((ti, v.clone()));
                }
            }
            routes.push(RouteDef {
                tech: ti as u32,
                home: r as u32,
                segs: segs.clone(),
                open: true,
            });
            seqs.push(seq);
        }
        locs.push(ctx.job.location);
        let mut model = Model::new(
            ctx.travel,
            locs,
            minutes_to_secs(ctx.policy.non_original_penalty_minutes),
        );
        model.routes = routes;
        let freeze_until = now + i64::from(ctx.policy.freeze_minutes) * MINUTE;
        let told = |u: Option<&str>| u.map(|u| tech_id.get(u).copied().unwrap_or(STRANGER));
        let route_of: HashMap<usize, u32> = crew
            .iter()
            .enumerate()
            .map(|(r, &ti)| (ti, r as u32))
            .collect();
        for (k, (ti, v)) in visits.iter().enumerate() {
            let own = route_of[ti];
            let f = facts.facts_of(&snap.technicians[*ti].user_name, &v.order_num);
            let f = f.as_ref();
            let lo = secs(v.window.start).max(freeze_until);
            let hi = secs(v.window.end);
            let moves = f.is_some_and(|f| !f.started && !f.pinned)
                && secs(v.start) >= freeze_until
                && v.location.is_some()
                && lo <= hi;
            let routes: Vec<u32> = match f {
                Some(f) if moves => (0..crew.len() as u32)
                    .filter(|&r| snap.technicians[crew[r as usize]].has_skills(&f.skills))
                    .collect(),
                _ => vec![own],
            };
            model.nodes.push(Node {
                loc: (crew.len() + k) as u32,
                dur: (secs(v.end) - secs(v.start)).max(0),
                allowed: vec![(lo, hi)],
                fixed: (!moves).then_some(secs(v.start)),
                routes,
                told: told(f.and_then(|f| f.told_tech.as_deref())),
            });
        }
        let job = model.nodes.len() as u32;
        model.nodes.push(Node {
            loc: (crew.len() + visits.len()) as u32,
            dur: ctx.dur,
            allowed: Vec::new(),
            fixed: None,
            routes: (0..crew.len() as u32)
                .filter(|&r| ctx.eligible(&snap.technicians[crew[r as usize]]))
                .collect(),
            told: told(ctx.job.preferred_tech.as_deref()),
        });
        // A day that already breaks a rule as booked is left alone (plain insertion accepts
        // it as it is; a repair does not build on it).
        let sol = loop {
            match Sol::new(&model, seqs.clone()) {
                Ok(sol) => break sol,
                Err(r) => {
                    model.routes[r].open = false;
                    for &k in &seqs[r] {
                        let node = &mut model.nodes[k as usize];
                        node.fixed = Some(secs(visits[k as usize].1.start));
                        node.routes = vec![r as u32];
                    }
                }
            }
        };
        let prepared = repair::Prepared::new(&sol);
        Some(RepairDay {
            model,
            sol,
            prepared,
            visits,
            job,
        })
    }

    /// The cheapest bounded repair that fits the job in window `w` of day `d`.
    fn try_repair(&self, day: &mut RepairDay, d: usize, w: (i64, i64)) -> Option<RepairFound> {
        let allowed = self.ctx.arrival_intervals(w);
        if allowed.is_empty() {
            return None;
        }
        day.model.nodes[day.job as usize].allowed = allowed;
        let found = repair::find(&day.model, &day.sol, &day.prepared, day.job, REPAIR_BUDGET)?;
        let m = &day.model;
        let travel_of = |r: u32, seq: &[u32]| -> i64 {
            m.cost(r, seq) - seq.iter().map(|&v| m.pen(v, r)).sum::<i64>()
        };
        let added = found
            .seqs
            .iter()
            .map(|(r, seq)| travel_of(*r, seq) - travel_of(*r, &day.sol.routes[*r as usize].seq))
            .sum();
        Some(RepairFound {
            cost: found.cost as f64 / MINUTE as f64
                + self.ctx.policy.per_day_penalty_minutes * d as f64,
            tech: m.routes[found.job_route as usize].tech as usize,
            added,
            found,
        })
    }

    /// The booking a repair gives: times for every route it changes (booked times kept where
    /// the route allows), checked again against the rules.
    fn repaired(&self, day: &RepairDay, r: &RepairFound) -> Option<Repaired> {
        let snap = self.ctx.snap;
        let m = &day.model;
        let name = |ti: usize| snap.technicians[ti].user_name.clone();
        let mut placement: Option<(i64, i64)> = None;
        let mut shifted = Vec::new();
        let mut moved = Vec::new();
        for (route, seq) in &r.found.seqs {
            let keep: Vec<i64> = seq
                .iter()
                .map(|&k| {
                    if k != day.job && day.sol.route_of[k as usize] == *route {
                        secs(day.visits[k as usize].1.start)
                    } else {
                        i64::MIN
                    }
                })
                .collect();
            let times = m.times(*route, seq, &keep)?;
            let to = m.routes[*route as usize].tech as usize;
            for (&k, &t) in seq.iter().zip(&times) {
                if k == day.job {
                    placement = Some((t, t + self.ctx.dur));
                    continue;
                }
                let (from, v) = &day.visits[k as usize];
                let dur = secs(v.end) - secs(v.start);
                if *from == to && t == secs(v.start) {
                    continue;
                }
                if *from == to && *route == r.found.job_route {
                    shifted.push(Shifted {
                        order_num: v.order_num.clone(),
                        start: ts(t),
                        end: ts(t + dur),
                    });
                } else {
                    moved.push(Moved {
                        order_num: v.order_num.clone(),
                        from_tech: name(*from),
                        to_tech: name(to),
                        start: ts(t),
                        end: ts(t + dur),
                    });
                }
            }
        }
        let (start, end) = placement?;
        Some(Repaired {
            placement: Placement {
                tech: name(r.tech),
                start: ts(start),
                end: ts(end),
                shifted,
                cost: r.cost,
            },
            moved,
        })
    }
}

fn tech_zone<'s>(snap: &Snapshot<'s>, tech: &Technician) -> Option<&'s str> {
    let first = tech.service_area_ids.first()?;
    snap.work_centers
        .iter()
        .find(|wc| &wc.service_area_id == first)
        .map(|wc| wc.time_zone.as_str())
}

// =============================================================================================
// Public entry points

/// Offers the best `max_slots` windows for `job`, in the policy's `OfferOrder` (chronological by
/// default), the `BestOffers` cheapest flagged, with the reason when none. Travel is the work
/// center's great-circle estimate.
pub fn search(snap: &Snapshot, job: &Job, now: Timestamp) -> SearchOutcome {
    search_with(snap, job, now, None)
}

/// [`search`] with another travel model (e.g. a road-network matrix) instead of the policy's
/// great-circle estimate.
pub fn search_with(
    snap: &Snapshot,
    job: &Job,
    now: Timestamp,
    travel: Option<&dyn Travel>,
) -> SearchOutcome {
    search_inner(snap, job, now, travel, None)
}

/// [`search_with`] that also offers windows no technician can take as their days stand but a
/// bounded repair makes possible (moving one or two booked visits to other technicians within
/// their promises, see [`plan_with_repair`]); those offers have `repair` set and a cost that
/// includes the repair's travel. Repairs are tried on the earliest full windows first, only
/// while fewer than `max_slots` windows can be offered. Visits without [`crate::VisitFacts`] in
/// `facts` never move.
pub fn search_with_repair(
    snap: &Snapshot,
    job: &Job,
    now: Timestamp,
    travel: Option<&dyn Travel>,
    facts: &dyn FactsSource,
) -> SearchOutcome {
    search_inner(snap, job, now, travel, Some(facts))
}

fn search_inner(
    snap: &Snapshot,
    job: &Job,
    now: Timestamp,
    travel: Option<&dyn Travel>,
    repair: Option<&dyn FactsSource>,
) -> SearchOutcome {
    let none = |msg: String| SearchOutcome {
        offers: Vec::new(),
        status_msg: msg,
        fully_booked: false,
    };
    let wc = match resolve_work_center(snap, job) {
        Ok(wc) => wc,
        Err(msg) => return none(msg),
    };
    let gc = GreatCircle::from_policy(&wc.policy);
    let travel = travel.unwrap_or(&gc);
    let ctx = match Ctx::new(snap, job, now, travel, wc) {
        Ok(c) => c,
        Err(msg) => return none(msg),
    };
    let engine = Engine::new(ctx);
    let ctx = &engine.ctx;
    let horizon = ctx.policy.horizon_days;

    if engine.techs.is_empty() {
        return none(no_technician_msg(ctx));
    }

    // Candidate windows, then the gates in the order a person would explain them.
    let all = windows_by_day(ctx.policy, &ctx.local);
    if all.is_empty() {
        return none(format!(
            "Work center {} offers no arrival window in the next {horizon} days.",
            wc.service_area_id
        ));
    }
    let after_lead: Vec<(usize, Window)> = all
        .into_iter()
        .filter(|(_, w)| secs(w.start) >= ctx.lead_gate)
        .collect();
    if after_lead.is_empty() {
        return none(format!(
            "No arrival window in the next {horizon} days starts at least {} minutes from now.",
            ctx.policy.min_lead_minutes
        ));
    }
    let gate = ctx.gate();
    let lead_count = after_lead.len();
    let after_parts: Vec<(usize, Window)> = after_lead
        .into_iter()
        .filter(|(_, w)| secs(w.start) >= gate)
        .collect();
    let parts_pushed = after_parts.len() < lead_count;
    let parts_note = || {
        let eta = ctx
            .parts_eta
            .map(|e| describe_instant(ts(e), &ctx.tz))
            .unwrap_or_default();
        format!("Parts expected {eta}")
    };
    if after_parts.is_empty() {
        return none(format!(
            "{}; with the {}-minute handling buffer the first possible start ({}) is beyond the {horizon}-day horizon.",
            parts_note(),
            ctx.policy.parts_buffer_minutes,
            describe_instant(ts(gate), &ctx.tz)
        ));
    }
    let windows: Vec<(usize, Window)> = after_parts
        .into_iter()
        .filter(|(_, w)| ctx.customer_earliest(secs(w.start), secs(w.end)).is_some())
        .collect();
    let prefix = if parts_pushed {
        format!("{}; ", parts_note())
    } else {
        String::new()
    };
    if windows.is_empty() {
        return none(format!(
            "{prefix}The customer's availability excludes every arrival window in the next {horizon} days."
        ));
    }

    // best[j] = (cost, technician, added travel seconds) for windows[j].
    let mut best: Vec<Option<(f64, usize, i64)>> = vec![None; windows.len()];
    let mut on_shift = false;
    let mut day = Day::new(ctx.travel, job.location);
    let mut segs = Vec::with_capacity(4);
    // Windows are grouped by day (chronological): ranges of `windows` per day index.
    let mut day_ranges: Vec<(usize, usize, usize)> = Vec::new();
    for (j, (d, _)) in windows.iter().enumerate() {
        match day_ranges.last_mut() {
            Some(r) if r.0 == *d => r.2 = j + 1,
            _ => day_ranges.push((*d, j, j + 1)),
        }
    }
    for &ti in &engine.techs {
        let run = engine.run(ti);
        day.prime(run.tech.home);
        for &(d, from, to) in &day_ranges {
            if !engine.load_day(&run, d, &mut day, &mut segs) {
                continue;
            }
            on_shift = true;
            for j in from..to {
                let w = windows[j].1;
                if let Some((added, ..)) =
                    best_insertion(ctx, &day, &segs, (secs(w.start), secs(w.end)))
                {
                    let cost = engine.cost(run.tech, added, d);
                    if best[j].is_none_or(|(c, ..)| cost < c) {
                        best[j] = Some((cost, ti, added));
                    }
                }
            }
        }
    }

    // Windows no technician can take: try a bounded repair (one day model per date), earliest
    // first, until `max_slots` windows can be offered: a repair is there so that a work center
    // is not called full, not to add choice where there is enough.
    let mut repaired = vec![false; windows.len()];
    if let Some(facts) = repair {
        let mut days: Vec<(usize, Option<RepairDay>)> = Vec::new();
        let mut offerable = best.iter().filter(|b| b.is_some()).count();
        for j in 0..windows.len() {
            if offerable >= ctx.policy.max_slots {
                break;
            }
            if best[j].is_some() {
                continue;
            }
            let (d, w) = (windows[j].0, windows[j].1);
            if !days.iter().any(|(dd, _)| *dd == d) {
                days.push((d, engine.repair_day(d, facts, secs(now))));
            }
            let Some((_, Some(day))) = days.iter_mut().find(|(dd, _)| *dd == d) else {
                continue;
            };
            if let Some(r) = engine.try_repair(day, d, (secs(w.start), secs(w.end))) {
                best[j] = Some((r.cost, r.tech, r.added));
                repaired[j] = true;
                offerable += 1;
            }
        }
    }

    let mut found: Vec<(f64, usize, usize, i64)> = best
        .iter()
        .enumerate()
        .filter_map(|(j, b)| b.map(|(c, t, added)| (c, j, t, added)))
        .collect();
    if found.is_empty() {
        let skills = if job.skills.is_empty() {
            String::new()
        } else {
            format!(" with the skills {}", ctx.skills_text())
        };
        let msg = if on_shift {
            format!(
                "Every arrival window in the next {horizon} days is fully booked for the technicians of {}{skills}.",
                wc.service_area_id
            )
        } else {
            format!(
                "No technician of {}{skills} is on shift on a day with an open arrival window in the next {horizon} days.",
                wc.service_area_id
            )
        };
        return SearchOutcome {
            fully_booked: on_shift,
            ..none(format!("{prefix}{msg}"))
        };
    }
    // Best by cost (earlier first on ties), then in the policy's order.
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    found.truncate(ctx.policy.max_slots);
    let best_few = ctx.policy.best_offers;
    let mut offers: Vec<(usize, Offer)> = found
        .into_iter()
        .enumerate()
        .map(|(rank, (cost, j, t, added))| {
            let window = windows[j].1;
            let offer = Offer {
                window,
                id: offer_id(&wc.service_area_id, &window),
                desc: describe(&window, &ctx.tz),
                cost,
                tech: snap.technicians[t].user_name.clone(),
                added_travel_minutes: added / MINUTE,
                best: rank < best_few,
                repair: repaired[j],
            };
            (j, offer)
        })
        .collect();
    if ctx.policy.offer_order == OfferOrder::Chronological {
        offers.sort_by_key(|o| o.0);
    }
    let offers: Vec<Offer> = offers.into_iter().map(|(_, o)| o).collect();
    let status_msg = match offers.first() {
        Some(first) if parts_pushed => {
            format!("{}; first slot from {}.", parts_note(), first.desc)
        }
        _ => String::new(),
    };
    SearchOutcome {
        offers,
        status_msg,
        fully_booked: false,
    }
}

fn no_technician_msg(ctx: &Ctx) -> String {
    if ctx.job.skills.is_empty() {
        format!(
            "Work center {} has no active technician.",
            ctx.wc.service_area_id
        )
    } else {
        format!(
            "No active technician of work center {} has the skills {}.",
            ctx.wc.service_area_id,
            ctx.skills_text()
        )
    }
}

/// Places `job` in `window` for booking: the window must be one the policy offers within the
/// horizon and pass every gate; picks the cheapest feasible technician (as [`search`] grades) and
/// returns the visits it pushes later. Every window [`search`] offers at the same `now` and
/// snapshot is plannable.
pub fn plan(
    snap: &Snapshot,
    job: &Job,
    window: Window,
    now: Timestamp,
) -> Result<Placement, Unavailable> {
    plan_with(snap, job, window, now, None)
}

/// [`plan`] with another travel model.
pub fn plan_with(
    snap: &Snapshot,
    job: &Job,
    window: Window,
    now: Timestamp,
    travel: Option<&dyn Travel>,
) -> Result<Placement, Unavailable> {
    let wc = resolve_work_center(snap, job).map_err(Unavailable::WorkCenter)?;
    let gc = GreatCircle::from_policy(&wc.policy);
    let travel = travel.unwrap_or(&gc);
    let ctx = Ctx::new(snap, job, now, travel, wc).map_err(Unavailable::WorkCenter)?;
    let engine = Engine::new(ctx);
    let ctx = &engine.ctx;
    let (d, _) = windows_by_day(ctx.policy, &ctx.local)
        .into_iter()
        .find(|(_, w)| *w == window)
        .ok_or(Unavailable::NotOffered)?;
    let w = (secs(window.start), secs(window.end));
    if w.0 < ctx.gate() {
        return Err(Unavailable::TooEarly {
            earliest: ts(ctx.gate()),
        });
    }
    if ctx.customer_earliest(w.0, w.1).is_none() {
        return Err(Unavailable::Customer);
    }
    if engine.techs.is_empty() {
        return Err(Unavailable::NoTechnician(no_technician_msg(ctx)));
    }
    let mut day = Day::new(ctx.travel, job.location);
    let mut segs = Vec::with_capacity(4);
    let mut best: Option<(f64, usize)> = None;
    for &ti in &engine.techs {
        let run = engine.run(ti);
        day.prime(run.tech.home);
        if !engine.load_day(&run, d, &mut day, &mut segs) {
            continue;
        }
        if let Some((added, ..)) = best_insertion(ctx, &day, &segs, w) {
            let cost = engine.cost(run.tech, added, d);
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, ti));
            }
        }
    }
    let (cost, ti) = best.ok_or(Unavailable::Booked)?;
    // Replay the winner to get its arrival and the visits it pushes.
    let run = engine.run(ti);
    day.prime(run.tech.home);
    engine.load_day(&run, d, &mut day, &mut segs);
    let (_, arrival, k, si) = best_insertion(ctx, &day, &segs, w).ok_or(Unavailable::Booked)?;
    let mut pushed = Vec::new();
    try_insert(ctx, &day, k, segs[si], &segs, w, Some(&mut pushed)).ok_or(Unavailable::Booked)?;
    let shifted = pushed
        .into_iter()
        .map(|(i, start)| {
            let v = &run.visits[day.offset + i];
            Shifted {
                order_num: v.order_num.clone(),
                start: ts(start),
                end: ts(start + (secs(v.end) - secs(v.start))),
            }
        })
        .collect();
    Ok(Placement {
        tech: run.tech.user_name.clone(),
        start: ts(arrival),
        end: ts(arrival + ctx.dur),
        shifted,
        cost,
    })
}

/// [`plan_with`], and when no technician can take the window as their days stand, a bounded
/// repair: one or two booked visits move to other technicians (each keeping its date, promised
/// window and the rules of [`crate::reopt`]) to make room. Visits without facts in `facts`,
/// started or pinned ones and those inside the freeze horizon never move. Every window
/// [`search_with_repair`] offers at the same `now` and snapshot is plannable.
pub fn plan_with_repair(
    snap: &Snapshot,
    job: &Job,
    window: Window,
    now: Timestamp,
    travel: Option<&dyn Travel>,
    facts: &dyn FactsSource,
) -> Result<Repaired, Unavailable> {
    match plan_with(snap, job, window, now, travel) {
        Ok(placement) => {
            return Ok(Repaired {
                placement,
                moved: Vec::new(),
            });
        }
        Err(Unavailable::Booked) => {}
        Err(e) => return Err(e),
    }
    let wc = resolve_work_center(snap, job).map_err(Unavailable::WorkCenter)?;
    let gc = GreatCircle::from_policy(&wc.policy);
    let travel = travel.unwrap_or(&gc);
    let ctx = Ctx::new(snap, job, now, travel, wc).map_err(Unavailable::WorkCenter)?;
    let engine = Engine::new(ctx);
    let (d, _) = windows_by_day(engine.ctx.policy, &engine.ctx.local)
        .into_iter()
        .find(|(_, w)| *w == window)
        .ok_or(Unavailable::NotOffered)?;
    let w = (secs(window.start), secs(window.end));
    let mut day = engine
        .repair_day(d, facts, secs(now))
        .ok_or(Unavailable::Booked)?;
    let found = engine
        .try_repair(&mut day, d, w)
        .ok_or(Unavailable::Booked)?;
    engine.repaired(&day, &found).ok_or(Unavailable::Booked)
}

/// Checks a technician's visits for the invariants the scheduler keeps: sorted by start, each
/// ending no earlier than it starts, no two overlapping, enough travel time between consecutive
/// visits on the same local date (`wc_tz`), and every arrival inside its promised window.
pub fn check_day(
    tech: &Technician,
    wc_tz: &TimeZone,
    visits: &[Visit],
    travel: &dyn Travel,
) -> Result<(), String> {
    let loc = |v: &Visit| v.location.unwrap_or(tech.home);
    for v in visits {
        if v.end < v.start {
            return Err(format!(
                "{}: ends ({}) before it starts ({})",
                v.order_num, v.end, v.start
            ));
        }
        if v.start < v.window.start || v.start > v.window.end {
            return Err(format!(
                "{}: arrival {} is outside its promised window {}-{}",
                v.order_num, v.start, v.window.start, v.window.end
            ));
        }
    }
    for pair in visits.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.start < a.start {
            return Err(format!(
                "{} and {}: not sorted by start",
                a.order_num, b.order_num
            ));
        }
        if b.start < a.end {
            return Err(format!("{} and {}: overlap", a.order_num, b.order_num));
        }
        if wc_tz.to_datetime(a.start).date() == wc_tz.to_datetime(b.start).date() {
            let need = i64::from(travel.minutes(loc(a), loc(b))) * MINUTE;
            if secs(b.start) - secs(a.end) < need {
                return Err(format!(
                    "{} and {}: {} min between them, travel needs {} min",
                    a.order_num,
                    b.order_num,
                    (secs(b.start) - secs(a.end)) / MINUTE,
                    need / MINUTE
                ));
            }
        }
    }
    Ok(())
}

/// The technician's shift blocks on the local `date`, sorted, as the search reads them: in the
/// time zone of the technician's first work center in `snap` (`fallback` when that one is not
/// there or its zone is unknown); that date's exceptions when it has any (a day off when none has
/// times), else the weekly pattern. The gaps between blocks are breaks.
pub fn shifts_on(
    snap: &Snapshot,
    tech: &Technician,
    fallback: &TimeZone,
    date: Date,
) -> Vec<(Timestamp, Timestamp)> {
    let own = tech_zone(snap, tech).and_then(|z| TimeZone::get(z).ok());
    let local = LocalDays::new(own.as_ref().unwrap_or(fallback), date, 1);
    if local.days.is_empty() {
        return Vec::new();
    }
    let mut segs = Vec::new();
    ShiftPattern::new(tech).segments(&local, 0, &mut segs);
    segs.into_iter()
        .filter_map(|(a, b)| {
            Some((
                Timestamp::from_second(a).ok()?,
                Timestamp::from_second(b).ok()?,
            ))
        })
        .collect()
}

/// Checks that every visit lies within a shift segment of its local date (`tz`), that the day's
/// first visit leaves time to drive from home after that segment starts and the last time to drive
/// home before it ends. Visits on a day off fail.
pub fn check_shift_bounds(
    tech: &Technician,
    tz: &TimeZone,
    visits: &[Visit],
    travel: &dyn Travel,
) -> Result<(), String> {
    let pattern = ShiftPattern::new(tech);
    let loc = |v: &Visit| v.location.unwrap_or(tech.home);
    let mut segs = Vec::new();
    let mut i = 0;
    while i < visits.len() {
        let date = tz.to_datetime(visits[i].start).date();
        let local = LocalDays::new(tz, date, 1);
        let j = i + visits[i..]
            .iter()
            .take_while(|v| tz.to_datetime(v.start).date() == date)
            .count();
        pattern.segments(&local, 0, &mut segs);
        let seg_of = |v: &Visit| {
            segs.iter()
                .copied()
                .find(|s| s.0 <= secs(v.start) && secs(v.end) <= s.1)
                .ok_or_else(|| format!("{}: not within a shift on {date}", v.order_num))
        };
        for v in &visits[i..j] {
            seg_of(v)?;
        }
        let (first, last) = (&visits[i], &visits[j - 1]);
        let s = seg_of(first)?;
        if secs(first.start) < s.0 + i64::from(travel.minutes(tech.home, loc(first))) * MINUTE {
            return Err(format!(
                "{}: no time to drive from home after the shift starts",
                first.order_num
            ));
        }
        let s = seg_of(last)?;
        if secs(last.end) + i64::from(travel.minutes(loc(last), tech.home)) * MINUTE > s.1 {
            return Err(format!(
                "{}: no time to drive home before the shift ends",
                last.order_num
            ));
        }
        i = j;
    }
    Ok(())
}
