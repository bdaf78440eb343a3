//! Re-optimisation of booked days (`REOPTIMISE.md` in this crate): move unstarted visits of a work
//! center's coming days between technicians and positions to cut total travel, keeping every
//! promise.
//!
//! What never changes: a visit's local date and promised arrival window; a technician has the
//! skills of every visit they get and works it inside one of their shift segments (a visit is never
//! put into a break); started visits (`Onsite`, en route, started), pinned visits and visits that
//! start before `now` + the policy's freeze horizon keep their technician and their start, and no
//! visit is moved to start before that horizon. Moving a visit away from the technician the
//! customer was told costs the policy's `NonOriginalPenaltyMinutes`, as in slot grading.
//!
//! How: each local date is a separate problem (visits keep their date). The search starts from
//! the booked plan, runs a local-search descent (relocate, exchange, 2-opt*, or-opt), then ruin and
//! recreate (string removals, cheapest reinsertion with blinks, simulated-annealing acceptance),
//! then the descent again, and returns the best plan seen: never costlier than the booked one.
//! Every changed technician-day is checked again against the rules, independently of the search,
//! before it is returned; a day that fails (a bug) is returned as booked. The same seed and input
//! give the same result, as long as the iteration budget, not the caller's `stop`, ends the run.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::model::{GeoPoint, Skill, Technician, WorkCenter};
use crate::plan::{ShiftPattern, Visit};
use crate::route::{Limits, Model, Node, RouteDef, Searcher, Sol};
use crate::travel::{GreatCircle, Travel};
use crate::windows::LocalDays;

/// What re-optimisation and repair need to know about a booked visit besides [`Visit`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VisitFacts {
    /// Skills its technician must have (the order type's).
    pub skills: Vec<Skill>,
    /// The technician the customer was told (`UserName`): others cost the policy's
    /// `NonOriginalPenaltyMinutes`. `None` = no one in particular.
    pub told_tech: Option<String>,
    /// `Onsite`, en route or started: it stays with its technician at its time.
    pub started: bool,
    /// Pinned by a dispatcher: it stays with its technician at its time.
    pub pinned: bool,
}

/// Where a repair finds the [`VisitFacts`] of a booked visit, by its technician and work order
/// number. A visit without facts is never moved by a repair.
pub trait FactsSource {
    fn facts_of(&self, tech: &str, order_num: &str) -> Option<VisitFacts>;
}

/// Facts by work order number (whoever the technician).
impl FactsSource for HashMap<String, VisitFacts> {
    fn facts_of(&self, _tech: &str, order_num: &str) -> Option<VisitFacts> {
        self.get(order_num).cloned()
    }
}

/// A booked visit and its technician.
#[derive(Debug, Clone, PartialEq)]
pub struct BookedVisit {
    pub tech: String,
    pub visit: Visit,
    pub facts: VisitFacts,
}

/// How long a search may run: at most `iterations` ruin-and-recreate steps, and it stops early
/// when `stop` answers true (checked every 16 iterations; pass a deadline check here). The result
/// is the same for the same seed only when the iterations, not `stop`, end the run.
#[derive(Clone, Copy)]
pub struct Budget<'a> {
    pub iterations: u64,
    pub stop: Option<&'a dyn Fn() -> bool>,
}

impl std::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("iterations", &self.iterations)
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

impl Budget<'_> {
    /// Iterations only: fully deterministic.
    pub fn iterations(iterations: u64) -> Self {
        Budget {
            iterations,
            stop: None,
        }
    }
}

/// A re-optimisation request for one work center.
#[derive(Clone, Copy)]
pub struct Reoptimize<'a> {
    /// Its time zone gives each visit's local date and the shifts; its policy the penalty and the
    /// freeze horizon.
    pub work_center: &'a WorkCenter,
    /// The technicians: those active and of this work center get routes; visits of others stay.
    pub technicians: &'a [Technician],
    /// Every visit of these technicians on the dates concerned (also those of other work centers:
    /// mark them pinned if they must not move), in any order.
    pub visits: &'a [BookedVisit],
    pub now: Timestamp,
    /// `None` = the policy's great-circle estimate.
    pub travel: Option<&'a dyn Travel>,
    pub seed: u64,
    pub budget: Budget<'a>,
}

