//! The route model shared by re-optimisation and repair: one local date's technician-days as
//! sequences of visits, checked against promised windows, shift segments and travel.
//!
//! # Rules (the same as slot search, see `plan`)
//!
//! A route starts and ends at the technician's home. Each movable visit arrives inside one of its
//! allowed arrival intervals (its promised window, clipped to the freeze horizon; for a new job also
//! the customer's availability) and lies wholly inside one shift segment: never in a break. The
//! route's first visit arrives no earlier than its segment's start + the drive from home; the last
//! leaves time to drive home before its segment ends. Between two visits there is time to drive.
//! A fixed visit (started, pinned, frozen, or on a day that already breaks these rules) keeps its
//! technician and its start; only the drive to it is checked.
//!
//! # Scheduling
//!
//! Waiting is allowed and only travel costs, so the earliest feasible start of each visit, in
//! order, decides whether a sequence is feasible: starting later never helps the visits after it.
//! For each position we also keep the *latest* start that still lets the rest of the route be
//! scheduled; an insertion is then checked in O(1): the new visit's earliest start after its
//! predecessor, and whether its successor can still start by its latest start.
//!
//! All times are UTC seconds; travel is whole minutes read through [`crate::Travel`], memoised.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::GeoPoint;
use crate::travel::Travel;

/// A visit of the model.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Index of its location in the model's location list.
    pub loc: u32,
    /// Duration in seconds.
    pub dur: i64,
    /// Allowed arrival intervals (inclusive), sorted and disjoint. Unused when `fixed`.
    pub allowed: Vec<(i64, i64)>,
    /// The start of a visit that does not move (it also stays on its route).
    pub fixed: Option<i64>,
    /// Routes it may be on, sorted. A fixed node lists only its own.
    pub routes: Vec<u32>,
    /// The technician the customer was told (an id shared with [`RouteDef::tech`]); any other
    /// costs the model's penalty.
    pub told: Option<u32>,
}

impl Node {
    /// Earliest allowed arrival at or after `t`.
    fn earliest_from(&self, t: i64) -> Option<i64> {
        self.allowed
            .iter()
            .find(|iv| iv.1 >= t)
            .map(|iv| iv.0.max(t))
    }
}

/// A technician-day.
#[derive(Debug, Clone)]
pub(crate) struct RouteDef {
    /// The technician (ids shared with [`Node::told`]).
    pub tech: u32,
    /// Index of the home location.
    pub home: u32,
    /// Shift segments of the day, sorted by start.
    pub segs: Vec<(i64, i64)>,
    /// False when nothing may be added to or taken from the route.
    pub open: bool,
}

impl RouteDef {
    /// The shift segment a visit starting at `s` for `dur` seconds lies in.
    fn block_of(&self, s: i64, dur: i64) -> Option<(i64, i64)> {
        self.segs
            .iter()
            .copied()
            .find(|b| b.0 <= s && s + dur <= b.1)
    }
}

/// One local date: visits, technician-days and memoised travel between their locations.
pub(crate) struct Model<'t> {
    pub nodes: Vec<Node>,
    pub routes: Vec<RouteDef>,
    /// Seconds added to the cost of a visit that is not with the technician the customer was told.
    pub penalty: i64,
    locs: Vec<GeoPoint>,
    travel: &'t dyn Travel,
    memo: Memo,
}

/// Travel already asked for: a table for the usual sizes, a map for large work centers (a
/// repair over 500 technicians' day touches a few thousand of its millions of pairs).
enum Memo {
    Dense(Vec<Cell<i64>>),
    Sparse(RefCell<HashMap<u64, i64, BuildHasherDefault<PairHasher>>>),
}

/// A multiplicative hash for the memo's (from, to) keys: SipHash's protection against chosen
/// keys buys nothing here and costs most of a lookup.
#[derive(Default)]
pub(crate) struct PairHasher(u64);

