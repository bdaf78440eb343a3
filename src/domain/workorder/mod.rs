//! Work orders (docs/api.md §5). A [`WorkOrder`] is typed where Revisit reads or writes it and
//! carries every other property in a flattened `extra` map, so a client reads back the JSON value
//! it wrote: unknown properties at every level, known ones given as `null`, `Lat`/`Lon` as strings
//! or as numbers; only times change, to the canonical `2026-12-01T08:00:00.000Z`, and the
//! platform's `"Qty:"` typo, to `Qty`.
//!
//! - `validate`: the type check of a wire object, every error with its JSON path;
//! - this file: the typed order, and its conversion from and to the wire object;
//! - `rules`: status transitions and the preconditions of a follow-up;
//! - `index`: the properties the store indexes;
//! - `patch`: the PATCH and POST (update) merges.
//!
//! A wire object is converted only once validated, and the conversion cannot fail: a known
//! property is typed when its value has its documented shape, and whatever else validation lets
//! through (`null`, or anything in a TimeConstraints item marked `"Delete": true`) stays in the
//! `extra` map of its object as it came. A key is therefore either typed or in `extra`, never both.
//!
//! Why conversion is not a derived `Deserialize`: it would stop at the first error, turn a `null`
//! known property into `None` (the `null` would not come back), and `#[serde(flatten)]` makes
//! serde buffer every property before deserializing it. Serializing with a flattened map has none
//! of these problems, so the wire object is the derived `Serialize` of the typed order.

mod index;
mod patch;
mod rules;
mod validate;

use jiff::Timestamp;
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

pub(crate) use patch::{apply_patch, apply_update};
pub(crate) use rules::check_followup_allowed;
pub(crate) use validate::Checker;

use super::{
    DomainError, WorkOrderNum,
    status::OrderStatus,
    time::{self, Time},
};

/// A validated work order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkOrder {
    order_num: WorkOrderNum,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_type: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "status_code"
    )]
    order_status: Option<OrderStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_schedule_followup: Option<bool>,
    /// [Revisit] A dispatcher pinned the visit: the re-optimiser leaves it where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_order_num: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_start_date: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_end_date: Option<Time>,
    /// Minutes, 0 to 10080.
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_dur: Option<u32>,
    /// 0 none, 1 scheduled, 2 assigned, 3 dispatched.
    #[serde(skip_serializing_if = "Option::is_none")]
    dispatch_status: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_date: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_constraints: Option<Vec<Item<TimeConstraint>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Account>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_parts: Option<Vec<Item<RequiredPart>>>,
    /// Every other property, and known ones given as `null`.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// An item of a collection: typed when it is an object, else kept as given (a `null` item passes
/// validation).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Item<T> {
    Object(T),
    Other(Value),
}

impl<T> Item<T> {
    pub fn object(&self) -> Option<&T> {
        match self {
            Item::Object(t) => Some(t),
            Item::Other(_) => None,
        }
    }
}

/// A TimeConstraints item (§6.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TimeConstraint {
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ConstraintType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<ConstraintPeriod>,
    /// PATCH's mark of an item to remove; an item stored with it is kept as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TimeConstraint {
    pub(crate) fn is_deleted(&self) -> bool {
        self.delete == Some(true)
    }
}

/// The `Period` of a TimeConstraints item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConstraintPeriod {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a TimeConstraints item says (the "Time Constraints" system category).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConstraintKind {
    /// 1001: an appointment window, offered or booked.
    Window,
    /// 1002: the customer is available.
    Available,
    /// 1003: the customer is not available.
    Unavailable,
}

impl ConstraintKind {
    fn from_code(code: &str) -> Option<Self> {
        match code {
            "1001" => Some(Self::Window),
            "1002" => Some(Self::Available),
            "1003" => Some(Self::Unavailable),
            _ => None,
        }
    }
    pub fn code(self) -> u16 {
        match self {
            Self::Window => 1001,
            Self::Available => 1002,
            Self::Unavailable => 1003,
        }
    }
}

/// A TimeConstraints `Type`: a string code on the platform, a number accepted; written back as
/// it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConstraintType {
    pub kind: ConstraintKind,
    pub as_number: bool,
}

impl ConstraintType {
    fn from_wire(v: &Value) -> Option<Self> {
        let (kind, as_number) = match v {
            Value::String(s) => (ConstraintKind::from_code(s.as_str()), false),
            Value::Number(n) => (ConstraintKind::from_code(&n.as_i64()?.to_string()), true),
            _ => return None,
        };
        Some(Self {
            kind: kind?,
            as_number,
        })
    }
}

