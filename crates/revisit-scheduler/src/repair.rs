//! Bounded repair: when no technician can take a new visit in a window as their days stand, move
//! one or two booked visits to other technicians (within their promises) to make room.
//!
//! Tried in this order, the cheapest of the first depth that works wins:
//!
//! 1. one visit `v` leaves the technician `T` who takes the job, for another technician `U`;
//! 2. a chain (`v` from `T` to `U`, and a visit `u` from `U` to a third technician `W`), or two
//!    visits leave `T` (each to the technician that takes it cheapest).
//!
//! The search is deterministic (routes and visits in index order, ties to the first) and bounded
//! by a number of insertion checks, so a slot search and the booking after it agree.

use crate::route::{Model, Route, Sol};

/// A route and its new sequence of nodes.
type Seq = (u32, Vec<u32>);

/// A repair: the job's route and the new sequences of every route it changes, and what it costs
/// (added travel + penalties, seconds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub cost: i64,
    pub job_route: u32,
    pub seqs: Vec<Seq>,
}

struct Counter {
    left: usize,
}

impl Counter {
    fn spend(&mut self, n: usize) -> bool {
        if self.left < n {
            self.left = 0;
            false
        } else {
            self.left -= n;
            true
        }
    }
}

/// A route with one or two of its visits taken out.
struct Without {
    route: Route,
    /// Cost saved by taking them out.
    saved: i64,
}

fn without(m: &Model, r: u32, base: &Route, out: &[u32]) -> Option<Without> {
    let mut route = Route {
        seq: base
            .seq
            .iter()
            .copied()
            .filter(|x| !out.contains(x))
            .collect(),
        ..Route::default()
    };
    if !m.refresh(r, &mut route) {
        return None;
    }
    let saved = base.cost - route.cost;
    Some(Without { route, saved })
}

fn with(route: &Route, v: u32, k: usize) -> Vec<u32> {
    let mut seq = route.seq.clone();
    seq.insert(k, v);
    seq
}

/// Each route of a solution without each of its movable visits: what every repair of that date
/// starts from, whatever the window, so it is computed once per date, and only for the routes a
/// repair looks at (most of a hopeless search spends its budget on the job's own routes).
pub(crate) struct Prepared {
    minus: Vec<std::cell::OnceCell<Vec<Taken>>>,
}

/// A visit of a route, and the route without it (`None` when that breaks a rule).
type Taken = (u32, Option<Without>);

impl Prepared {
    pub fn new(sol: &Sol) -> Self {
        Prepared {
            minus: (0..sol.routes.len())
                .map(|_| std::cell::OnceCell::new())
                .collect(),
        }
    }

    /// Route `r` of `sol` without each of its movable visits.
    fn minus(&self, m: &Model, sol: &Sol, r: u32) -> &[Taken] {
        self.minus[r as usize].get_or_init(|| {
            let base = &sol.routes[r as usize];
            if !m.routes[r as usize].open {
                return Vec::new();
            }
            base.seq
                .iter()
                .copied()
                .filter(|&x| m.nodes[x as usize].fixed.is_none())
                .map(|x| (x, without(m, r, base, &[x])))
                .collect()
        })
    }
}

/// The best insertion of each visit into each route of the solution as it stands, found once.
#[derive(Default)]
struct Fixed {
    found: std::cell::RefCell<FoundMap>,
}

/// Best insertions by (route << 32 | visit).
type FoundMap = std::collections::HashMap<
    u64,
    Option<(i64, usize)>,
    std::hash::BuildHasherDefault<crate::route::PairHasher>,
>;

impl Fixed {
    fn best_insertion(&self, m: &Model, sol: &Sol, r: u32, v: u32) -> Option<(i64, usize)> {
        let key = (u64::from(r) << 32) | u64::from(v);
        if let Some(f) = self.found.borrow().get(&key) {
            return *f;
        }
        let f = m.best_insertion(r, &sol.routes[r as usize], v);
        self.found.borrow_mut().insert(key, f);
        f
    }
}