impl Hasher for PairHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (x ^ (x >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

const UNKNOWN: i64 = -1;
/// Up to this many locations the memo is a table (8 MiB at most).
const DENSE_LOCATIONS: usize = 1024;

impl<'t> Model<'t> {
    pub fn new(travel: &'t dyn Travel, locs: Vec<GeoPoint>, penalty: i64) -> Self {
        let n = locs.len();
        let memo = if n <= DENSE_LOCATIONS {
            Memo::Dense(vec![Cell::new(UNKNOWN); n * n])
        } else {
            Memo::Sparse(RefCell::new(HashMap::default()))
        };
        Model {
            nodes: Vec::new(),
            routes: Vec::new(),
            penalty,
            memo,
            locs,
            travel,
        }
    }

    /// Travel seconds from location `a` to `b`, not memoised (for one-off questions).
    fn tt_once(&self, a: u32, b: u32) -> i64 {
        match &self.memo {
            Memo::Dense(_) => self.tt(a, b),
            Memo::Sparse(_) => {
                i64::from(
                    self.travel
                        .minutes(self.locs[a as usize], self.locs[b as usize]),
                ) * 60
            }
        }
    }

    /// Travel seconds from location `a` to `b`.
    #[inline]
    pub fn tt(&self, a: u32, b: u32) -> i64 {
        let ask = || {
            i64::from(
                self.travel
                    .minutes(self.locs[a as usize], self.locs[b as usize]),
            ) * 60
        };
        match &self.memo {
            Memo::Dense(cells) => {
                let cell = &cells[a as usize * self.locs.len() + b as usize];
                let v = cell.get();
                if v != UNKNOWN {
                    return v;
                }
                let v = ask();
                cell.set(v);
                v
            }
            Memo::Sparse(map) => {
                let key = u64::from(a) << 32 | u64::from(b);
                if let Some(&v) = map.borrow().get(&key) {
                    return v;
                }
                let v = ask();
                map.borrow_mut().insert(key, v);
                v
            }
        }
    }

    /// Penalty seconds of node `v` on route `r`.
    #[inline]
    pub fn pen(&self, v: u32, r: u32) -> i64 {
        match self.nodes[v as usize].told {
            Some(t) if t != self.routes[r as usize].tech => self.penalty,
            _ => 0,
        }
    }

    pub fn can(&self, v: u32, r: u32) -> bool {
        self.nodes[v as usize].routes.binary_search(&r).is_ok()
    }

    /// Earliest start of `v` on route `r` after `prev` (location, finish), or from home when
    /// `None`; `last` = it is the route's last visit (it must then get home within its segment).
    pub fn place(&self, r: u32, v: u32, prev: Option<(u32, i64)>, last: bool) -> Option<i64> {
        self.place_not_before(r, v, prev, last, i64::MIN)
    }

    /// [`Model::place`], starting no earlier than `not_before` (a movable visit).
    fn place_not_before(
        &self,
        r: u32,
        v: u32,
        prev: Option<(u32, i64)>,
        last: bool,
        not_before: i64,
    ) -> Option<i64> {
        let node = &self.nodes[v as usize];
        let route = &self.routes[r as usize];
        if let Some(s) = node.fixed {
            // A fixed visit that becomes the first or last of the day must leave time to come
            // from home or to get home within its block, like any other; one booked outside
            // every block is accepted as it is.
            let block = route.block_of(s, node.dur);
            let ready = match (prev, block) {
                (Some((l, e)), _) => e + self.tt(l, node.loc),
                (None, Some(b)) => b.0 + self.tt(route.home, node.loc),
                (None, None) => i64::MIN,
            };
            if last
                && let Some(b) = block
                && s + node.dur + self.tt(node.loc, route.home) > b.1
            {
                return None;
            }
            return (ready <= s).then_some(s);
        }
        let from = prev.map(|(l, e)| e + self.tt(l, node.loc));
        let mut home_leg = None;
        for &(s0, s1) in &route.segs {
            let ready = match from {
                None => s0 + *home_leg.get_or_insert_with(|| self.tt(route.home, node.loc)),
                Some(t) => t.max(s0),
            }
            .max(not_before);
            let a = node.earliest_from(ready)?;
            let mut limit = s1;
            if last {
                limit -= self.tt(node.loc, route.home);
            }
            if a + node.dur <= limit {
                return Some(a);
            }
        }
        None
    }

    /// Latest start of `v` on route `r` that lets `next` (location, latest start) follow, or,
    /// when `next` is `None`, lets the technician get home. `i64::MIN` when there is none.
    fn latest(&self, r: u32, v: u32, next: Option<(u32, i64)>) -> i64 {
        let node = &self.nodes[v as usize];
        let route = &self.routes[r as usize];
        let bound = match next {
            Some((l, late)) => late - self.tt(node.loc, l) - node.dur,
            None => i64::MAX,
        };
        if let Some(s) = node.fixed {
            let home_ok = next.is_some()
                || route
                    .block_of(s, node.dur)
                    .is_none_or(|b| s + node.dur + self.tt(node.loc, route.home) <= b.1);
            return if s <= bound && home_ok { s } else { i64::MIN };
        }
        let home = if next.is_none() {
            self.tt(node.loc, route.home)
        } else {
            0
        };
        let mut best = i64::MIN;
        for &(s0, s1) in &route.segs {
            let hi = (s1 - node.dur - home).min(bound);
            for &(a0, a1) in &node.allowed {
                let x = hi.min(a1);
                if x >= s0.max(a0) {
                    best = best.max(x);
                }
            }
        }
        best
    }

    /// Travel + penalties of `seq` on route `r` (no feasibility check).
    pub fn cost(&self, r: u32, seq: &[u32]) -> i64 {
        let home = self.routes[r as usize].home;
        let mut prev = home;
        let mut c = 0;
        for &v in seq {
            let l = self.nodes[v as usize].loc;
            c += self.tt(prev, l) + self.pen(v, r);
            prev = l;
        }
        if !seq.is_empty() {
            c += self.tt(prev, home);
        }
        c
    }

    /// Feasibility of `seq` on route `r`, filling `starts` with the earliest starts. A closed
    /// route is taken as booked: its (fixed) visits at their times, unchecked.
    pub fn schedule(&self, r: u32, seq: &[u32], starts: &mut Vec<i64>) -> bool {
        self.schedule_not_before(r, seq, &[], starts)
    }

    /// [`Model::schedule`] where visit `i` of `seq` starts no earlier than `not_before[i]` (when
    /// given): to keep booked times where the route allows.
    pub fn schedule_not_before(
        &self,
        r: u32,
        seq: &[u32],
        not_before: &[i64],
        starts: &mut Vec<i64>,
    ) -> bool {
        starts.clear();
        if !self.routes[r as usize].open {
            starts.extend(
                seq.iter()
                    .map(|&v| self.nodes[v as usize].fixed.unwrap_or(0)),
            );
            return true;
        }
        let mut prev: Option<(u32, i64)> = None;
        for (i, &v) in seq.iter().enumerate() {
            if !self.can(v, r) {
                return false;
            }
            let nb = not_before.get(i).copied().unwrap_or(i64::MIN);
            let Some(a) = self.place_not_before(r, v, prev, i + 1 == seq.len(), nb) else {
                return false;
            };
            let node = &self.nodes[v as usize];
            starts.push(a);
            prev = Some((node.loc, a + node.dur));
        }
        true
    }

    /// Cost of `seq` on route `r` when it is feasible.
    pub fn eval(&self, r: u32, seq: &[u32]) -> Option<i64> {
        let mut prev: Option<(u32, i64)> = None;
        for (i, &v) in seq.iter().enumerate() {
            if !self.can(v, r) {
                return None;
            }
            let a = self.place(r, v, prev, i + 1 == seq.len())?;
            let node = &self.nodes[v as usize];
            prev = Some((node.loc, a + node.dur));
        }
        Some(self.cost(r, seq))
    }

    /// Recomputes the schedule, latest starts and cost of a route; false when infeasible.
    pub fn refresh(&self, r: u32, route: &mut Route) -> bool {
        if !self.schedule(r, &route.seq, &mut route.start) {
            return false;
        }
        let n = route.seq.len();
        route.late.clear();
        if !self.routes[r as usize].open {
            route.late.extend_from_slice(&route.start);
            route.cost = self.cost(r, &route.seq);
            return true;
        }
        route.late.resize(n, i64::MIN);
        let mut next: Option<(u32, i64)> = None;
        for i in (0..n).rev() {
            let v = route.seq[i];
            let late = self.latest(r, v, next);
            route.late[i] = late;
            next = Some((self.nodes[v as usize].loc, late));
        }
        route.cost = self.cost(r, &route.seq);
        true
    }

    /// Added cost of inserting `v` at position `k` of route `r`, when feasible: O(1) given the
    /// route's earliest and latest starts.
    pub fn insertion(&self, r: u32, route: &Route, v: u32, k: usize) -> Option<i64> {
        let n = route.seq.len();
        let node = &self.nodes[v as usize];
        let home = self.routes[r as usize].home;
        let prev = (k > 0).then(|| {
            let p = route.seq[k - 1];
            let pn = &self.nodes[p as usize];
            (pn.loc, route.start[k - 1] + pn.dur)
        });
        if node.fixed.is_none() {
            // A bound without travel first (travel only makes the visit later): most positions
            // of a full day fail it without a travel time being looked up.
            let a = node.earliest_from(prev.map_or(i64::MIN, |p| p.1))?;
            let day_end = self.routes[r as usize]
                .segs
                .last()
                .map_or(i64::MIN, |s| s.1);
            if a + node.dur > day_end || (k < n && a + node.dur > route.late[k]) {
                return None;
            }
        }
        let a = self.place(r, v, prev, k == n)?;
        let next_loc = if k < n {
            let q = &self.nodes[route.seq[k] as usize];
            if a + node.dur + self.tt(node.loc, q.loc) > route.late[k] {
                return None;
            }
            q.loc
        } else {
            home
        };
        let prev_loc = prev.map_or(home, |p| p.0);
        let base = if n == 0 {
            0
        } else {
            self.tt(prev_loc, next_loc)
        };
        Some(self.tt(prev_loc, node.loc) + self.tt(node.loc, next_loc) - base + self.pen(v, r))
    }

    /// The cheapest feasible insertion of `v` into route `r`: (added cost, position).
    pub fn best_insertion(&self, r: u32, route: &Route, v: u32) -> Option<(i64, usize)> {
        let hi = self.nodes[v as usize]
            .allowed
            .last()
            .map_or(i64::MIN, |iv| iv.1);
        let mut best: Option<(i64, usize)> = None;
        for k in 0..=route.seq.len() {
            if k > 0 && route.start[k - 1] > hi {
                break; // later positions start later still
            }
            if let Some(d) = self.insertion(r, route, v, k)
                && best.is_none_or(|b| d < b.0)
            {
                best = Some((d, k));
            }
        }
        best
    }

    /// Checks a route's concrete times against every rule, independently of how they were found.
    pub fn verify(&self, r: u32, seq: &[u32], starts: &[i64]) -> Result<(), String> {
        let m = self;
        let route = &m.routes[r as usize];
        if seq.len() != starts.len() {
            return Err("length".into());
        }
        let mut prev: Option<(u32, i64)> = None;
        for (i, (&v, &t)) in seq.iter().zip(starts).enumerate() {
            let node = &m.nodes[v as usize];
            if !m.can(v, r) {
                return Err(format!("node {v}: not allowed on route {r}"));
            }
            if let Some((l, e)) = prev
                && e + m.tt(l, node.loc) > t
            {
                return Err(format!(
                    "node {v}: no time to drive from the previous visit"
                ));
            }
            if let Some(s) = node.fixed {
                if s != t {
                    return Err(format!("node {v}: a fixed visit moved"));
                }
                if let Some(b) = route.block_of(t, node.dur) {
                    if i == 0 && t < b.0 + m.tt(route.home, node.loc) {
                        return Err(format!("node {v}: no time to drive from home"));
                    }
                    if i + 1 == seq.len() && t + node.dur + m.tt(node.loc, route.home) > b.1 {
                        return Err(format!("node {v}: no time to drive home"));
                    }
                }
            } else {
                if !node.allowed.iter().any(|iv| iv.0 <= t && t <= iv.1) {
                    return Err(format!("node {v}: arrival outside its window"));
                }
                let Some(seg) = route.segs.iter().find(|s| s.0 <= t && t + node.dur <= s.1) else {
                    return Err(format!("node {v}: not inside one shift segment"));
                };
                if i == 0 && t < seg.0 + m.tt(route.home, node.loc) {
                    return Err(format!("node {v}: no time to drive from home"));
                }
                if i + 1 == seq.len() && t + node.dur + m.tt(node.loc, route.home) > seg.1 {
                    return Err(format!("node {v}: no time to drive home"));
                }
            }
            prev = Some((node.loc, t + node.dur));
        }
        Ok(())
    }

    /// Times for a new sequence of route `r`: each visit no earlier than `keep[i]` (its booked
    /// start when it stays on this route, `i64::MIN` otherwise) when the route allows, else as
    /// early as it allows; `None` if the sequence is infeasible or its times fail [`Model::verify`].
    pub fn times(&self, r: u32, seq: &[u32], keep: &[i64]) -> Option<Vec<i64>> {
        let mut t = Vec::new();
        if self.schedule_not_before(r, seq, keep, &mut t) && self.verify(r, seq, &t).is_ok() {
            return Some(t);
        }
        (self.schedule(r, seq, &mut t) && self.verify(r, seq, &t).is_ok()).then_some(t)
    }
}

/// A route of a solution: its visits in order, their earliest and latest starts, and its cost.
#[derive(Debug, Default)]
pub(crate) struct Route {
    pub seq: Vec<u32>,
    pub start: Vec<i64>,
    pub late: Vec<i64>,
    pub cost: i64,
}

impl Clone for Route {
    fn clone(&self) -> Self {
        Route {
            seq: self.seq.clone(),
            start: self.start.clone(),
            late: self.late.clone(),
            cost: self.cost,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.seq.clone_from(&source.seq);
        self.start.clone_from(&source.start);
        self.late.clone_from(&source.late);
        self.cost = source.cost;
    }
}

/// An assignment of every node to a route.
#[derive(Debug, Default)]
pub(crate) struct Sol {
    pub routes: Vec<Route>,
    /// Route of each node (`NONE` while removed).
    pub route_of: Vec<u32>,
    pub total: i64,
}

pub(crate) const NONE: u32 = u32::MAX;

impl Clone for Sol {
    fn clone(&self) -> Self {
        Sol {
            routes: self.routes.clone(),
            route_of: self.route_of.clone(),
            total: self.total,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.routes.clone_from(&source.routes);
        self.route_of.clone_from(&source.route_of);
        self.total = source.total;
    }
}

impl Sol {
    /// Builds a solution from route sequences; `None` names the first infeasible route.
    pub fn new(m: &Model, seqs: Vec<Vec<u32>>) -> Result<Sol, usize> {
        let mut route_of = vec![NONE; m.nodes.len()];
        let mut routes = Vec::with_capacity(seqs.len());
        for (r, seq) in seqs.into_iter().enumerate() {
            for &v in &seq {
                route_of[v as usize] = r as u32;
            }
            let mut route = Route {
                seq,
                ..Route::default()
            };
            if !m.refresh(r as u32, &mut route) {
                return Err(r);
            }
            routes.push(route);
        }
        let total = routes.iter().map(|r| r.cost).sum();
        Ok(Sol {
            routes,
            route_of,
            total,
        })
    }

    fn recount(&mut self) {
        self.total = self.routes.iter().map(|r| r.cost).sum();
    }

    /// Position of `v` in its route.
    fn pos(&self, v: u32) -> usize {
        let r = self.route_of[v as usize] as usize;
        self.routes[r].seq.iter().position(|&x| x == v).unwrap_or(0)
    }
}

// =============================================================================================
// Search: ruin and recreate (SISR) with simulated annealing, then a local-search descent.

/// SplitMix64: small, fast and the same on every platform, so a seed gives the same run anywhere.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 11) as u128 * n as u128) >> 53) as usize
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long the search may run.
pub(crate) struct Limits<'a> {
    pub iterations: u64,
    pub stop: Option<&'a dyn Fn() -> bool>,
}

pub(crate) struct Searcher<'m, 't> {
    m: &'m Model<'t>,
    rng: Rng,
    /// Movable nodes.
    movable: Vec<u32>,
    /// For each node, the movable nodes nearest to it (both ways), nearest first.
    near: Vec<Vec<u32>>,
    /// With many routes: for each movable node, its open routes whose home is nearest.
    near_homes: Vec<Vec<u32>>,
    /// Reinsert into the routes near a visit only (many routes), or into every route.
    granular: bool,
    seq_a: Vec<u32>,
    seq_b: Vec<u32>,
}

const NEAR: usize = 40;
/// Beyond this many open routes a removed visit is reinserted only into the routes of its
/// nearest visits and of its nearest homes: trying all 200 routes of a large work center for
/// every visit made an iteration ~10x slower for no better plans.
const GRANULAR_ROUTES: usize = 40;
const NEAR_HOMES: usize = 8;

impl<'m, 't> Searcher<'m, 't> {
    pub fn new(m: &'m Model<'t>, seed: u64) -> Self {
        let movable: Vec<u32> = (0..m.nodes.len() as u32)
            .filter(|&v| {
                let n = &m.nodes[v as usize];
                n.fixed.is_none() && n.routes.iter().any(|&r| m.routes[r as usize].open)
            })
            .collect();
        let mut near = vec![Vec::new(); m.nodes.len()];
        for &v in &movable {
            let lv = m.nodes[v as usize].loc;
            let mut others: Vec<(i64, u32)> = movable
                .iter()
                .filter(|&&u| u != v)
                .map(|&u| {
                    let lu = m.nodes[u as usize].loc;
                    (m.tt_once(lv, lu) + m.tt_once(lu, lv), u)
                })
                .collect();
            others.sort_unstable();
            others.truncate(NEAR);
            near[v as usize] = others.into_iter().map(|(_, u)| u).collect();
        }
        let granular = m.routes.iter().filter(|r| r.open).count() > GRANULAR_ROUTES;
        let mut near_homes = vec![Vec::new(); m.nodes.len()];
        if granular {
            for &v in &movable {
                let lv = m.nodes[v as usize].loc;
                let mut homes: Vec<(i64, u32)> = m.nodes[v as usize]
                    .routes
                    .iter()
                    .filter(|&&r| m.routes[r as usize].open)
                    .map(|&r| (m.tt_once(m.routes[r as usize].home, lv), r))
                    .collect();
                homes.sort_unstable();
                homes.truncate(NEAR_HOMES);
                near_homes[v as usize] = homes.into_iter().map(|(_, r)| r).collect();
            }
        }
        Searcher {
            m,
            rng: Rng::new(seed),
            movable,
            near,
            near_homes,
            granular,
            seq_a: Vec::new(),
            seq_b: Vec::new(),
        }
    }

    pub fn has_work(&self) -> bool {
        !self.movable.is_empty()
    }

    /// Improves `sol` (feasible) within `limits`; returns the best solution seen (never worse)
    /// and the iterations run.
    pub fn run(&mut self, sol: Sol, limits: &Limits) -> (Sol, u64) {
        let mut best = sol;
        if !self.has_work() {
            return (best, 0);
        }
        self.descend(&mut best);
        let mut cur = best.clone();
        let mut cand = best.clone();
        // Temperatures in cost units (seconds of travel): early on a plan about ten minutes worse
        // is often accepted, at the end about half a minute. Tuned on the `quality` example
        // (seeds 1-5, 8 and 40 technicians): from (60 s, 1 s) this cut travel 1-3 %.
        let (t0, t1) = (600.0f64, 30.0f64);
        let mut done = 0;
        while done < limits.iterations {
            if done % 16 == 0 && limits.stop.is_some_and(|f| f()) {
                break;
            }
            let temp = t0 * (t1 / t0).powf(done as f64 / limits.iterations as f64);
            done += 1;
            cand.clone_from(&cur);
            if !self.ruin_recreate(&mut cand) {
                continue;
            }
            let threshold = cur.total as f64 - temp * self.rng.unit().max(1e-12).ln();
            if (cand.total as f64) < threshold {
                std::mem::swap(&mut cur, &mut cand);
                if cur.total < best.total {
                    best.clone_from(&cur);
                }
            }
        }
        let before = best.total;
        self.descend(&mut best);
        debug_assert!(best.total <= before);
        (best, done)
    }

    // -----------------------------------------------------------------------------------------
    // Ruin and recreate (Christiaens & Vanden Berghe, "Slack induction by string removals", 2020)

    fn ruin_recreate(&mut self, sol: &mut Sol) -> bool {
        const AVG_REMOVED: f64 = 10.0;
        const MAX_STRING: f64 = 10.0;
        let m = self.m;
        let open_used = sol
            .routes
            .iter()
            .enumerate()
            .filter(|(r, route)| m.routes[*r].open && !route.seq.is_empty())
            .count()
            .max(1);
        let avg_card = self.movable.len() as f64 / open_used as f64;
        let ls_max = MAX_STRING.min(avg_card).max(1.0);
        let ks_max = (4.0 * AVG_REMOVED / (1.0 + ls_max) - 1.0).max(1.0);
        let ks = 1 + self.rng.below(ks_max as usize);
        let seed = self.movable[self.rng.below(self.movable.len())];
        let mut removed: Vec<u32> = Vec::new();
        let mut ruined: Vec<u32> = Vec::new();
        let near = std::mem::take(&mut self.near);
        for &c in std::iter::once(&seed).chain(near[seed as usize].iter()) {
            if ruined.len() >= ks {
                break;
            }
            let r = sol.route_of[c as usize];
            if r == NONE || ruined.contains(&r) {
                continue;
            }
            let route = &mut sol.routes[r as usize];
            let card = route.seq.len();
            let l_max = (ls_max as usize).min(card).max(1);
            let l = 1 + self.rng.below(l_max);
            let pc = route.seq.iter().position(|&x| x == c).unwrap_or(0);
            let lo = pc.saturating_sub(l - 1);
            let hi = pc.min(card - l);
            let from = lo + self.rng.below(hi - lo + 1);
            let mut i = 0;
            route.seq.retain(|&x| {
                let inside = i >= from && i < from + l;
                i += 1;
                if inside && m.nodes[x as usize].fixed.is_none() {
                    removed.push(x);
                    false
                } else {
                    true
                }
            });
            ruined.push(r);
        }
        self.near = near;
        for &v in &removed {
            sol.route_of[v as usize] = NONE;
        }
        for &r in &ruined {
            if !m.refresh(r, &mut sol.routes[r as usize]) {
                return false;
            }
        }
        // Recreate in one of a few orders, each position skipped with a small probability
        // ("blinks"), so that the same removal can rebuild differently.
        match self.rng.below(10) {
            0..=3 => shuffle(&mut removed, &mut self.rng),
            4..=6 => removed.sort_by_key(|&v| {
                let a = &m.nodes[v as usize].allowed;
                a.last().map_or(0, |x| x.1) - a.first().map_or(0, |x| x.0)
            }),
            7..=8 => removed.sort_by_key(|&v| std::cmp::Reverse(m.nodes[v as usize].dur)),
            _ => removed.sort_by_key(|&v| m.nodes[v as usize].allowed.first().map_or(0, |x| x.0)),
        }
        const BLINK: f64 = 0.01;
        let mut cands: Vec<u32> = Vec::new();
        for &v in &removed {
            let mut best: Option<(i64, u32, usize)> = None;
            cands.clear();
            if self.granular {
                for &u in &self.near[v as usize] {
                    let r = sol.route_of[u as usize];
                    if r != NONE && !cands.contains(&r) && m.can(v, r) {
                        cands.push(r);
                    }
                }
                for &r in &self.near_homes[v as usize] {
                    if !cands.contains(&r) {
                        cands.push(r);
                    }
                }
            } else {
                cands.extend_from_slice(&m.nodes[v as usize].routes);
            }
            for &r in &cands {
                if !m.routes[r as usize].open {
                    continue;
                }
                let route = &sol.routes[r as usize];
                let hi = m.nodes[v as usize].allowed.last().map_or(i64::MIN, |x| x.1);
                for k in 0..=route.seq.len() {
                    if k > 0 && route.start[k - 1] > hi {
                        break;
                    }
                    if self.rng.unit() < BLINK {
                        continue;
                    }
                    if let Some(d) = m.insertion(r, route, v, k)
                        && best.is_none_or(|b| d < b.0)
                    {
                        best = Some((d, r, k));
                    }
                }
            }
            let Some((_, r, k)) = best else {
                return false;
            };
            let route = &mut sol.routes[r as usize];
            route.seq.insert(k, v);
            sol.route_of[v as usize] = r;
            if !m.refresh(r, route) {
                return false; // cannot happen: the insertion was checked
            }
        }
        sol.recount();
        true
    }

    // -----------------------------------------------------------------------------------------
    // Local search: relocate, exchange, 2-opt* and or-opt over nearby visits, first improvement,
    // until no move improves.

    pub fn descend(&mut self, sol: &mut Sol) {
        let mut improved = true;
        let mut rounds = 0;
        while improved && rounds < 50 {
            improved = false;
            rounds += 1;
            for i in 0..self.movable.len() {
                let v = self.movable[i];
                improved |= self.relocate(sol, v);
                improved |= self.or_opt(sol, v);
                improved |= self.exchange(sol, v);
                improved |= self.two_opt_star(sol, v);
            }
        }
    }

    /// Applies new sequences for one or two routes when they are feasible and cheaper.
    fn commit(&mut self, sol: &mut Sol, changes: &[(u32, bool)]) -> bool {
        let m = self.m;
        let mut new_cost = 0;
        let mut old_cost = 0;
        for &(r, use_a) in changes {
            let seq = if use_a { &self.seq_a } else { &self.seq_b };
            let Some(c) = m.eval(r, seq) else {
                return false;
            };
            new_cost += c;
            old_cost += sol.routes[r as usize].cost;
        }
        if new_cost >= old_cost {
            return false;
        }
        for &(r, use_a) in changes {
            let seq = if use_a { &self.seq_a } else { &self.seq_b };
            let route = &mut sol.routes[r as usize];
            route.seq.clone_from(seq);
            for &v in &route.seq {
                sol.route_of[v as usize] = r;
            }
            let ok = m.refresh(r, route);
            debug_assert!(ok);
        }
        sol.recount();
        true
    }

    /// Routes worth trying for `v`: its own and those of its nearest visits, each once.
    fn candidate_routes(&self, sol: &Sol, v: u32, out: &mut Vec<u32>) {
        out.clear();
        out.push(sol.route_of[v as usize]);
        for &u in self.near[v as usize].iter().take(15) {
            let r = sol.route_of[u as usize];
            if r != NONE && !out.contains(&r) {
                out.push(r);
            }
        }
    }

    /// Moves `v` to its best position among nearby routes.
    fn relocate(&mut self, sol: &mut Sol, v: u32) -> bool {
        let m = self.m;
        let r0 = sol.route_of[v as usize];
        let p0 = sol.pos(v);
        // The route without v.
        self.seq_a.clone_from(&sol.routes[r0 as usize].seq);
        self.seq_a.remove(p0);
        let mut without = Route {
            seq: std::mem::take(&mut self.seq_a),
            ..Route::default()
        };
        let feasible = m.refresh(r0, &mut without);
        let saved = sol.routes[r0 as usize].cost - without.cost;
        let mut best: Option<(i64, u32, usize)> = None;
        if feasible {
            let mut cands = Vec::new();
            self.candidate_routes(sol, v, &mut cands);
            for &r in &cands {
                if !m.routes[r as usize].open || !m.can(v, r) {
                    continue;
                }
                let route = if r == r0 {
                    &without
                } else {
                    &sol.routes[r as usize]
                };
                if let Some((d, k)) = m.best_insertion(r, route, v)
                    && d - saved < best.map_or(0, |b| b.0)
                {
                    best = Some((d - saved, r, k));
                }
            }
        }
        self.seq_a = without.seq;
        let Some((_, r, k)) = best else {
            return false;
        };
        if r == r0 {
            self.seq_a.insert(k, v);
            self.commit(sol, &[(r0, true)])
        } else {
            self.seq_b.clone_from(&sol.routes[r as usize].seq);
            self.seq_b.insert(k, v);
            self.commit(sol, &[(r0, true), (r, false)])
        }
    }

    /// Moves two or three consecutive visits starting at `v` next to a nearby visit.
    fn or_opt(&mut self, sol: &mut Sol, v: u32) -> bool {
        let m = self.m;
        let r0 = sol.route_of[v as usize];
        let p0 = sol.pos(v);
        let n0 = sol.routes[r0 as usize].seq.len();
        for len in 2..=3usize {
            if p0 + len > n0 {
                break;
            }
            let chunk: Vec<u32> = sol.routes[r0 as usize].seq[p0..p0 + len].to_vec();
            if chunk.iter().any(|&x| m.nodes[x as usize].fixed.is_some()) {
                break;
            }
            for ui in 0..self.near[v as usize].len().min(10) {
                let u = self.near[v as usize][ui];
                if chunk.contains(&u) {
                    continue;
                }
                let r = sol.route_of[u as usize];
                if r == NONE || !m.routes[r as usize].open {
                    continue;
                }
                if chunk.iter().any(|&x| !m.can(x, r)) {
                    continue;
                }
                let pu = sol.pos(u);
                // Before u or after u.
                for after in [false, true] {
                    if r == r0 {
                        let mut seq: Vec<u32> = sol.routes[r0 as usize].seq.clone();
                        seq.drain(p0..p0 + len);
                        let Some(pu) = seq.iter().position(|&x| x == u) else {
                            continue;
                        };
                        let at = pu + usize::from(after);
                        seq.splice(at..at, chunk.iter().copied());
                        self.seq_a = seq;
                        if self.commit(sol, &[(r0, true)]) {
                            return true;
                        }
                    } else {
                        self.seq_a.clone_from(&sol.routes[r0 as usize].seq);
                        self.seq_a.drain(p0..p0 + len);
                        self.seq_b.clone_from(&sol.routes[r as usize].seq);
                        let at = pu + usize::from(after);
                        self.seq_b.splice(at..at, chunk.iter().copied());
                        if self.commit(sol, &[(r0, true), (r, false)]) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    /// Swaps `v` with a nearby visit of another route.
    fn exchange(&mut self, sol: &mut Sol, v: u32) -> bool {
        let m = self.m;
        let r0 = sol.route_of[v as usize];
        for ui in 0..self.near[v as usize].len().min(15) {
            let u = self.near[v as usize][ui];
            let r = sol.route_of[u as usize];
            if r == NONE || r == r0 || !m.routes[r as usize].open {
                continue;
            }
            if !m.can(v, r) || !m.can(u, r0) {
                continue;
            }
            let (pv, pu) = (sol.pos(v), sol.pos(u));
            self.seq_a.clone_from(&sol.routes[r0 as usize].seq);
            self.seq_b.clone_from(&sol.routes[r as usize].seq);
            self.seq_a[pv] = u;
            self.seq_b[pu] = v;
            if self.commit(sol, &[(r0, true), (r, false)]) {
                return true;
            }
        }
        false
    }

    /// Joins the head of `v`'s route (up to `v`) with the tail of a nearby visit's route (from
    /// that visit), and the other head with the other tail.
    fn two_opt_star(&mut self, sol: &mut Sol, v: u32) -> bool {
        let m = self.m;
        let r0 = sol.route_of[v as usize];
        for ui in 0..self.near[v as usize].len().min(10) {
            let u = self.near[v as usize][ui];
            let r = sol.route_of[u as usize];
            if r == NONE || r == r0 || !m.routes[r as usize].open {
                continue;
            }
            let (pv, pu) = (sol.pos(v), sol.pos(u));
            let a = &sol.routes[r0 as usize].seq;
            let b = &sol.routes[r as usize].seq;
            self.seq_a.clear();
            self.seq_a.extend_from_slice(&a[..=pv]);
            self.seq_a.extend_from_slice(&b[pu..]);
            self.seq_b.clear();
            self.seq_b.extend_from_slice(&b[..pu]);
            self.seq_b.extend_from_slice(&a[pv + 1..]);
            if self.commit(sol, &[(r0, true), (r, false)]) {
                return true;
            }
        }
        false
    }
}

fn shuffle(v: &mut [u32], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Travel: 1 minute per unit of latitude difference + longitude difference (Manhattan).
    struct Grid;
    impl Travel for Grid {
        fn minutes(&self, a: GeoPoint, b: GeoPoint) -> u32 {
            ((a.lat - b.lat).abs() + (a.lon - b.lon).abs()).round() as u32
        }
    }

    fn p(x: f64) -> GeoPoint {
        GeoPoint { lat: x, lon: 0.0 }
    }

    const H: i64 = 3600;

    fn node(loc: u32, routes: Vec<u32>, lo: i64, hi: i64) -> Node {
        Node {
            loc,
            dur: H,
            allowed: vec![(lo, hi)],
            fixed: None,
            routes,
            told: None,
        }
    }

    #[test]
    fn a_visit_never_runs_into_the_break_and_the_latest_start_respects_it() {
        // Home at 0, one visit 30 minutes away; shifts 8-12 and 13-17 (hours as seconds).
        let travel = Grid;
        let mut m = Model::new(&travel, vec![p(0.0), p(30.0)], 0);
        m.routes.push(RouteDef {
            tech: 0,
            home: 0,
            segs: vec![(8 * H, 12 * H), (13 * H, 17 * H)],
            open: true,
        });
        m.nodes.push(node(1, vec![0], 11 * H, 14 * H));
        // Arriving at 11:00 it would end at 12:00 and need 30 minutes home: the break. So after
        // it, leaving home at 13:00.
        assert_eq!(m.place(0, 0, None, true), Some(13 * H + 30 * 60));
        // Not last: 11:00 fits the morning block exactly.
        assert_eq!(m.place(0, 0, None, false), Some(11 * H));
        // Latest start as the last visit: 17:00 - 30 min home - 1 h, capped by the window (14:00).
        assert_eq!(m.latest(0, 0, None), 14 * H);
        m.nodes[0].allowed = vec![(11 * H, 16 * H)];
        assert_eq!(m.latest(0, 0, None), 15 * H + 30 * 60);
    }

    #[test]
    fn a_large_model_memoises_travel_in_a_map_with_the_same_answers() {
        let travel = Grid;
        let locs: Vec<GeoPoint> = (0..DENSE_LOCATIONS + 1).map(|i| p(i as f64)).collect();
        let m = Model::new(&travel, locs, 0);
        assert!(matches!(m.memo, Memo::Sparse(_)));
        assert_eq!(m.tt(3, 1000), 997 * 60);
        assert_eq!(m.tt(3, 1000), 997 * 60);
        assert_eq!(m.tt(1000, 3), 997 * 60);
        let small = Model::new(&travel, vec![p(0.0), p(5.0)], 0);
        assert!(matches!(small.memo, Memo::Dense(_)));
        assert_eq!(small.tt(0, 1), 300);
    }

    #[test]
    fn the_search_moves_visits_to_the_nearer_technician_and_never_gets_worse() {
        // Two technicians at 0 and 100; visits at 10, 20 (near the first) and 90 booked crosswise.
        let travel = Grid;
        let locs = vec![p(0.0), p(100.0), p(10.0), p(20.0), p(90.0)];
        let mut m = Model::new(&travel, locs, 0);
        for (t, home) in [(0, 0), (1, 1)] {
            m.routes.push(RouteDef {
                tech: t,
                home,
                segs: vec![(8 * H, 20 * H)],
                open: true,
            });
        }
        m.nodes.push(node(2, vec![0, 1], 8 * H, 12 * H));
        m.nodes.push(node(3, vec![0, 1], 12 * H, 16 * H));
        m.nodes.push(node(4, vec![0, 1], 8 * H, 12 * H));
        let start = Sol::new(&m, vec![vec![2], vec![0, 1]]).unwrap();
        let before = start.total;
        let mut s = Searcher::new(&m, 7);
        let (best, _) = s.run(
            start,
            &Limits {
                iterations: 200,
                stop: None,
            },
        );
        assert!(best.total < before);
        assert_eq!(best.routes[0].seq, vec![0, 1]);
        assert_eq!(best.routes[1].seq, vec![2]);
        // 0 -> 10 -> 20 -> 0 and 100 -> 90 -> 100 minutes.
        assert_eq!(best.total, (40 + 20) * 60);
    }
}
