//! The wire objects as the OpenAPI document describes them. These types only document: the
//! handlers read bodies as JSON objects and check them in `domain` (unknown properties are kept,
//! so every object here allows more properties than it lists). Examples are the demo's.

#![allow(dead_code)]

use serde_json::Value;
use utoipa::ToSchema;

/// A period: RFC 3339 times with their offset, from 0001-01-01T00:00:00.000Z to
/// 9999-12-31T23:59:59.999Z; answered as `2026-12-01T08:00:00.000Z`.
#[derive(ToSchema)]
#[schema(example = json!({"Start": "2026-12-04T14:00:00.000Z", "End": "2026-12-04T18:00:00.000Z"}))]
pub struct Period {
    #[schema(rename = "Start", format = DateTime)]
    start: String,
    #[schema(rename = "End", format = DateTime)]
    end: String,
}

/// A time constraint: `1001` an arrival window (an offer, or the chosen slot), `1002` the
/// customer is available, `1003` the customer is not available.
#[derive(ToSchema)]
#[schema(example = json!({"ID": "CHI-C:20261204T1400Z", "Desc": "Fri 4 Dec, 08:00-12:00", "Type": "1001",
    "Period": {"Start": "2026-12-04T14:00:00.000Z", "End": "2026-12-04T18:00:00.000Z"}}))]
pub(crate) struct TimeConstraint {
    /// An offer's id (answers); may be sent back with the chosen slot.
    #[schema(rename = "ID")]
    id: Option<String>,
    /// The window in the work center's local time, for people.
    #[schema(rename = "Desc")]
    desc: Option<String>,
    #[schema(rename = "Type", pattern = "^100[123]$")]
    kind: String,
    #[schema(rename = "Period")]
    period: Period,
}

/// A part needed for the visit.
#[derive(ToSchema)]
#[schema(example = json!({"ProdNum": "HVAC-CAP-45", "Qty": 1, "EstimatedDelivery": "2026-12-03T12:00:00.000Z"}))]
pub struct RequiredPart {
    #[schema(rename = "ProdNum")]
    prod_num: String,
    /// A decimal quantity (the platform's own example spells it `"Qty:"`, accepted too).
    #[schema(rename = "Qty")]
    qty: Option<f64>,
    #[schema(rename = "EstimatedDelivery", format = DateTime)]
    estimated_delivery: Option<String>,
    #[schema(rename = "PartStatus")]
    part_status: Option<String>,
    #[schema(rename = "Price")]
    price: Option<f64>,
}

/// The Appointment Search object (`POST .../Appointments/OpenSlots`): what the follow-up needs
/// and when the customer can be there. Properties left out are taken from the original order.
#[derive(ToSchema)]
#[schema(example = json!({"OriginalOrderNum": "DEMO-20261130-tech01-1",
    "TimeConstraints": [{"Type": "1002", "Period": {"Start": "2026-12-02T14:00:00.000Z", "End": "2026-12-05T02:00:00.000Z"}}]}))]
pub(crate) struct AppointmentSearch {
    /// The order followed up; required for a technician.
    #[schema(rename = "OriginalOrderNum")]
    original_order_num: Option<String>,
    /// The new order's type (default: the original's).
    #[schema(rename = "OrderType")]
    order_type: Option<String>,
    /// The technician of the original order (preferred by the built-in scheduler).
    #[schema(rename = "UserName")]
    user_name: Option<String>,
    /// Customer availability (`1002`, `1003`).
    #[schema(rename = "TimeConstraints")]
    time_constraints: Option<Vec<TimeConstraint>>,
    #[schema(rename = "RequiredParts")]
    required_parts: Option<Vec<RequiredPart>>,
    #[schema(rename = "Account", value_type = Option<Object>)]
    account: Option<Value>,
    #[schema(rename = "Location", value_type = Option<Object>)]
    location: Option<Value>,
    #[schema(rename = "Assets", value_type = Option<Vec<Object>>)]
    assets: Option<Value>,
}

/// The Book Job object (`POST .../WorkOrder/{WorkOrderID}/Followup`): the Appointment Search
/// object with the chosen slot, a `1001` time constraint as offered.
#[derive(ToSchema)]
#[schema(example = json!({"TimeConstraints": [{"Type": "1001",
    "Period": {"Start": "2026-12-04T14:00:00.000Z", "End": "2026-12-04T18:00:00.000Z"}}]}))]
