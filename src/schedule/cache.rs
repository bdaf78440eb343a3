//! The built-in scheduler's in-process cache of each entity's set-up and visits.
//!
//! Correct across processes without any messaging: every read first asks the database for the
//! entity's set-up version and visit sequence number (one indexed row), and brings the cache up
//! to date with only what changed since (`visit_changes`). A booking made through another
//! process is therefore seen by the very next search here. Booking itself never trusts the
//! cache: it re-reads the visits inside its transaction.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use jiff::Timestamp;
use revisit_scheduler::{FactsSource, Visit, VisitFacts, VisitSource};

use super::{
    ScheduleError,
    builtin::{Setup, load_setup, to_visit},
};
use crate::{
    domain::{EntityId, status::OrderStatus},
    store::{Store, VisitChange, VisitQuery, VisitRow},
};

const DAY_MS: i64 = 86_400_000;

/// What a booking's repair must know of a booked visit besides its times and place
/// (docs/scheduler.md §6).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VisitInfo {
    pub order_type: Option<String>,
    pub service_area_id: Option<String>,
    /// En route, on site or travel complete.
    pub under_way: bool,
    /// A dispatcher pinned it.
    pub pinned: bool,
}

impl VisitInfo {
    fn of(r: &VisitRow) -> Self {
        VisitInfo {
            order_type: r.order_type.clone(),
            service_area_id: r.service_area_id.clone(),
            under_way: r
                .order_status
                .and_then(OrderStatus::from_code)
                .is_some_and(OrderStatus::is_under_way),
            pinned: r.pinned,
        }
    }
}

/// One technician's visits by start, and the [`VisitInfo`] of each (same order).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TechVisits {
    pub visits: Vec<Visit>,
    pub info: Vec<VisitInfo>,
}

impl TechVisits {
    fn remove(&mut self, order_num: &str) {
        if let Some(k) = self.visits.iter().position(|v| v.order_num == order_num) {
            self.visits.remove(k);
            self.info.remove(k);
        }
    }

    fn insert(&mut self, visit: Visit, info: VisitInfo) {
        let at = self.visits.partition_point(|v| v.start <= visit.start);
        self.visits.insert(at, visit);
        self.info.insert(at, info);
    }
}

/// Visits per technician; each technician's list is shared, so an update copies only the
/// technicians it touches.
#[derive(Debug, Clone, Default)]
pub struct VisitMap(HashMap<String, Arc<TechVisits>>);

impl VisitSource for VisitMap {
    fn visits_of(&self, user_name: &str) -> Option<&[Visit]> {
        self.0.get(user_name).map(|t| t.visits.as_slice())
    }
}

impl VisitMap {
    /// The visits of stored rows, per technician, by start.
    pub(crate) fn from_rows(setup: &Setup, rows: Vec<VisitRow>) -> Self {
        let mut by_tech: HashMap<String, Vec<(Visit, VisitInfo)>> = HashMap::new();
        for r in rows {
            let info = VisitInfo::of(&r);
            let (tech, visit) = to_visit(setup, r);
            by_tech.entry(tech).or_default().push((visit, info));
        }
        let mut map = HashMap::with_capacity(by_tech.len());
        for (tech, mut day) in by_tech {
            day.sort_by_key(|(v, _)| v.start);
            let (visits, info) = day.into_iter().unzip();
            map.insert(tech, Arc::new(TechVisits { visits, info }));
        }
        VisitMap(map)
    }

    /// Each technician's visits, by start, without what a repair must know of them.
    pub(crate) fn into_lists(self) -> HashMap<String, Vec<Visit>> {
        self.0
            .into_iter()
            .map(|(tech, day)| (tech, Arc::unwrap_or_clone(day).visits))
            .collect()
    }

    /// A technician's visits, by start.
    pub fn get(&self, tech: &str) -> Option<&[Visit]> {
        self.visits_of(tech)
    }