impl Serialize for ConstraintType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.as_number {
            s.serialize_u16(self.kind.code())
        } else {
            s.collect_str(&self.kind.code())
        }
    }
}

/// `Account` (§7.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_num: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Location` (§7.2): the service address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Location {
    /// The work center.
    #[serde(rename = "ServiceAreaID", skip_serializing_if = "Option::is_none")]
    pub service_area_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_num: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Location.Address`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<Coordinate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<Coordinate>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Decimal degrees: a string on the platform, a number accepted; written back as it came.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Coordinate {
    Text(String),
    Number(Number),
}

impl Coordinate {
    /// The degrees, if any (an empty string has none).
    pub(crate) fn degrees(&self) -> Option<f64> {
        match self {
            Coordinate::Text(s) => s.trim().parse().ok(),
            Coordinate::Number(n) => n.as_f64(),
        }
    }
}

/// A `RequiredParts` item (§7.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequiredPart {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prod_num: Option<String>,
    /// A decimal, kept as the JSON number it came as (`2` stays `2`, `2.0` stays `2.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qty: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_delivery: Option<Time>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The properties a follow-up order takes over from its original (docs/scheduler.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carried {
    Account,
    Location,
    Assets,
    FlexAttrs,
    FlexForms,
    RequiredParts,
    Description,
    Priority,
}

impl Carried {
    /// The property's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Account => "Account",
            Self::Location => "Location",
            Self::Assets => "Assets",
            Self::FlexAttrs => "FlexAttrs",
            Self::FlexForms => "FlexForms",
            Self::RequiredParts => "RequiredParts",
            Self::Description => "Description",
            Self::Priority => "Priority",
        }
    }
}

impl WorkOrder {
    /// Type-checks a work order body (every error, with its JSON path) and types it; the number
    /// comes from the path and must match `OrderNum` if the body has one.
    pub fn parse(num: &WorkOrderNum, m: Map<String, Value>) -> Result<Self, DomainError> {
        validate::work_order(Checker::default(), num, &m)?;
        Ok(Self::from_valid(num, m))
    }

    /// [`Self::parse`] for an order as the store holds it: a time an earlier version let in and
    /// this one refuses (outside years 0001 to 9999) stays as stored, untyped, so the order still
    /// reads; writing it back as it is is refused.
    pub(crate) fn from_stored(
        num: &WorkOrderNum,
        m: Map<String, Value>,
    ) -> Result<Self, DomainError> {
        validate::work_order(Checker::stored(), num, &m)?;
        Ok(Self::from_valid(num, m))
    }

    /// The conversion of a validated body: moves the typed properties out, leaves the rest.
    fn from_valid(num: &WorkOrderNum, m: Map<String, Value>) -> Self {
        let mut r = Rest(m);
        r.0.remove("OrderNum");
        WorkOrder {
            order_num: num.clone(),
            order_type: r.string("OrderType"),
            order_status: r.take("OrderStatus", |v| {
                v.as_i64().and_then(OrderStatus::from_code).ok_or(v)
            }),
            reason_code: r.string("ReasonCode"),
            can_schedule_followup: r.boolean("CanScheduleFollowup"),
            pinned: r.boolean("Pinned"),
            original_order_num: r.string("OriginalOrderNum"),
            user_name: r.string("UserName"),
            description: r.string("Description"),
            notes: r.string("Notes"),
            planned_start_date: r.time("PlannedStartDate"),
            planned_end_date: r.time("PlannedEndDate"),
            planned_dur: r.integer("PlannedDur"),
            dispatch_status: r.integer("DispatchStatus"),
            order_date: r.time("OrderDate"),
            time_constraints: r.items("TimeConstraints"),
            account: r.object("Account"),
            location: r.object("Location"),
            required_parts: r.items("RequiredParts"),
            extra: r.0,
        }
    }

    /// The wire object.
    pub fn to_value(&self) -> Value {
        // Serializing into a `Value` fails only on a map key that is not a string, or on a
        // `Serialize` impl that reports an error; there is neither here.
        serde_json::to_value(self).expect("a work order serializes to a JSON object")
    }

    /// The wire object.
    pub fn into_value(self) -> Value {
        self.to_value()
    }