impl std::fmt::Debug for Reoptimize<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reoptimize")
            .field("work_center", &self.work_center.service_area_id)
            .field("technicians", &self.technicians.len())
            .field("visits", &self.visits.len())
            .field("now", &self.now)
            .field("travel", &self.travel.map(|_| "custom"))
            .field("seed", &self.seed)
            .field("budget", &self.budget)
            .finish()
    }
}

/// A visit's place in a re-optimised day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStop {
    pub order_num: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A technician-day after re-optimisation, visits in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechDay {
    pub tech: String,
    pub date: Date,
    pub visits: Vec<PlannedStop>,
    /// Home, the visits, home.
    pub travel_minutes: i64,
    /// False when it kept its booked visits and times.
    pub changed: bool,
}

/// A visit that changes technician or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub order_num: String,
    pub from_tech: String,
    pub to_tech: String,
    pub from_start: Timestamp,
    pub from_end: Timestamp,
    pub to_start: Timestamp,
    pub to_end: Timestamp,
}

/// A technician-day left exactly as booked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untouched {
    pub tech: String,
    pub date: Date,
    pub reason: String,
}

/// The result: the new plan, what moves, and the travel it saves.
#[derive(Debug, Clone, PartialEq)]
pub struct Reoptimized {
    /// Every technician-day that has visits after re-optimisation (changed or not).
    pub days: Vec<TechDay>,
    pub moves: Vec<Move>,
    /// Travel of the optimised technician-days, before and after.
    pub travel_before_minutes: i64,
    pub travel_after_minutes: i64,
    /// Penalties for visits away from the technician the customer was told, before and after.
    pub penalty_before_minutes: f64,
    pub penalty_after_minutes: f64,
    /// Technician-days the search could not touch (their booked plan already breaks a rule, or
    /// their technician is not an active technician of the work center).
    pub untouched: Vec<Untouched>,
    /// Ruin-and-recreate iterations run, over all dates.
    pub iterations: u64,
}

impl Reoptimized {
    /// Travel saved, in minutes (never negative).
    pub fn travel_saved_minutes(&self) -> i64 {
        self.travel_before_minutes - self.travel_after_minutes
    }

    /// Travel + penalties, before and after (the after is never higher).
    pub fn cost_before_minutes(&self) -> f64 {
        self.travel_before_minutes as f64 + self.penalty_before_minutes
    }

    pub fn cost_after_minutes(&self) -> f64 {
        self.travel_after_minutes as f64 + self.penalty_after_minutes
    }
}

fn secs(t: Timestamp) -> i64 {
    t.as_second()
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap_or(Timestamp::MAX)
}