    fn techs(&self) -> impl Iterator<Item = (&String, &[Visit])> {
        self.0.iter().map(|(t, d)| (t, d.visits.as_slice()))
    }

    /// The visits as a repair for work center `area` may move them: under-way and pinned
    /// visits, and visits of another work center, stay where they are; moving one away from its
    /// technician costs the policy's penalty.
    pub(crate) fn facts<'a>(&'a self, setup: &'a Setup, area: Option<&'a str>) -> RepairFacts<'a> {
        RepairFacts {
            visits: self,
            setup,
            area,
        }
    }
}

/// See [`VisitMap::facts`].
pub(crate) struct RepairFacts<'a> {
    visits: &'a VisitMap,
    setup: &'a Setup,
    area: Option<&'a str>,
}

impl FactsSource for RepairFacts<'_> {
    fn facts_of(&self, tech: &str, order_num: &str) -> Option<VisitFacts> {
        let day = self.visits.0.get(tech)?;
        let k = day.visits.iter().position(|v| v.order_num == order_num)?;
        let info = &day.info[k];
        let elsewhere = info
            .service_area_id
            .as_deref()
            .is_some_and(|a| Some(a) != self.area);
        Some(VisitFacts {
            skills: info
                .order_type
                .as_deref()
                .and_then(|t| self.setup.order_types.get(t))
                .map(|t| t.skills.clone())
                .unwrap_or_default(),
            told_tech: Some(tech.to_string()),
            started: info.under_way,
            pinned: info.pinned || elsewhere,
        })
    }
}

/// What a search works on.
#[derive(Clone)]
pub struct View {
    pub setup: Arc<Setup>,
    pub visits: Arc<VisitMap>,
    /// The set-up version and visit sequence number the view is as of.
    pub versions: (i64, i64),
}

impl View {
    /// What the pure scheduler works on.
    pub(crate) fn snapshot(&self) -> revisit_scheduler::Snapshot<'_> {
        revisit_scheduler::Snapshot {
            work_centers: &self.setup.work_centers,
            technicians: &self.setup.technicians,
            visits: self.visits.as_ref(),
        }
    }
}

struct Entry {
    setup_version: i64,
    setup: Arc<Setup>,
    visit_seq: i64,
    from_ms: i64,
    to_ms: i64,
    visits: Arc<VisitMap>,
    /// Which technician each cached order belongs to, to remove it when it changes. It moves
    /// from an entry to the one brought up to date from it (so it is changed in place, never
    /// copied); an entry whose map has moved on rebuilds one from its visits when it is brought
    /// up to date again (a rare race of two updates from the same entry).
    tech_of: Mutex<Option<HashMap<String, String>>>,
}

impl Entry {
    fn view(&self) -> View {
        View {
            setup: self.setup.clone(),
            visits: self.visits.clone(),
            versions: (self.setup_version, self.visit_seq),
        }
    }

    /// Takes the order-to-technician map out of this entry, or builds one from its visits.
    fn take_tech_of(&self) -> HashMap<String, String> {
        if let Some(m) = self.tech_of.lock().ok().and_then(|mut t| t.take()) {
            return m;
        }
        let mut m = HashMap::with_capacity(self.visits.0.values().map(|l| l.visits.len()).sum());
        for (tech, list) in self.visits.techs() {
            for v in list.iter() {
                m.insert(v.order_num.clone(), tech.clone());
            }
        }
        m
    }
}

#[derive(Default)]
pub(crate) struct SchedCache {
    entries: Mutex<HashMap<EntityId, Arc<Entry>>>,
    /// One refresh at a time per entity: a burst of searches on a cold or stale cache waits for one
    /// reload instead of each reading every visit.
    refreshing: Mutex<HashMap<EntityId, Arc<tokio::sync::Mutex<()>>>>,
}