    /// The wire object, as a map (for the merges of `patch`).
    pub(super) fn to_map(&self) -> Map<String, Value> {
        match self.to_value() {
            Value::Object(m) => m,
            _ => unreachable!("a struct serializes to a JSON object"),
        }
    }

    pub fn order_num(&self) -> &WorkOrderNum {
        &self.order_num
    }
    pub fn order_type(&self) -> Option<&str> {
        self.order_type.as_deref()
    }
    pub fn status(&self) -> Option<OrderStatus> {
        self.order_status
    }
    pub(crate) fn reason_code(&self) -> Option<&str> {
        self.reason_code.as_deref()
    }
    pub fn user_name(&self) -> Option<&str> {
        self.user_name.as_deref()
    }
    pub fn original_order_num(&self) -> Option<&str> {
        self.original_order_num.as_deref()
    }
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// Whether a dispatcher pinned the visit (`Pinned`: the re-optimiser does not move it).
    pub fn pinned(&self) -> bool {
        self.pinned == Some(true)
    }

    /// The order's own `CanScheduleFollowup` (the rule itself is [`Self::can_schedule_followup`]).
    #[cfg(test)]
    pub(crate) fn followup_rule(&self) -> Option<bool> {
        self.can_schedule_followup
    }
    /// The order's own `CanScheduleFollowup` as given: `None` if absent, `Some(None)` if `null`.
    pub(crate) fn followup_rule_as_given(&self) -> Option<Option<bool>> {
        match self.can_schedule_followup {
            Some(b) => Some(Some(b)),
            None => self
                .extra
                .contains_key("CanScheduleFollowup")
                .then_some(None),
        }
    }
    pub fn planned_start(&self) -> Option<Time> {
        self.planned_start_date
    }
    /// `PlannedDur`, in minutes.
    pub(crate) fn planned_dur(&self) -> Option<u32> {
        self.planned_dur
    }
    #[cfg(test)]
    pub(crate) fn dispatch_status(&self) -> Option<u8> {
        self.dispatch_status
    }
    #[cfg(test)]
    pub(crate) fn order_date(&self) -> Option<Time> {
        self.order_date
    }
    /// The TimeConstraints items that are objects.
    pub(crate) fn time_constraints(&self) -> impl Iterator<Item = &TimeConstraint> {
        self.time_constraints
            .iter()
            .flatten()
            .filter_map(Item::object)
    }
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
    /// `Location.ServiceAreaID`: the work center.
    pub fn service_area_id(&self) -> Option<&str> {
        self.location.as_ref()?.service_area_id.as_deref()
    }
    /// `Location.Address.Lat` and `Lon` in decimal degrees, when both are given.
    pub(crate) fn coordinates(&self) -> Option<(f64, f64)> {
        let a = self.address()?;
        Some((a.lat.as_ref()?.degrees()?, a.lon.as_ref()?.degrees()?))
    }
    fn address(&self) -> Option<&Address> {
        self.location.as_ref()?.address.as_ref()
    }
    /// The RequiredParts items that are objects.
    pub fn required_parts(&self) -> impl Iterator<Item = &RequiredPart> {
        self.required_parts
            .iter()
            .flatten()
            .filter_map(Item::object)
    }

    /// The wire value of a property a follow-up takes over, `null` included.
    pub(crate) fn carried(&self, p: Carried) -> Option<Value> {
        fn wire(v: &impl Serialize) -> Option<Value> {
            serde_json::to_value(v).ok()
        }
        let typed = match p {
            Carried::Account => self.account.as_ref().and_then(wire),
            Carried::Location => self.location.as_ref().and_then(wire),
            Carried::RequiredParts => self.required_parts.as_ref().and_then(wire),
            Carried::Description => self.description.as_ref().map(|d| Value::from(d.as_str())),
            Carried::Assets | Carried::FlexAttrs | Carried::FlexForms | Carried::Priority => None,
        };
        typed.or_else(|| self.extra.get(p.name()).cloned())
    }

    /// The same order with a new planned visit (the scheduler moved it later in its window).
    pub fn moved(mut self, start: Timestamp, end: Timestamp) -> WorkOrder {
        self.planned_start_date = Some(Time::from(start));
        self.planned_end_date = Some(Time::from(end));
        // A `null` they had is replaced.
        self.extra.remove("PlannedStartDate");
        self.extra.remove("PlannedEndDate");
        self
    }