pub struct BookJob {
    /// The chosen slot (one `1001` item), and customer availability.
    #[schema(rename = "TimeConstraints")]
    time_constraints: Vec<TimeConstraint>,
    #[schema(rename = "OriginalOrderNum")]
    original_order_num: Option<String>,
    #[schema(rename = "OrderType")]
    order_type: Option<String>,
    #[schema(rename = "UserName")]
    user_name: Option<String>,
    #[schema(rename = "RequiredParts")]
    required_parts: Option<Vec<RequiredPart>>,
    #[schema(rename = "Account", value_type = Option<Object>)]
    account: Option<Value>,
    #[schema(rename = "Location", value_type = Option<Object>)]
    location: Option<Value>,
    #[schema(rename = "Assets", value_type = Option<Vec<Object>>)]
    assets: Option<Value>,
}

/// The open windows for a follow-up.
#[derive(ToSchema)]
#[schema(example = json!({"StatusMsg": "", "TimeConstraints": [{"ID": "CHI-C:20261204T1400Z",
    "Desc": "Fri 4 Dec, 08:00-12:00", "Type": "1001",
    "Period": {"Start": "2026-12-04T14:00:00.000Z", "End": "2026-12-04T18:00:00.000Z"}}]}))]
pub(crate) struct OpenSlotsAnswer {
    #[schema(rename = "StatusMsg")]
    status_msg: String,
    /// The windows offered, best first (`1001`).
    #[schema(rename = "TimeConstraints")]
    time_constraints: Vec<TimeConstraint>,
}

/// A booked follow-up: the new order and its part orders.
#[derive(ToSchema)]
#[schema(example = json!({"OrderNum": "DEMO-20261130-tech01-1-F077DE5", "OrderedParts": []}))]
pub(crate) struct BookAnswer {
    #[schema(rename = "OrderNum")]
    order_num: String,
    #[schema(rename = "OrderedParts", value_type = Vec<Object>)]
    ordered_parts: Vec<Value>,
}

/// One booking recorded for an original order.
#[derive(ToSchema)]
pub struct FollowupRecord {
    #[schema(rename = "OriginalOrderNum")]
    original_order_num: String,
    /// The new order (absent while the booking's outcome is unknown).
    #[schema(rename = "OrderNum")]
    order_num: Option<String>,
    #[schema(rename = "UserName")]
    user_name: Option<String>,
    #[schema(rename = "BookedAt", format = DateTime)]
    booked_at: Option<String>,
    /// `builtin` or `passthrough`.
    #[schema(rename = "Scheduler")]
    scheduler: Option<String>,
    /// A pass-through endpoint's `host[:port]`.
    #[schema(rename = "EndpointHost")]
    endpoint_host: Option<String>,
    #[schema(rename = "Slot")]
    slot: Option<Period>,
    #[schema(rename = "StatusCode")]
    status_code: Option<i64>,
    /// The answer as it was given.
    #[schema(rename = "Answer", value_type = Option<Object>)]
    answer: Option<Value>,
}

#[derive(ToSchema)]
#[schema(example = json!({"Followups": [{"OriginalOrderNum": "DEMO-20261130-tech01-1",
    "OrderNum": "DEMO-20261130-tech01-1-F077DE5", "UserName": "tech01", "BookedAt": "2026-11-30T13:38:06.581Z",
    "Scheduler": "builtin", "EndpointHost": null, "StatusCode": 200,
    "Slot": {"Start": "2026-12-04T14:00:00.000Z", "End": "2026-12-04T18:00:00.000Z"},
    "Answer": {"OrderNum": "DEMO-20261130-tech01-1-F077DE5", "OrderedParts": []}}]}))]
pub(crate) struct FollowupList {
    #[schema(rename = "Followups")]
    followups: Vec<FollowupRecord>,
}

/// A work order. Revisit stores the whole object and returns every property it was given; those
/// listed are the ones it reads.
#[derive(ToSchema)]
#[schema(example = json!({"OrderNum": "DEMO-20261130-tech01-1", "OrderType": "MAINT", "OrderStatus": 7,
    "UserName": "tech01", "Description": "Routine maintenance", "PlannedStartDate": "2026-11-30T14:00:00.000Z",
    "PlannedEndDate": "2026-11-30T14:45:00.000Z", "PlannedDur": 45, "DispatchStatus": 3,
    "TimeConstraints": [{"ID": "CHI-C:20261130T1400Z", "Desc": "Mon 30 Nov, 08:00-12:00", "Type": "1001",
        "Period": {"Start": "2026-11-30T14:00:00.000Z", "End": "2026-11-30T18:00:00.000Z"}}],
    "Account": {"AccountNum": "ACCT-1-1", "AccountType": "1002", "Name": "Customer 1 of tech01"},
    "Location": {"LocationNum": "LOC-DEMO-20261130-tech01-1", "ServiceAreaID": "CHI-C", "Name": "Residence 1",
        "Address": {"AddrLine1": "1423 N Broadway", "City": "Chicago", "Region": "IL", "Country": "US",
            "Lat": "41.939059", "Lon": "-87.620612"}}}))]
