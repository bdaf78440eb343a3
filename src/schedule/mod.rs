//! The two schedulers behind the follow-up endpoints: Revisit's own (`builtin.rs`, over the
//! in-memory copy of each entity's schedule in `cache.rs`) and the pass-through to a company's
//! own scheduler (`passthrough.rs`). They search and book; the follow-up ledger (who booked what,
//! replays, retries) belongs to `crate::booking`, which calls them.

pub mod builtin;
pub mod cache;
pub mod passthrough;

use serde_json::Value;

use crate::{
    domain::{
        DomainError,
        followup::{ClaimOutcome, FollowupDone},
    },
    gateway::{GatewayError, Relayed},
    store::StoreError,
};

/// The scheduler layer's error: why a search or booking produced no outcome at all.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The request cannot be served as it is (e.g. the built-in scheduler has no place for the
    /// visit).
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A third-party scheduler could not be called or misbehaved.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// Revisit could not build what it was to write: a fault of the server, not of the request.
    #[error("{0}")]
    Fault(String),
}

/// How a booking ended.
#[derive(Debug)]
pub enum Outcome {
    /// Booked and recorded by the built-in scheduler, in one transaction.
    Booked(FollowupDone),
    /// A third party's answer, to relay as it came (a booking when it is a 200).
    Relayed(Relayed),
    /// The window can no longer be booked; up to three alternatives (TimeConstraints objects).
    Unavailable {
        detail: String,
        alternatives: Vec<Value>,
    },
    /// Too many bookings of that day are waiting in this process; nothing was done.
    Busy { detail: String },
    /// The ledger answered the request inside the booking's transaction (the same request was
    /// booked meanwhile, ...); nothing was written.
    Answered(Box<ClaimOutcome>),
}
