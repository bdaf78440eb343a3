//! Revisit's built-in scheduler: which arrival windows a follow-up visit can be offered, and where
//! a booked one goes (docs/scheduler.md). Pure functions on in-memory data: no I/O, no clock, no async;
//! the caller passes `now` and a [`plan::Snapshot`] of work centers, technicians and booked visits.
//!
//! - [`model`]: the configuration wire types and their validation.
//! - [`travel`]: travel time behind the [`travel::Travel`] trait.
//! - [`windows`]: the policy's local-time windows as UTC instants, descriptions and offer ids.
//! - [`plan`]: slot search, booking placement (with an optional bounded repair) and the day
//!   invariants.
//! - [`reopt`]: re-optimisation of booked days within their promises.
#![forbid(unsafe_code)]

pub mod model;
pub mod plan;
pub mod reopt;
mod repair;
mod route;
pub mod travel;
pub mod windows;

pub use model::{
    GeoPoint, Invalid, OfferOrder, OrderType, Policy, ShiftDef, ShiftException, Skill, Technician,
    WindowDef, WorkCenter,
};
pub use plan::{
    Availability, Job, Moved, Offer, PartEta, Placement, Repaired, SearchOutcome, Shifted,
    Snapshot, Unavailable, Visit, VisitSource, check_day, check_shift_bounds, plan, plan_with,
    plan_with_repair, search, search_with, search_with_repair, shifts_on,
};
pub use reopt::{
    BookedVisit, Budget, FactsSource, Move, PlannedStop, Reoptimize, Reoptimized, TechDay,
    Untouched, VisitFacts, reoptimize,
};
pub use travel::{GreatCircle, Travel};
pub use windows::{Window, candidate_windows, describe, offer_id, parse_offer_id};