fn horizon_ms(setup: &Setup) -> i64 {
    let days = setup
        .work_centers
        .iter()
        .map(|w| i64::from(w.policy.horizon_days))
        .max()
        .unwrap_or(14);
    (days + 2) * DAY_MS
}

impl SchedCache {
    fn get(&self, entity: &EntityId) -> Option<Arc<Entry>> {
        self.entries.lock().ok()?.get(entity).cloned()
    }

    fn put(&self, entity: &EntityId, entry: Arc<Entry>) {
        if let Ok(mut map) = self.entries.lock() {
            // Concurrent refreshes may finish out of order: keep the newest.
            let newer = map.get(entity).is_none_or(|old| {
                (entry.setup_version, entry.visit_seq) >= (old.setup_version, old.visit_seq)
            });
            if newer {
                map.insert(entity.clone(), entry);
            }
        }
    }

    /// The entity's set-up and its visits from a day before `now` to beyond every horizon, as
    /// the database holds them now.
    pub async fn view(
        &self,
        store: &Store,
        entity: &EntityId,
        now: Timestamp,
    ) -> Result<View, ScheduleError> {
        // With a cache, the versions and what changed since it, in one read.
        let cur = self.get(entity);
        let (versions, caught_up) = match &cur {
            Some(c) => {
                let since = (c.setup_version, c.visit_seq);
                let (versions, changes) = store.versions_and_changes(entity, since.1).await?;
                (versions, Some((since, changes)))
            }
            None => (store.sched_versions(entity).await?, None),
        };
        if let Some(view) = self.current(entity, versions, now) {
            return Ok(view);
        }
        let lock = self
            .refreshing
            .lock()
            .map(|mut m| m.entry(entity.clone()).or_default().clone())
            .unwrap_or_default();
        let _one = lock.lock().await;
        // The refresh this call waited for may already have brought the cache to (or past) the
        // versions read above: then there is nothing to do, not even a query.
        if let Some(view) = self.current(entity, versions, now) {
            return Ok(view);
        }
        // Else the changes read with the versions bring the cache there, unless it cannot be
        // (`advance` says why not).
        if let (Some(c), Some((since, changes))) = (&cur, &caught_up) {
            let need = (
                now.as_millisecond() - DAY_MS,
                now.as_millisecond() + horizon_ms(&c.setup),
            );
            if let Some(view) = self.advance(entity, *since, versions, changes, need) {
                return Ok(view);
            }
        }
        self.refresh(store, entity, versions, now).await
    }

    /// The cached view as it is, without asking the database whether it is current: for a
    /// booking that checked it against the database moments ago (its transaction decides on
    /// the database's visits anyway).
    pub(crate) fn cached(&self, entity: &EntityId) -> Option<View> {
        self.get(entity).map(|c| c.view())
    }

    /// The view brought from `since` to `versions` by `changes` (every order written after
    /// `since`, as it is now), for a booking whose transaction read them while no one else could
    /// write (SQLite). `None` when the cache cannot be brought there: its set-up is another, it
    /// is older than `since` or newer than `versions`, or it does not cover `need` (a range of
    /// planned starts, epoch milliseconds).
    pub(crate) fn advance(
        &self,
        entity: &EntityId,
        since: (i64, i64),
        versions: (i64, i64),
        changes: &[VisitChange],
        need: (i64, i64),
    ) -> Option<View> {
        let c = self.get(entity)?;
        if c.setup_version != versions.0
            || since.0 != versions.0
            || c.visit_seq < since.1
            || c.visit_seq > versions.1
            || c.from_ms > need.0
            || c.to_ms < need.1
        {
            return None;
        }
        if c.visit_seq == versions.1 {
            return Some(c.view());
        }
        let entry = apply(&c, versions.1, changes);
        self.put(entity, entry.clone());
        Some(entry.view())
    }