    /// The same order given to `user` for a visit from `start` to `end` (a booking placed it).
    pub fn assigned(mut self, user: &str, start: Timestamp, end: Timestamp) -> WorkOrder {
        self.user_name = Some(user.to_string());
        self.extra.remove("UserName");
        self.moved(start, end)
    }
}

/// Rewrites the known time properties to the canonical wire form and the `"Qty:"` typo to `Qty`
/// (for wire objects kept as JSON, such as the Book Job; a `WorkOrder` does both when it is
/// typed).
pub(crate) fn normalize(m: &mut Map<String, Value>) {
    fn canon(v: &mut Value) {
        if let Value::String(s) = v
            && let Some(c) = time::canonical(s)
        {
            *s = c;
        }
    }
    for k in ["PlannedStartDate", "PlannedEndDate", "OrderDate"] {
        if let Some(v) = m.get_mut(k) {
            canon(v);
        }
    }
    if let Some(Value::Array(tcs)) = m.get_mut("TimeConstraints") {
        for tc in tcs {
            if let Some(Value::Object(p)) = tc.get_mut("Period") {
                for k in ["Start", "End"] {
                    if let Some(v) = p.get_mut(k) {
                        canon(v);
                    }
                }
            }
        }
    }
    if let Some(Value::Array(parts)) = m.get_mut("RequiredParts") {
        for part in parts {
            if let Some(obj) = part.as_object_mut() {
                fix_qty_typo(obj);
                if let Some(v) = obj.get_mut("EstimatedDelivery") {
                    canon(v);
                }
            }
        }
    }
}

/// The platform's published example spells `Qty` as `"Qty:"`: read it as `Qty`, unless both are
/// given (then `Qty`, which validation checked, wins).
fn fix_qty_typo(part: &mut Map<String, Value>) {
    if let Some(q) = part.remove("Qty:") {
        part.entry("Qty").or_insert(q);
    }
}

/// A validated JSON object whose typed properties are being moved out.
struct Rest(Map<String, Value>);

impl Rest {
    /// Moves `key` out if `typed` accepts its value; else leaves it where it was.
    fn take<T>(&mut self, key: &str, typed: impl FnOnce(Value) -> Result<T, Value>) -> Option<T> {
        let (k, v) = self.0.remove_entry(key)?;
        match typed(v) {
            Ok(t) => Some(t),
            Err(v) => {
                self.0.insert(k, v);
                None
            }
        }
    }
    fn string(&mut self, key: &str) -> Option<String> {
        self.take(key, |v| match v {
            Value::String(s) => Ok(s),
            v => Err(v),
        })
    }
    fn boolean(&mut self, key: &str) -> Option<bool> {
        self.take(key, |v| v.as_bool().ok_or(v))
    }
    fn integer<T: TryFrom<i64>>(&mut self, key: &str) -> Option<T> {
        self.take(key, |v| {
            v.as_i64().and_then(|n| T::try_from(n).ok()).ok_or(v)
        })
    }
    fn number(&mut self, key: &str) -> Option<Number> {
        self.take(key, |v| match v {
            Value::Number(n) => Ok(n),
            v => Err(v),
        })
    }
    fn time(&mut self, key: &str) -> Option<Time> {
        self.take(key, |v| {
            v.as_str().and_then(|s| Time::parse(s).ok()).ok_or(v)
        })
    }
    fn coordinate(&mut self, key: &str) -> Option<Coordinate> {
        self.take(key, |v| match v {
            Value::String(s) => Ok(Coordinate::Text(s)),
            Value::Number(n) => Ok(Coordinate::Number(n)),
            v => Err(v),
        })
    }
    fn object<T: FromObject>(&mut self, key: &str) -> Option<T> {
        self.take(key, |v| match v {
            Value::Object(m) => Ok(T::from_object(m)),
            v => Err(v),
        })
    }
    fn items<T: FromObject>(&mut self, key: &str) -> Option<Vec<Item<T>>> {
        self.take(key, |v| match v {
            Value::Array(items) => Ok(items
                .into_iter()
                .map(|it| match it {
                    Value::Object(m) => Item::Object(T::from_object(m)),
                    other => Item::Other(other),
                })
                .collect()),
            v => Err(v),
        })
    }
}

/// The conversion of a validated JSON object into a typed part of a work order.
trait FromObject {
    fn from_object(m: Map<String, Value>) -> Self;
}