/// Finds the cheapest repair that places node `job` (not in `sol`), within `budget` insertion
/// checks.
pub(crate) fn find(
    m: &Model,
    sol: &Sol,
    prepared: &Prepared,
    job: u32,
    budget: usize,
) -> Option<Found> {
    let mut count = Counter { left: budget };
    let open = |r: u32| m.routes[r as usize].open;
    let movable = |x: u32| m.nodes[x as usize].fixed.is_none();
    let job_routes: Vec<u32> = m.nodes[job as usize]
        .routes
        .iter()
        .copied()
        .filter(|&r| open(r))
        .collect();
    let n_routes = sol.routes.len() as u32;
    let minus = |r: u32| prepared.minus(m, sol, r);
    let ins = |count: &mut Counter, r: u32, route: &Route, v: u32| -> Option<(i64, usize)> {
        if !open(r) || !m.can(v, r) || !count.spend(route.seq.len() + 1) {
            return None;
        }
        m.best_insertion(r, route, v)
    };
    // Insertions into a route as it stands, asked again and again by chains: looked up once
    // (the budget is spent as if each were tried, so the search and its answer stay the same).
    let fixed = Fixed::default();
    let ins_fixed = |count: &mut Counter, r: u32, v: u32| -> Option<(i64, usize)> {
        let route = &sol.routes[r as usize];
        if !open(r) || !m.can(v, r) || !count.spend(route.seq.len() + 1) {
            return None;
        }
        fixed.best_insertion(m, sol, r, v)
    };

    // Depth 1: v leaves T for U.
    let mut best: Option<Found> = None;
    let consider = |best: &mut Option<Found>, f: Found| {
        if best.as_ref().is_none_or(|b| f.cost < b.cost) {
            *best = Some(f);
        }
    };
    for &t in &job_routes {
        for (v, w) in minus(t) {
            let Some(w) = w else { continue };
            let Some((dj, kj)) = ins(&mut count, t, &w.route, job) else {
                continue;
            };
            for u in 0..n_routes {
                if u == t {
                    continue;
                }
                if let Some((dv, kv)) = ins_fixed(&mut count, u, *v) {
                    consider(
                        &mut best,
                        Found {
                            cost: dj - w.saved + dv,
                            job_route: t,
                            seqs: vec![
                                (t, with(&w.route, job, kj)),
                                (u, with(&sol.routes[u as usize], *v, kv)),
                            ],
                        },
                    );
                }
            }
        }
    }
    if best.is_some() || count.left == 0 {
        return best;
    }

    // Depth 2, a chain: v leaves T for U, u leaves U for W.
    for &t in &job_routes {
        for (v, w) in minus(t) {
            let Some(w) = w else { continue };
            let Some((dj, kj)) = ins(&mut count, t, &w.route, job) else {
                continue;
            };
            for u_route in 0..n_routes {
                if u_route == t || !m.can(*v, u_route) {
                    continue;
                }
                for (u, wu) in minus(u_route) {
                    let Some(wu) = wu else { continue };
                    let Some((dv, kv)) = ins(&mut count, u_route, &wu.route, *v) else {
                        continue;
                    };
                    for w_route in 0..n_routes {
                        if w_route == t || w_route == u_route {
                            continue;
                        }
                        let target = &sol.routes[w_route as usize];
                        if let Some((du, ku)) = ins_fixed(&mut count, w_route, *u) {
                            consider(
                                &mut best,
                                Found {
                                    cost: dj - w.saved + dv - wu.saved + du,
                                    job_route: t,
                                    seqs: vec![
                                        (t, with(&w.route, job, kj)),
                                        (u_route, with(&wu.route, *v, kv)),
                                        (w_route, with(target, *u, ku)),
                                    ],
                                },
                            );
                        }
                    }
                    if count.left == 0 {
                        return best;
                    }
                }
            }
        }
    }

    // Depth 2, a pair: v1 and v2 both leave T.
    for &t in &job_routes {
        let base = &sol.routes[t as usize];
        let pool: Vec<u32> = base.seq.iter().copied().filter(|&x| movable(x)).collect();
        for (i, &v1) in pool.iter().enumerate() {
            for &v2 in &pool[i + 1..] {
                if !count.spend(base.seq.len()) {
                    return best;
                }
                let Some(w) = without(m, t, base, &[v1, v2]) else {
                    continue;
                };
                let Some((dj, kj)) = ins(&mut count, t, &w.route, job) else {
                    continue;
                };
                if let Some((d_out, mut seqs)) = place_two(m, sol, &fixed, &mut count, t, v1, v2) {
                    seqs.insert(0, (t, with(&w.route, job, kj)));
                    consider(
                        &mut best,
                        Found {
                            cost: dj - w.saved + d_out,
                            job_route: t,
                            seqs,
                        },
                    );
                }
            }
        }
    }
    best
}

/// The cheapest way to give `v1` and `v2` (taken from route `t`) to other routes: each to its
/// cheapest route, or both to one route one after the other.
fn place_two(
    m: &Model,
    sol: &Sol,
    fixed: &Fixed,
    count: &mut Counter,
    t: u32,
    v1: u32,
    v2: u32,
) -> Option<(i64, Vec<Seq>)> {
    let n_routes = sol.routes.len() as u32;
    let mut best: Option<(i64, Vec<Seq>)> = None;
    // Best single insertion of each, per route.
    let options = |count: &mut Counter, v: u32| -> Vec<(i64, u32, usize)> {
        let mut o = Vec::new();
        for r in 0..n_routes {
            if r == t || !m.routes[r as usize].open || !m.can(v, r) {
                continue;
            }
            let route = &sol.routes[r as usize];
            if !count.spend(route.seq.len() + 1) {
                break;
            }
            if let Some((d, k)) = fixed.best_insertion(m, sol, r, v) {
                o.push((d, r, k));
            }
        }
        o
    };
    let o1 = options(count, v1);
    let o2 = options(count, v2);
    for &(d1, r1, k1) in &o1 {
        for &(d2, r2, k2) in &o2 {
            if r1 == r2 {
                continue;
            }
            let cost = d1 + d2;
            if best.as_ref().is_none_or(|b| cost < b.0) {
                best = Some((
                    cost,
                    vec![
                        (r1, with(&sol.routes[r1 as usize], v1, k1)),
                        (r2, with(&sol.routes[r2 as usize], v2, k2)),
                    ],
                ));
            }
        }
    }
    // Both to the same route: v1 first, then v2 into the result.
    for &(d1, r, k1) in &o1 {
        let mut route = Route {
            seq: with(&sol.routes[r as usize], v1, k1),
            ..Route::default()
        };
        if !m.refresh(r, &mut route) || !count.spend(route.seq.len() + 1) {
            continue;
        }
        if let Some((d2, k2)) = m.best_insertion(r, &route, v2) {
            let cost = d1 + d2;
            if best.as_ref().is_none_or(|b| cost < b.0) {
                best = Some((cost, vec![(r, with(&route, v2, k2))]));
            }
        }
    }
    best
}