    /// The cached view if it is at least as new as `versions` and covers the search range.
    fn current(&self, entity: &EntityId, versions: (i64, i64), now: Timestamp) -> Option<View> {
        let c = self.get(entity)?;
        let need = (
            now.as_millisecond() - DAY_MS,
            now.as_millisecond() + horizon_ms(&c.setup),
        );
        (c.setup_version == versions.0
            && c.visit_seq >= versions.1
            && c.from_ms <= need.0
            && c.to_ms >= need.1)
            .then(|| c.view())
    }

    /// Brings the cache up to `versions` (read before the refresh lock was taken: whatever
    /// commits later is read too, and seen again by the next version read).
    async fn refresh(
        &self,
        store: &Store,
        entity: &EntityId,
        (setup_version, visit_seq): (i64, i64),
        now: Timestamp,
    ) -> Result<View, ScheduleError> {
        let cur = self.get(entity);
        let (setup, same_setup) = match &cur {
            Some(c) if c.setup_version == setup_version => (c.setup.clone(), true),
            _ => (Arc::new(load_setup(store, entity).await?), false),
        };
        let need_from = now.as_millisecond() - DAY_MS;
        let need_to = now.as_millisecond() + horizon_ms(&setup);
        if let Some(c) = cur.filter(|c| same_setup && c.from_ms <= need_from && c.to_ms >= need_to)
        {
            if c.visit_seq >= visit_seq {
                return Ok(c.view());
            }
            let changes = store.visit_changes(entity, c.visit_seq).await?;
            let entry = apply(&c, visit_seq, &changes);
            self.put(entity, entry.clone());
            return Ok(entry.view());
        }
        // A full load, a week beyond what is needed so it is rare. The sequence number was
        // read first, so nothing that commits meanwhile can be missed.
        let (from_ms, to_ms) = (need_from, need_to + 7 * DAY_MS);
        let rows = store
            .list_visits(
                entity,
                &VisitQuery {
                    techs: Vec::new(),
                    from_ms,
                    to_ms,
                },
            )
            .await?;
        let mut tech_of = HashMap::with_capacity(rows.len());
        let visits = VisitMap::from_rows(&setup, rows);
        for (tech, list) in visits.techs() {
            for v in list {
                tech_of.insert(v.order_num.clone(), tech.clone());
            }
        }
        let entry = Arc::new(Entry {
            setup_version,
            setup: setup.clone(),
            visit_seq,
            from_ms,
            to_ms,
            visits: Arc::new(visits),
            tech_of: Mutex::new(Some(tech_of)),
        });
        self.put(entity, entry.clone());
        Ok(entry.view())
    }
}

/// The entry `c` with `changes` (the orders written after its sequence number, each as it is
/// now) applied, at sequence number `visit_seq` at least.
fn apply(c: &Entry, visit_seq: i64, changes: &[VisitChange]) -> Arc<Entry> {
    let mut visits = (*c.visits).clone();
    let mut tech_of = c.take_tech_of();
    let mut seq = visit_seq;
    for ch in changes {
        seq = seq.max(ch.seq);
        if let Some(tech) = tech_of.remove(&ch.order_num)
            && let Some(list) = visits.0.get_mut(&tech)
        {
            Arc::make_mut(list).remove(&ch.order_num);
        }
        if let Some(row) = ch
            .row
            .as_ref()
            .filter(|r| (c.from_ms..c.to_ms).contains(&r.start_ms))
        {
            let info = VisitInfo::of(row);
            let (tech, visit) = to_visit(&c.setup, row.clone());
            tech_of.insert(visit.order_num.clone(), tech.clone());
            Arc::make_mut(visits.0.entry(tech).or_default()).insert(visit, info);
        }
    }
    Arc::new(Entry {
        setup_version: c.setup_version,
        setup: c.setup.clone(),
        visit_seq: seq,
        from_ms: c.from_ms,
        to_ms: c.to_ms,
        visits: Arc::new(visits),
        tech_of: Mutex::new(Some(tech_of)),
    })
}