pub struct WorkOrder {
    /// The number, unique in the entity (the path's, when absent).
    #[schema(rename = "OrderNum")]
    order_num: Option<String>,
    #[schema(rename = "OrderType")]
    order_type: Option<String>,
    /// A status code of category 10: 1 new ... 7 onsite, 4096 closed complete, 4097 closed
    /// incomplete, 1001 cancelled.
    #[schema(rename = "OrderStatus")]
    order_status: Option<i64>,
    /// The reason of a Closed Incomplete order (category 15 or 16).
    #[schema(rename = "ReasonCode")]
    reason_code: Option<String>,
    /// The technician assigned.
    #[schema(rename = "UserName")]
    user_name: Option<String>,
    #[schema(rename = "Description")]
    description: Option<String>,
    #[schema(rename = "PlannedStartDate", format = DateTime)]
    planned_start_date: Option<String>,
    #[schema(rename = "PlannedEndDate", format = DateTime)]
    planned_end_date: Option<String>,
    /// Minutes.
    #[schema(rename = "PlannedDur")]
    planned_dur: Option<f64>,
    #[schema(rename = "OrderDate", format = DateTime)]
    order_date: Option<String>,
    /// The rule that allows a follow-up.
    #[schema(rename = "CanScheduleFollowup")]
    can_schedule_followup: Option<bool>,
    /// The order this one follows up.
    #[schema(rename = "OriginalOrderNum")]
    original_order_num: Option<String>,
    /// A dispatcher's pin: re-optimisation leaves the visit where it is.
    #[schema(rename = "Pinned")]
    pinned: Option<bool>,
    /// The promised arrival window (`1001`).
    #[schema(rename = "TimeConstraints")]
    time_constraints: Option<Vec<TimeConstraint>>,
    #[schema(rename = "RequiredParts")]
    required_parts: Option<Vec<RequiredPart>>,
    #[schema(rename = "Account", value_type = Option<Object>)]
    account: Option<Value>,
    /// `ServiceAreaID` (the work center) and `Address` with `Lat`/`Lon`.
    #[schema(rename = "Location", value_type = Option<Object>)]
    location: Option<Value>,
    #[schema(rename = "Assets", value_type = Option<Vec<Object>>)]
    assets: Option<Value>,
}

/// A page of the entity's work orders, by planned start.
#[derive(ToSchema)]
pub(crate) struct WorkOrderList {
    #[schema(rename = "WorkOrders")]
    work_orders: Vec<WorkOrder>,
    #[schema(rename = "Total")]
    total: i64,
    #[schema(rename = "Limit")]
    limit: i64,
    #[schema(rename = "Offset")]
    offset: i64,
}

/// The scheduler endpoints of an entity.
#[derive(ToSchema)]
pub struct RestApi {
    /// `builtin:` or an https URI (the Appointment Search interface).
    #[schema(rename = "SearchAppts")]
    search_appts: Option<String>,
    /// `builtin:` or an https URI with `{0}` (the Book Job interface).
    #[schema(rename = "BookJob")]
    book_job: Option<String>,
    /// Pass-through deadline, 100 to 120000 ms.
    #[schema(rename = "TimeoutMs")]
    timeout_ms: Option<i64>,
}

/// The entity configuration (`mobility`); other properties are kept as given.
#[derive(ToSchema)]
#[schema(example = json!({"RestApi": {"SearchAppts": "builtin:", "BookJob": "builtin:"},
    "WorkOrderRules": {"Default": {"CanScheduleFollowup": true}}}))]