impl FromObject for TimeConstraint {
    fn from_object(m: Map<String, Value>) -> Self {
        let mut r = Rest(m);
        TimeConstraint {
            id: r.string("ID"),
            desc: r.string("Desc"),
            kind: r.take("Type", |v| ConstraintType::from_wire(&v).ok_or(v)),
            period: r.object("Period"),
            delete: r.boolean("Delete"),
            extra: r.0,
        }
    }
}

impl FromObject for ConstraintPeriod {
    fn from_object(m: Map<String, Value>) -> Self {
        let mut r = Rest(m);
        ConstraintPeriod {
            start: r.time("Start"),
            end: r.time("End"),
            extra: r.0,
        }
    }
}

impl FromObject for Account {
    fn from_object(m: Map<String, Value>) -> Self {
        let mut r = Rest(m);
        Account {
            account_num: r.string("AccountNum"),
            extra: r.0,
        }
    }
}

impl FromObject for Location {
    fn from_object(m: Map<String, Value>) -> Self {
        let mut r = Rest(m);
        Location {
            service_area_id: r.string("ServiceAreaID"),
            location_num: r.string("LocationNum"),
            address: r.object("Address"),
            extra: r.0,
        }
    }
}

impl FromObject for Address {
    fn from_object(m: Map<String, Value>) -> Self {
        let mut r = Rest(m);
        Address {
            lat: r.coordinate("Lat"),
            lon: r.coordinate("Lon"),
            extra: r.0,
        }
    }
}

impl FromObject for RequiredPart {
    fn from_object(mut m: Map<String, Value>) -> Self {
        fix_qty_typo(&mut m);
        let mut r = Rest(m);
        RequiredPart {
            prod_num: r.string("ProdNum"),
            qty: r.number("Qty"),
            estimated_delivery: r.time("EstimatedDelivery"),
            extra: r.0,
        }
    }
}