/// Re-optimises the booked days of `req.work_center`. Errors only for an unusable work center
/// (unknown time zone).
pub fn reoptimize(req: &Reoptimize) -> Result<Reoptimized, String> {
    let wc = req.work_center;
    let tz = TimeZone::get(&wc.time_zone).map_err(|_| {
        format!(
            "Work center {} has an unknown time zone \"{}\".",
            wc.service_area_id, wc.time_zone
        )
    })?;
    let gc = GreatCircle::from_policy(&wc.policy);
    let travel: &dyn Travel = req.travel.unwrap_or(&gc);
    let penalty = minutes_to_secs(wc.policy.non_original_penalty_minutes);
    let freeze_until = secs(req.now) + i64::from(wc.policy.freeze_minutes) * 60;

    let techs: Vec<usize> = (0..req.technicians.len())
        .filter(|&i| {
            let t = &req.technicians[i];
            t.active && t.service_area_ids.contains(&wc.service_area_id)
        })
        .collect();
    let tech_id: HashMap<&str, u32> = req
        .technicians
        .iter()
        .enumerate()
        .map(|(i, t)| (t.user_name.as_str(), i as u32))
        .collect();
    let patterns: Vec<ShiftPattern> = techs
        .iter()
        .map(|&i| ShiftPattern::new(&req.technicians[i]))
        .collect();

    // Visits by local date.
    let mut by_date: Vec<(Date, Vec<usize>)> = Vec::new();
    {
        let mut dates: Vec<(Date, usize)> = req
            .visits
            .iter()
            .enumerate()
            .map(|(i, b)| (tz.to_datetime(b.visit.start).date(), i))
            .collect();
        dates.sort();
        for (d, i) in dates {
            match by_date.last_mut() {
                Some((last, list)) if *last == d => list.push(i),
                _ => by_date.push((d, vec![i])),
            }
        }
    }
    let movable_total: usize = req
        .visits
        .iter()
        .filter(|b| !b.facts.started && !b.facts.pinned && secs(b.visit.start) >= freeze_until)
        .count()
        .max(1);

    let mut out = Reoptimized {
        days: Vec::new(),
        moves: Vec::new(),
        travel_before_minutes: 0,
        travel_after_minutes: 0,
        penalty_before_minutes: 0.0,
        penalty_after_minutes: 0.0,
        untouched: Vec::new(),
        iterations: 0,
    };
    for (date, list) in &by_date {
        let day = DayInput {
            req,
            tz: &tz,
            date: *date,
            visits: list,
            techs: &techs,
            patterns: &patterns,
            tech_id: &tech_id,
            travel,
            penalty,
            freeze_until,
        };
        let movable_here = list
            .iter()
            .filter(|&&i| {
                let b = &req.visits[i];
                !b.facts.started && !b.facts.pinned && secs(b.visit.start) >= freeze_until
            })
            .count();
        let iterations =
            (req.budget.iterations as u128 * movable_here as u128 / movable_total as u128) as u64;
        let seed = req.seed ^ (date_key(*date).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let limits = Limits {
            iterations,
            stop: req.budget.stop,
        };
        day.solve(seed, &limits, &mut out);
    }
    Ok(out)
}

pub(crate) fn minutes_to_secs(m: f64) -> i64 {
    if m.is_finite() && m > 0.0 {
        (m * 60.0).round() as i64
    } else {
        0
    }
}

fn date_key(d: Date) -> u64 {
    (i64::from(d.year()) * 400 + i64::from(d.month()) * 32 + i64::from(d.day())) as u64
}

struct DayInput<'a, 'r> {
    req: &'a Reoptimize<'r>,
    tz: &'a TimeZone,
    date: Date,
    visits: &'a [usize],
    techs: &'a [usize],
    patterns: &'a [ShiftPattern],
    tech_id: &'a HashMap<&'r str, u32>,
    travel: &'a dyn Travel,
    penalty: i64,
    freeze_until: i64,
}

/// Told technician id for "someone not in the list": every route pays the penalty.
pub(crate) const STRANGER: u32 = u32::MAX - 1;

impl DayInput<'_, '_> {
    fn solve(&self, seed: u64, limits: &Limits, out: &mut Reoptimized) {
        let req = self.req;
        let techs = &req.technicians;
        let local = LocalDays::new(self.tz, self.date, 1);
        // Routes: one per eligible technician, homes are the first locations.
        let route_of_tech: HashMap<&str, u32> = self
            .techs
            .iter()
            .enumerate()
            .map(|(r, &t)| (techs[t].user_name.as_str(), r as u32))
            .collect();
        let mut locs: Vec<GeoPoint> = self.techs.iter().map(|&t| techs[t].home).collect();
        // Visits of technicians without a route are left alone.
        let mut members: Vec<usize> = Vec::new();
        let mut strangers: Vec<(&str, usize)> = Vec::new();
        for &i in self.visits {
            let b = &req.visits[i];
            if route_of_tech.contains_key(b.tech.as_str()) {
                members.push(i);
            } else {
                strangers.push((b.tech.as_str(), i));
            }
        }
        strangers.sort();
        strangers.dedup_by(|a, b| a.0 == b.0);
        for (tech, _) in strangers {
            out.untouched.push(Untouched {
                tech: tech.to_string(),
                date: self.date,
                reason: format!(
                    "{tech} is not an active technician of work center {}",
                    req.work_center.service_area_id
                ),
            });
        }
        let mut model = {
            for &i in &members {
                let b = &req.visits[i];
                let home = locs[route_of_tech[b.tech.as_str()] as usize];
                locs.push(b.visit.location.unwrap_or(home));
            }
            Model::new(self.travel, locs, self.penalty)
        };
        let mut segs = Vec::new();
        for (r, &t) in self.techs.iter().enumerate() {
            self.patterns[r].segments(&local, 0, &mut segs);
            model.routes.push(RouteDef {
                tech: t as u32,
                home: r as u32,
                segs: segs.clone(),
                open: true,
            });
        }
        let n_routes = model.routes.len() as u32;
        for (k, &i) in members.iter().enumerate() {
            let b = &req.visits[i];
            let v = &b.visit;
            let own = route_of_tech[b.tech.as_str()];
            let (s, e) = (secs(v.start), secs(v.end));
            let lo = secs(v.window.start).max(self.freeze_until);
            let hi = secs(v.window.end);
            let stays = b.facts.started
                || b.facts.pinned
                || s < self.freeze_until
                || v.location.is_none()
                || lo > hi;
            let told = b
                .facts
                .told_tech
                .as_deref()
                .map(|u| self.tech_id.get(u).copied().unwrap_or(STRANGER));
            let routes: Vec<u32> = if stays {
                vec![own]
            } else {
                (0..n_routes)
                    .filter(|&r| {
                        let t = &techs[model.routes[r as usize].tech as usize];
                        t.has_skills(&b.facts.skills)
                    })
                    .collect()
            };
            model.nodes.push(Node {
                loc: (self.techs.len() + k) as u32,
                dur: (e - s).max(0),
                allowed: vec![(lo, hi)],
                fixed: stays.then_some(s),
                routes,
                told,
            });
        }
        // The booked plan, by route. A route whose booked plan breaks a rule is closed: its
        // visits stay exactly as booked and nothing is added to it.
        let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); n_routes as usize];
        let mut order: Vec<u32> = (0..members.len() as u32).collect();
        order.sort_by_key(|&k| (secs(req.visits[members[k as usize]].visit.start), k));
        for k in order {
            let own = route_of_tech[req.visits[members[k as usize]].tech.as_str()];
            seqs[own as usize].push(k);
        }
        let initial = loop {
            match Sol::new(&model, seqs.clone()) {
                Ok(sol) => break sol,
                Err(r) => {
                    let t = &techs[model.routes[r].tech as usize];
                    out.untouched.push(Untouched {
                        tech: t.user_name.clone(),
                        date: self.date,
                        reason: closed_reason(&model, r as u32, &seqs[r], t, &members, req.visits),
                    });
                    model.routes[r].open = false;
                    for &k in &seqs[r] {
                        let node = &mut model.nodes[k as usize];
                        node.fixed = Some(secs(req.visits[members[k as usize]].visit.start));
                        node.routes = vec![r as u32];
                    }
                }
            }
        };
        let mut searcher = Searcher::new(&model, seed);
        let (mut best, iterations) = searcher.run(initial.clone(), limits);
        out.iterations += iterations;

        // Times: a route that did not change keeps its booked times; a changed one keeps each
        // visit that stays with its technician at its booked time when the route allows, else
        // starts every visit as early as the route allows.
        let booked_start = |k: u32| secs(req.visits[members[k as usize]].visit.start);
        let mut times: Vec<Vec<i64>> = Vec::with_capacity(n_routes as usize);
        for r in 0..n_routes {
            let seq = &best.routes[r as usize].seq;
            let t = if *seq == initial.routes[r as usize].seq {
                seq.iter().map(|&k| booked_start(k)).collect()
            } else {
                let keep: Vec<i64> = seq
                    .iter()
                    .map(|&k| {
                        if initial.route_of[k as usize] == r {
                            booked_start(k)
                        } else {
                            i64::MIN
                        }
                    })
                    .collect();
                // The times are checked independently of the search; a changed day that fails
                // (a bug) sends the whole date back to its booked plan.
                match model.times(r, seq, &keep) {
                    Some(t) => t,
                    None => {
                        debug_assert!(false, "route {r} failed its final check");
                        return self.fallback(&model, &initial, &members, out);
                    }
                }
            };
            times.push(t);
        }
        if best.total > initial.total {
            best = initial.clone(); // cannot happen: the search keeps its best
        }
        self.emit(&model, &initial, &best, &times, &members, out);
    }

    /// Reports the booked plan unchanged (used only if a changed day failed the final check).
    fn fallback(&self, model: &Model, initial: &Sol, members: &[usize], out: &mut Reoptimized) {
        let times: Vec<Vec<i64>> = initial
            .routes
            .iter()
            .map(|r| {
                r.seq
                    .iter()
                    .map(|&k| secs(self.req.visits[members[k as usize]].visit.start))
                    .collect()
            })
            .collect();
        self.emit(model, initial, initial, &times, members, out);
    }

    fn emit(
        &self,
        model: &Model,
        initial: &Sol,
        best: &Sol,
        times: &[Vec<i64>],
        members: &[usize],
        out: &mut Reoptimized,
    ) {
        let req = self.req;
        let techs = &req.technicians;
        let travel_of = |r: usize, seq: &[u32]| -> (i64, i64) {
            let mut pen = 0;
            for &k in seq {
                pen += model.pen(k, r as u32);
            }
            (model.cost(r as u32, seq) - pen, pen)
        };
        let mut new_place: Vec<(u32, i64)> = vec![(0, 0); members.len()];
        for (r, route) in best.routes.iter().enumerate() {
            let (tr_before, pen_before) = travel_of(r, &initial.routes[r].seq);
            let (tr_after, pen_after) = travel_of(r, &route.seq);
            out.travel_before_minutes += tr_before / 60;
            out.travel_after_minutes += tr_after / 60;
            out.penalty_before_minutes += pen_before as f64 / 60.0;
            out.penalty_after_minutes += pen_after as f64 / 60.0;
            for (i, &k) in route.seq.iter().enumerate() {
                new_place[k as usize] = (r as u32, times[r][i]);
            }
            if route.seq.is_empty() {
                continue;
            }
            let tech = &techs[model.routes[r].tech as usize].user_name;
            let visits: Vec<PlannedStop> = route
                .seq
                .iter()
                .enumerate()
                .map(|(i, &k)| {
                    let v = &req.visits[members[k as usize]].visit;
                    let s = times[r][i];
                    PlannedStop {
                        order_num: v.order_num.clone(),
                        start: ts(s),
                        end: ts(s + (secs(v.end) - secs(v.start))),
                    }
                })
                .collect();
            let changed = route.seq != initial.routes[r].seq
                || visits
                    .iter()
                    .zip(&route.seq)
                    .any(|(p, &k)| p.start != req.visits[members[k as usize]].visit.start);
            out.days.push(TechDay {
                tech: tech.clone(),
                date: self.date,
                visits,
                travel_minutes: tr_after / 60,
                changed,
            });
        }
        for (k, &i) in members.iter().enumerate() {
            let b = &req.visits[i];
            let (r, s) = new_place[k];
            let to_tech = &techs[model.routes[r as usize].tech as usize].user_name;
            let dur = secs(b.visit.end) - secs(b.visit.start);
            if *to_tech != b.tech || s != secs(b.visit.start) {
                out.moves.push(Move {
                    order_num: b.visit.order_num.clone(),
                    from_tech: b.tech.clone(),
                    to_tech: to_tech.clone(),
                    from_start: b.visit.start,
                    from_end: b.visit.end,
                    to_start: ts(s),
                    to_end: ts(s + dur),
                });
            }
        }
    }
}

/// Why a booked technician-day cannot be optimised: the first visit the rules refuse.
fn closed_reason(
    model: &Model,
    r: u32,
    seq: &[u32],
    tech: &Technician,
    members: &[usize],
    visits: &[BookedVisit],
) -> String {
    let mut prev: Option<(u32, i64)> = None;
    for (i, &k) in seq.iter().enumerate() {
        let order = &visits[members[k as usize]].visit.order_num;
        if !model.can(k, r) {
            return format!("{order}: {} lacks its skills", tech.user_name);
        }
        match model.place(r, k, prev, i + 1 == seq.len()) {
            Some(a) => {
                let node = &model.nodes[k as usize];
                prev = Some((node.loc, a + node.dur));
            }
            None => {
                return format!(
                    "{order}: the booked day breaks a rule here (window, shift, travel or the drive home)"
                );
            }
        }
    }
    "the booked day breaks a rule".to_string()
}