pub struct SysConfig {
    #[schema(rename = "RestApi")]
    rest_api: Option<RestApi>,
    /// Rule defaults by order type: `{"Default": {"CanScheduleFollowup": false}, "REPAIR": {...}}`.
    #[schema(rename = "WorkOrderRules", value_type = Option<Object>)]
    work_order_rules: Option<Value>,
    /// `{"AllowAnyReason": true}` lets any closing reason ask for a follow-up.
    #[schema(rename = "FollowUp", value_type = Option<Object>)]
    follow_up: Option<Value>,
    #[schema(rename = "PartsOrdering", value_type = Option<Object>)]
    parts_ordering: Option<Value>,
    #[schema(rename = "ExportNotifications", value_type = Option<Object>)]
    export_notifications: Option<Value>,
}

/// The objects of one kind of the scheduler's set-up.
#[derive(ToSchema)]
pub(crate) struct SchedItems {
    #[schema(rename = "Items", value_type = Vec<Object>)]
    items: Vec<Value>,
}

/// `/healthz` and `/readyz`.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub(crate) struct Health {
    status: String,
}

/// `POST /scheduling/v1/reoptimize`.
#[derive(ToSchema)]
#[schema(example = json!({"ServiceAreaID": "CHI-N", "From": "2026-12-01", "Days": 7, "DryRun": true}))]
pub(crate) struct ReoptimizeRequest {
    #[schema(rename = "ServiceAreaID")]
    service_area_id: String,
    /// The first date, `YYYY-MM-DD` (default: today in the work center's zone).
    #[schema(rename = "From")]
    from: Option<String>,
    #[schema(rename = "Days", minimum = 1, maximum = 28)]
    days: Option<i64>,
    #[schema(rename = "DryRun")]
    dry_run: Option<bool>,
    #[schema(rename = "Seed", minimum = 1)]
    seed: Option<u64>,
    #[schema(rename = "Iterations", minimum = 1, maximum = 200000)]
    iterations: Option<i64>,
}

/// A work center of the built-in scheduler.
#[derive(ToSchema, serde::Serialize)]
#[schema(example = json!({"ServiceAreaID": "CHI-N", "Name": "Chicago North Side", "TimeZone": "America/Chicago", "Lat": 41.9484, "Lon": -87.6553}))]
pub(crate) struct WorkCenterObject {
    #[serde(rename = "ServiceAreaID")]
    service_area_id: String,
    #[serde(rename = "Name")]
    name: String,
    /// An IANA zone: the customers' local time.
    #[serde(rename = "TimeZone")]
    time_zone: String,
    #[serde(rename = "Lat")]
    lat: f64,
    #[serde(rename = "Lon")]
    lon: f64,
    /// Windows, horizon, lead time, travel model (docs/scheduler.md).
    #[serde(rename = "Policy")]
    #[schema(value_type = Option<Object>)]
    policy: Option<Value>,
}

/// A technician of the built-in scheduler (its `UserName` is its login's).
#[derive(ToSchema, serde::Serialize)]
#[schema(example = json!({"UserName": "tech01", "Name": "Technician 01", "ServiceAreaIDs": ["CHI-C"],
    "Skills": [{"Code": "GEN", "Level": 2}], "Home": {"Lat": 41.9, "Lon": -87.63},
    "Shifts": [{"Days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"], "Start": "07:30", "End": "20:30"}]}))]
pub(crate) struct TechnicianObject {
    #[serde(rename = "UserName")]
    user_name: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "ServiceAreaIDs")]
    service_area_ids: Vec<String>,
    #[serde(rename = "Skills")]
    #[schema(value_type = Vec<Object>)]
    skills: Vec<Value>,
    #[serde(rename = "Home")]
    #[schema(value_type = Object)]
    home: Value,
    #[serde(rename = "Shifts")]
    #[schema(value_type = Vec<Object>)]
    shifts: Vec<Value>,
}

/// An order type of the built-in scheduler.
#[derive(ToSchema, serde::Serialize)]
#[schema(example = json!({"OrderType": "REPAIR", "Desc": "HVAC repair", "DurationMinutes": 60, "Skills": [{"Code": "HVAC", "Level": 1}]}))]
pub(crate) struct OrderTypeObject {
    #[serde(rename = "OrderType")]
    order_type: String,
    #[serde(rename = "Desc")]
    desc: Option<String>,
    #[serde(rename = "DurationMinutes")]
    duration_minutes: i64,
    #[serde(rename = "Skills")]
    #[schema(value_type = Option<Vec<Object>>)]
    skills: Option<Vec<Value>>,
}

/// One object of the scheduler's set-up: a work center, a technician or an order type, as the
/// path's `Kind` says.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub(crate) enum SchedObject {
    WorkCenter(WorkCenterObject),
    Technician(TechnicianObject),
    OrderType(OrderTypeObject),
}
