//! HTTP integration tests of the seiapi v3 contract (docs/api.md), each run on
//! SQLite and, when `REVISIT_TEST_POSTGRES_URL` is set, on PostgreSQL. One binary, many modules,
//! to keep link time low.

mod helpers;

mod admin;
mod bad_input;
mod board;
mod booking;
mod categories;
mod configuration;
mod followup;
mod hardening;
mod listing;
mod notify;
mod openapi;
mod ops_details;
mod passthrough;
mod reoptimize;
mod scheduler;
mod session;
mod tenancy;
mod times;
mod web;
mod workorders;

use serde_json::{Value, json};

/// A Closed Incomplete order assigned to `user`, closed with a follow-up reason (category 15),
/// whose own rule allows a follow-up: every precondition of a follow-up holds.
pub fn followable_order(num: &str, user: &str) -> Value {
    json!({
        "OrderNum": num,
        "OrderType": "REPAIR",
        "OrderStatus": 4097,
        "ReasonCode": "2001",
        "CanScheduleFollowup": true,
        "UserName": user,
        "PlannedStartDate": "2026-12-01T08:00:00.000Z",
        "PlannedEndDate": "2026-12-01T10:00:00.000Z",
        "Location": {
            "LocationNum": "L-1",
            "ServiceAreaID": "north",
            "Address": {"City": "Lyon", "Lat": "45.7640", "Lon": "4.8357"}
        },
    })
}

/// A Book Job body naming one chosen slot (a type-1001 TimeConstraints item).
pub fn booking() -> Value {
    json!({
        "TimeConstraints": [{
            "Type": "1001",
            "Period": {"Start": "2030-12-02T13:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}
        }]
    })
}

/// An Appointment Search body for a follow-up of `original`.
pub fn search(original: &str) -> Value {
    json!({
        "OriginalOrderNum": original,
        "TimeConstraints": [{
            "Type": "1002",
            "Period": {"Start": "2030-12-02T08:00:00.000Z", "End": "2030-12-02T17:00:00.000Z"}
        }]
    })
}