fn status_code<S: Serializer>(st: &Option<OrderStatus>, s: S) -> Result<S::Ok, S::Error> {
    match st {
        Some(st) => s.serialize_i64(st.code()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod testing {
    use serde_json::Value;

    use super::WorkOrder;
    use crate::domain::{
        DomainError, WorkOrderNum,
        category::{FOLLOWUP_REASONS, NO_FOLLOWUP_REASONS, Reasons, default_category},
    };

    pub(crate) fn reasons() -> Reasons {
        Reasons {
            followup: default_category(FOLLOWUP_REASONS).unwrap(),
            no_followup: default_category(NO_FOLLOWUP_REASONS).unwrap(),
        }
    }
    pub fn wo(v: Value) -> Result<WorkOrder, DomainError> {
        WorkOrder::parse(
            &WorkOrderNum::parse("WO-1").unwrap(),
            v.as_object().unwrap().clone(),
        )
    }
    pub fn paths(e: DomainError) -> Vec<String> {
        match e {
            DomainError::Invalid(p) => p.into_iter().map(|p| p.path).collect(),
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testing::wo;
    use super::*;

    /// What a client reads back: the body with its `OrderNum`.
    fn read_back(body: Value) -> Value {
        let order = wo(body).unwrap();
        let wire = order.to_value();
        // The store keeps the JSON text and types it again when it reads it.
        let text = serde_json::to_string(&order).unwrap();
        let again = wo(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(again, order, "read back from its JSON text");
        assert_eq!(again.to_value(), wire);
        wire
    }

    fn with_num(mut v: Value) -> Value {
        v["OrderNum"] = json!("WO-1");
        v
    }

    #[test]
    fn unknown_properties_are_kept_and_times_made_canonical() {
        let order = wo(
            json!({"Custom": {"a": [1]}, "PlannedStartDate": "2026-12-01T09:00:00+01:00",
            "RequiredParts": [{"ProdNum": "P", "Qty:": 2}]}),
        )
        .unwrap();
        let w = order.to_value();
        assert_eq!(w.get("Custom"), Some(&json!({"a": [1]})));
        assert_eq!(
            w.get("PlannedStartDate"),
            Some(&json!("2026-12-01T08:00:00.000Z"))
        );
        assert_eq!(
            w.get("RequiredParts"),
            Some(&json!([{"ProdNum": "P", "Qty": 2}]))
        );
        assert_eq!(order.order_num(), "WO-1");
    }

    #[test]
    fn unknown_properties_round_trip_at_every_level() {
        let body = json!({
            "OrderType": "REPAIR", "Custom": {"Nested": [1, {"Deep": true}]}, "Priority": 2,
            "Assets": [{"AssetNum": "A1", "Mine": [null]}], "FlexAttrs": {"F": {"A": ["x"]}},
            "Account": {"AccountNum": "C1", "AccountType": 1002, "Tier": "gold"},
            "Location": {"ServiceAreaID": "N", "Gate": {"Code": "1234"},
                "Address": {"Lat": "41.95", "Lon": "-87.65", "City": "Chicago", "Door": "red"}},
            "TimeConstraints": [{"ID": "a", "Type": "1001", "Source": {"crm": 1},
                "Period": {"Start": "2026-12-01T08:00:00.000Z", "End": "2026-12-01T12:00:00.000Z", "Zone": "CT"}}],
            "RequiredParts": [{"ProdNum": "P1", "Qty": 2, "Price": 9.5, "Bin": "A3",
                "ProdAttrs": {"Desc": "valve", "Color": "red"}}],
        });
        assert_eq!(read_back(body.clone()), with_num(body));
    }

    #[test]
    fn known_properties_given_as_null_come_back_as_null() {
        let body = json!({
            "OrderType": null, "OrderStatus": null, "ReasonCode": null, "CanScheduleFollowup": null,
            "OriginalOrderNum": null, "UserName": null, "Description": null, "Notes": null,
            "PlannedStartDate": null, "PlannedEndDate": null, "PlannedDur": null,
            "DispatchStatus": null, "OrderDate": null,
            "Account": {"AccountNum": null},
            "Location": {"ServiceAreaID": null, "LocationNum": null, "Address": {"Lat": null, "Lon": null}},
            "TimeConstraints": [null, {"ID": null, "Desc": null, "Type": "1002", "Delete": null,
                "Period": {"Start": null, "End": null}}],
            "RequiredParts": [null, {"ProdNum": null, "Qty": null, "EstimatedDelivery": null}],
        });
        let order = wo(body.clone()).unwrap();
        assert_eq!(order.order_type(), None);
        assert_eq!(order.status(), None);
        assert_eq!(order.followup_rule(), None);
        assert_eq!(order.followup_rule_as_given(), Some(None));
        assert_eq!(order.carried(Carried::Description), Some(Value::Null));
        assert_eq!(order.coordinates(), None);
        assert_eq!(read_back(body.clone()), with_num(body));
        // Whole objects and collections too.
        let body = json!({"Account": null, "Location": null, "TimeConstraints": null, "RequiredParts": null});
        assert_eq!(read_back(body.clone()), with_num(body));
    }

    #[test]
    fn coordinates_stay_strings_or_numbers_as_given() {
        for (lat, lon) in [
            (json!("41.95"), json!("-87.65")),
            (json!(41.95), json!(-87.65)),
            (json!(" 41.95 "), json!(-88)),
        ] {
            let body = json!({"Location": {"Address": {"Lat": lat, "Lon": lon}}});
            let order = wo(body.clone()).unwrap();
            let (y, x) = order.coordinates().unwrap();
            assert_eq!((y, x.round()), (41.95, -88.0));
            assert_eq!(read_back(body.clone()), with_num(body));
        }
        // An empty string is no coordinate, and stays an empty string.
        let body = json!({"Location": {"Address": {"Lat": "", "Lon": "-87.65"}}});
        let order = wo(body.clone()).unwrap();
        assert_eq!(order.coordinates(), None);
        assert_eq!(order.indexed().lon, Some(-87.65));
        assert_eq!(read_back(body.clone()), with_num(body));
    }

    #[test]
    fn time_constraint_items_keep_their_unknown_members_and_their_type_as_given() {
        let body = json!({"TimeConstraints": [
            {"ID": "a", "Desc": "morning", "Type": 1001, "Mine": true,
             "Period": {"Start": "2026-12-01T09:00:00+01:00", "End": "2026-12-01T12:00:00Z", "Zone": "CT"}},
            {"ID": "b", "Type": "1002", "Period": {"Start": "2026-12-02T08:00:00Z", "End": "2026-12-02T12:00:00Z"}},
            // Only PATCH removes an item marked so; stored, it is kept as given, unchecked.
            {"ID": "c", "Delete": true, "Type": "tomorrow", "Period": "whenever"},
        ]});
        let order = wo(body.clone()).unwrap();
        let tcs: Vec<_> = order.time_constraints().collect();
        assert_eq!(tcs.len(), 3);
        assert_eq!(tcs[0].kind.map(|k| k.kind), Some(ConstraintKind::Window));
        assert_eq!(tcs[0].extra.get("Mine"), Some(&json!(true)));
        assert_eq!(tcs[2].kind, None);
        assert_eq!(tcs[2].extra.get("Type"), Some(&json!("tomorrow")));
        let mut expected = with_num(body.clone());
        expected["TimeConstraints"][0]["Period"]["Start"] = json!("2026-12-01T08:00:00.000Z");
        expected["TimeConstraints"][0]["Period"]["End"] = json!("2026-12-01T12:00:00.000Z");
        expected["TimeConstraints"][1]["Period"]["Start"] = json!("2026-12-02T08:00:00.000Z");
        expected["TimeConstraints"][1]["Period"]["End"] = json!("2026-12-02T12:00:00.000Z");
        assert_eq!(read_back(body), expected);
        assert_eq!(
            order.promised_window().map(|(s, _)| s.to_string()),
            Some("2026-12-01T08:00:00.000Z".to_string())
        );
    }

    #[test]
    fn typed_properties_read_as_their_types() {
        let order = wo(json!({
            "OrderType": "REPAIR", "OrderStatus": 4097, "ReasonCode": "2001", "CanScheduleFollowup": true,
            "OriginalOrderNum": "WO-0", "UserName": "tom", "PlannedDur": 90, "DispatchStatus": 3,
            "PlannedStartDate": "2026-12-01T08:00:00Z", "OrderDate": "2026-11-30T17:00:00Z",
            "Account": {"AccountNum": "C1"},
            "Location": {"ServiceAreaID": "N", "LocationNum": "L1", "Address": {"Lat": "41.9", "Lon": "-87.6"}},
            "RequiredParts": [{"ProdNum": "P1", "Qty": 2, "EstimatedDelivery": "2026-12-01T06:00:00-06:00"}],
        }))
        .unwrap();
        assert_eq!(order.order_type(), Some("REPAIR"));
        assert_eq!(order.status(), Some(OrderStatus::ClosedIncomplete));
        assert_eq!(order.reason_code(), Some("2001"));
        assert_eq!(order.followup_rule(), Some(true));
        assert_eq!(order.original_order_num(), Some("WO-0"));
        assert_eq!(order.user_name(), Some("tom"));
        assert_eq!(order.planned_dur(), Some(90));
        assert_eq!(order.dispatch_status(), Some(3));
        assert_eq!(order.service_area_id(), Some("N"));
        assert_eq!(order.coordinates(), Some((41.9, -87.6)));
        assert_eq!(
            order.account().and_then(|a| a.account_num.as_deref()),
            Some("C1")
        );
        assert_eq!(
            order.location().and_then(|l| l.location_num.as_deref()),
            Some("L1")
        );
        let part = order.required_parts().next().unwrap();
        assert_eq!(part.prod_num.as_deref(), Some("P1"));
        assert_eq!(part.qty.as_ref().and_then(Number::as_f64), Some(2.0));
        assert_eq!(
            part.estimated_delivery.map(|t| t.to_string()).as_deref(),
            Some("2026-12-01T12:00:00.000Z")
        );
        let ix = order.indexed();
        assert_eq!(
            ix.busy_end.map(|t| t.to_string()).as_deref(),
            Some("2026-12-01T09:30:00.000Z")
        );
        assert_eq!(
            order.order_date().map(|t| t.to_string()).as_deref(),
            Some("2026-11-30T17:00:00.000Z")
        );
    }

    #[test]
    fn a_moved_order_keeps_everything_else() {
        let body = json!({"PlannedStartDate": null, "Custom": 1, "PlannedDur": 30});
        let start: Timestamp = "2026-12-01T08:00:00.1239Z".parse().unwrap();
        let end: Timestamp = "2026-12-01T08:30:00Z".parse().unwrap();
        let moved = wo(body).unwrap().moved(start, end);
        assert_eq!(
            moved.to_value(),
            json!({"OrderNum": "WO-1", "Custom": 1, "PlannedDur": 30,
                "PlannedStartDate": "2026-12-01T08:00:00.123Z", "PlannedEndDate": "2026-12-01T08:30:00.000Z"})
        );
        assert_eq!(
            moved.indexed().planned_start.map(Time::as_millis),
            Some(start.as_millisecond())
        );
    }
}
