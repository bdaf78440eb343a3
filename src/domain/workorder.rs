//! Work orders (seiapi.md §5): the whole object is kept as given (unknown properties round-trip);
//! the properties Revisit understands are type-checked, times made canonical, and the rules of
//! status, reason and follow-up live here.

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::{
    DomainError, InvalidParam, WorkOrderNum,
    category::{ReasonKind, Reasons},
    status::OrderStatus,
    sysconfig::EntityConfig,
    time,
};

/// A validated work order: a JSON object whose known properties have their documented types.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkOrder(Map<String, Value>);

/// The properties the store indexes for queries and the scheduler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Indexed {
    pub order_status: Option<i64>,
    pub order_type: Option<String>,
    pub user_name: Option<String>,
    pub service_area_id: Option<String>,
    pub planned_start: Option<Timestamp>,
    pub planned_end: Option<Timestamp>,
    pub original_order_num: Option<String>,
    /// When the technician is free again: `PlannedEndDate`, else start + `PlannedDur`.
    pub busy_end: Option<Timestamp>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The promised window: the first `TimeConstraints` item of type 1001.
    pub window: Option<(Timestamp, Timestamp)>,
}

/// Collects type errors with their JSON paths.
#[derive(Default)]
pub struct Checker {
    pub errs: Vec<InvalidParam>,
}

impl Checker {
    fn push(&mut self, path: &str, reason: &str, v: &Value) {
        let mut p = InvalidParam::new(path, reason);
        p.value = match v {
            Value::String(s) => s.chars().take(100).collect(),
            Value::Object(_) => "{...}".into(),
            Value::Array(_) => "[...]".into(),
            other => other.to_string(),
        };
        self.errs.push(p);
    }
    fn string(&mut self, path: &str, v: Option<&Value>) {
        if let Some(v) = v
            && !(v.is_string() || v.is_null())
        {
            self.push(path, "expected a string", v);
        }
    }
    fn boolean(&mut self, path: &str, v: Option<&Value>) {
        if let Some(v) = v
            && !(v.is_boolean() || v.is_null())
        {
            self.push(path, "expected a boolean", v);
        }
    }
    fn integer(&mut self, path: &str, v: Option<&Value>) -> Option<i64> {
        let v = v?;
        if v.is_null() {
            return None;
        }
        match v.as_i64() {
            Some(n) => Some(n),
            None => {
                self.push(path, "expected an integer", v);
                None
            }
        }
    }
    fn number(&mut self, path: &str, v: Option<&Value>) {
        if let Some(v) = v
            && !(v.is_number() || v.is_null())
        {
            self.push(path, "expected a decimal number", v);
        }
    }
    fn time(&mut self, path: &str, v: Option<&Value>) -> Option<Timestamp> {
        let v = v?;
        match v {
            Value::Null => None,
            Value::String(s) => match time::parse(s) {
                Some(t) => Some(t),
                None => {
                    self.push(
                        path,
                        "expected an RFC 3339 time such as 2026-12-01T08:00:00.000Z",
                        v,
                    );
                    None
                }
            },
            _ => {
                self.push(path, "expected an RFC 3339 time string", v);
                None
            }
        }
    }
    fn object<'a>(&mut self, path: &str, v: Option<&'a Value>) -> Option<&'a Map<String, Value>> {
        match v? {
            Value::Null => None,
            Value::Object(m) => Some(m),
            other => {
                self.push(path, "expected an object", other);
                None
            }
        }
    }
    fn array<'a>(&mut self, path: &str, v: Option<&'a Value>) -> Option<&'a Vec<Value>> {
        match v? {
            Value::Null => None,
            Value::Array(a) => Some(a),
            other => {
                self.push(path, "expected an array", other);
                None
            }
        }
    }
    fn strings(&mut self, path: &str, v: Option<&Value>) {
        if let Some(a) = self.array(path, v) {
            for (i, s) in a.iter().enumerate() {
                self.string(&format!("{path}[{i}]"), Some(s));
            }
        }
    }
    fn objects<'a>(
        &mut self,
        path: &str,
        v: Option<&'a Value>,
    ) -> Vec<(String, &'a Map<String, Value>)> {
        let mut out = Vec::new();
        if let Some(a) = self.array(path, v) {
            for (i, it) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(m) = self.object(&p, Some(it)) {
                    out.push((p, m));
                }
            }
        }
        out
    }

    fn coordinate(&mut self, path: &str, v: Option<&Value>, limit: f64) {
        let Some(v) = v else { return };
        let n = match v {
            Value::Null => return,
            Value::String(s) if s.trim().is_empty() => return,
            Value::String(s) => s.trim().parse::<f64>().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        match n {
            Some(x) if x.is_finite() && x.abs() <= limit => {}
            _ => self.push(
                path,
                &format!("expected decimal degrees between -{limit} and {limit}"),
                v,
            ),
        }
    }

    pub fn contacts(&mut self, path: &str, v: Option<&Value>) {
        for (p, c) in self.objects(path, v) {
            for k in ["Email", "FirstName", "LastName"] {
                self.string(&format!("{p}.{k}"), c.get(k));
            }
            self.boolean(&format!("{p}.IsPrimary"), c.get("IsPrimary"));
            for (pp, ph) in self.objects(&format!("{p}.Phones"), c.get("Phones")) {
                self.string(&format!("{pp}.PhoneNum"), ph.get("PhoneNum"));
                self.string(&format!("{pp}.PhoneType"), ph.get("PhoneType"));
            }
        }
    }

    pub fn address(&mut self, path: &str, v: Option<&Value>) {
        if let Some(a) = self.object(path, v) {
            for k in [
                "AddrLine1",
                "AddrLine2",
                "AddrLine3",
                "AddrLine4",
                "AddrType",
                "City",
                "Country",
                "Intersection",
                "Region",
                "Zip",
            ] {
                self.string(&format!("{path}.{k}"), a.get(k));
            }
            self.coordinate(&format!("{path}.Lat"), a.get("Lat"), 90.0);
            self.coordinate(&format!("{path}.Lon"), a.get("Lon"), 180.0);
        }
    }

    pub fn account(&mut self, v: Option<&Value>) {
        if let Some(a) = self.object("$.Account", v) {
            for k in ["AccountNum", "Name", "Notes", "Website"] {
                self.string(&format!("$.Account.{k}"), a.get(k));
            }
            if let Some(t) = a.get("AccountType") {
                let ok = match t {
                    Value::String(s) => s == "1001" || s == "1002",
                    Value::Number(n) => n.as_i64().is_some_and(|n| n == 1001 || n == 1002),
                    Value::Null => true,
                    _ => false,
                };
                if !ok {
                    self.push(
                        "$.Account.AccountType",
                        "expected 1001 (business) or 1002 (residential)",
                        t,
                    );
                }
            }
            if let Some(list) = self.array("$.Account.Addresses", a.get("Addresses")) {
                for (i, it) in list.iter().enumerate() {
                    self.address(&format!("$.Account.Addresses[{i}]"), Some(it));
                }
            }
            self.contacts("$.Account.Contacts", a.get("Contacts"));
        }
    }

    pub fn location(&mut self, v: Option<&Value>) {
        if let Some(l) = self.object("$.Location", v) {
            self.address("$.Location.Address", l.get("Address"));
            self.contacts("$.Location.Contacts", l.get("Contacts"));
            for k in [
                "Email",
                "LanguageID",
                "LocationNum",
                "Name",
                "Notes",
                "ServiceAreaID",
                "StorageLocationID",
            ] {
                self.string(&format!("$.Location.{k}"), l.get(k));
            }
            self.boolean("$.Location.POReq", l.get("POReq"));
            self.boolean("$.Location.SigReq", l.get("SigReq"));
        }
    }

    pub fn assets(&mut self, v: Option<&Value>) {
        for (p, a) in self.objects("$.Assets", v) {
            for k in [
                "AssetNum",
                "Desc",
                "InServiceDate",
                "LastServiceDate",
                "Location",
                "Mfg",
                "Model",
                "ProdNum",
                "SerialNum",
                "Status",
                "Type",
            ] {
                // Dates and Location are free text on the platform; only the type is checked.
                self.string(&format!("{p}.{k}"), a.get(k));
            }
            self.boolean(&format!("{p}.IsComponent"), a.get("IsComponent"));
            self.boolean(&format!("{p}.Delete"), a.get("Delete"));
            for k in ["FlexForms", "ServiceCodes", "ServiceCodesDesc"] {
                self.strings(&format!("{p}.{k}"), a.get(k));
            }
        }
    }

    pub fn flex(&mut self, attrs: Option<&Value>, forms: Option<&Value>) {
        if let Some(m) = self.object("$.FlexAttrs", attrs) {
            for (form, attrs) in m {
                let p = format!("$.FlexAttrs.{form}");
                if let Some(am) = self.object(&p, Some(attrs)) {
                    for (attr, vals) in am {
                        self.strings(&format!("{p}.{attr}"), Some(vals));
                    }
                }
            }
        }
        self.strings("$.FlexForms", forms);
    }

    fn prod_attrs(&mut self, path: &str, v: Option<&Value>) {
        if let Some(a) = self.object(path, v) {
            self.string(&format!("{path}.Desc"), a.get("Desc"));
            self.string(&format!("{path}.ProdType"), a.get("ProdType"));
            for k in ["IsBatch", "IsInvCtrl", "IsSerialized"] {
                self.boolean(&format!("{path}.{k}"), a.get(k));
            }
        }
    }

    pub fn required_parts(&mut self, v: Option<&Value>) {
        for (p, part) in self.objects("$.RequiredParts", v) {
            self.string(&format!("{p}.ProdNum"), part.get("ProdNum"));
            self.number(
                &format!("{p}.Qty"),
                part.get("Qty").or_else(|| part.get("Qty:")),
            );
            self.time(
                &format!("{p}.EstimatedDelivery"),
                part.get("EstimatedDelivery"),
            );
            self.string(&format!("{p}.PartStatus"), part.get("PartStatus"));
            self.number(&format!("{p}.Price"), part.get("Price"));
            self.prod_attrs(&format!("{p}.ProdAttrs"), part.get("ProdAttrs"));
            for (sp, s) in
                self.objects(&format!("{p}.SupersededParts"), part.get("SupersededParts"))
            {
                self.string(&format!("{sp}.ProdNum"), s.get("ProdNum"));
                self.string(&format!("{sp}.PartStatus"), s.get("PartStatus"));
                self.number(&format!("{sp}.Qty"), s.get("Qty"));
                self.prod_attrs(&format!("{sp}.ProdAttrs"), s.get("ProdAttrs"));
            }
        }
    }

    /// TimeConstraints items (§6.2); returns the valid ones as (type, start, end).
    pub fn time_constraints(&mut self, v: Option<&Value>) -> Vec<(String, Timestamp, Timestamp)> {
        let mut out = Vec::new();
        for (p, tc) in self.objects("$.TimeConstraints", v) {
            self.string(&format!("{p}.ID"), tc.get("ID"));
            self.string(&format!("{p}.Desc"), tc.get("Desc"));
            self.boolean(&format!("{p}.Delete"), tc.get("Delete"));
            if tc.get("Delete").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let ty = match tc.get("Type") {
                Some(Value::String(s)) if matches!(s.as_str(), "1001" | "1002" | "1003") => {
                    Some(s.clone())
                }
                Some(Value::Number(n)) if matches!(n.as_i64(), Some(1001..=1003)) => {
                    Some(n.to_string())
                }
                Some(other) => {
                    self.push(
                        &format!("{p}.Type"),
                        "expected 1001 (appointment window), 1002 (customer available) or 1003 (customer not available)",
                        other,
                    );
                    None
                }
                None => {
                    self.push(&format!("{p}.Type"), "required", &Value::Null);
                    None
                }
            };
            let period = self.object(&format!("{p}.Period"), tc.get("Period"));
            let Some(period) = period else {
                if tc.get("Period").is_none() {
                    self.push(&format!("{p}.Period"), "required", &Value::Null);
                }
                continue;
            };
            let s = self.time(&format!("{p}.Period.Start"), period.get("Start"));
            let e = self.time(&format!("{p}.Period.End"), period.get("End"));
            match (s, e) {
                (Some(s), Some(e)) if s < e => {
                    if let Some(ty) = ty {
                        out.push((ty, s, e));
                    }
                }
                (Some(_), Some(_)) => self.push(
                    &format!("{p}.Period.Start"),
                    "Start must be before End",
                    period.get("Start").unwrap_or(&Value::Null),
                ),
                (None, _) if period.get("Start").is_none() => {
                    self.push(&format!("{p}.Period.Start"), "required", &Value::Null)
                }
                (_, None) if period.get("End").is_none() => {
                    self.push(&format!("{p}.Period.End"), "required", &Value::Null)
                }
                _ => {}
            }
        }
        out
    }

    pub fn finish(self) -> Result<(), DomainError> {
        if self.errs.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self.errs))
        }
    }
}

/// Rewrites the known time properties to the canonical wire form and the `"Qty:"` typo to `Qty`.
pub fn normalize(m: &mut Map<String, Value>) {
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
                if let Some(q) = obj.remove("Qty:") {
                    obj.entry("Qty").or_insert(q);
                }
                if let Some(v) = obj.get_mut("EstimatedDelivery") {
                    canon(v);
                }
            }
        }
    }
}

impl WorkOrder {
    /// Type-checks a work order body; the number comes from the path and must match `OrderNum`.
    pub fn parse(num: &WorkOrderNum, mut m: Map<String, Value>) -> Result<Self, DomainError> {
        let mut c = Checker::default();
        match m.get("OrderNum") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == num.as_str() => {}
            Some(v @ Value::String(_)) => c.push(
                "$.OrderNum",
                "must equal the work order number in the path",
                v,
            ),
            Some(v) => c.push("$.OrderNum", "expected a string", v),
        }
        for k in [
            "OrderType",
            "ReasonCode",
            "OriginalOrderNum",
            "UserName",
            "Description",
            "Notes",
        ] {
            c.string(&format!("$.{k}"), m.get(k));
        }
        c.boolean("$.CanScheduleFollowup", m.get("CanScheduleFollowup"));
        if let Some(code) = c.integer("$.OrderStatus", m.get("OrderStatus"))
            && OrderStatus::from_code(code).is_none()
        {
            c.push(
                "$.OrderStatus",
                "unknown status code: expected 1, 6, 7, 8, 9, 1001, 4096 or 4097",
                &Value::from(code),
            );
        }
        if let Some(d) = c.integer("$.DispatchStatus", m.get("DispatchStatus"))
            && !(0..=3).contains(&d)
        {
            c.push("$.DispatchStatus", "expected 0, 1, 2 or 3", &Value::from(d));
        }
        if let Some(d) = c.integer("$.PlannedDur", m.get("PlannedDur"))
            && !(0..=7 * 24 * 60).contains(&d)
        {
            c.push(
                "$.PlannedDur",
                "expected minutes between 0 and 10080",
                &Value::from(d),
            );
        }
        let start = c.time("$.PlannedStartDate", m.get("PlannedStartDate"));
        let end = c.time("$.PlannedEndDate", m.get("PlannedEndDate"));
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            c.push(
                "$.PlannedEndDate",
                "must not be before PlannedStartDate",
                m.get("PlannedEndDate").unwrap_or(&Value::Null),
            );
        }
        c.time("$.OrderDate", m.get("OrderDate"));
        c.time_constraints(m.get("TimeConstraints"));
        c.account(m.get("Account"));
        c.location(m.get("Location"));
        c.assets(m.get("Assets"));
        c.flex(m.get("FlexAttrs"), m.get("FlexForms"));
        c.required_parts(m.get("RequiredParts"));
        c.finish()?;
        m.insert("OrderNum".into(), Value::String(num.to_string()));
        normalize(&mut m);
        Ok(Self(m))
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k)
    }
    fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }
    pub fn order_num(&self) -> &str {
        self.str("OrderNum").unwrap_or_default()
    }
    pub fn status(&self) -> Option<OrderStatus> {
        self.0
            .get("OrderStatus")
            .and_then(Value::as_i64)
            .and_then(OrderStatus::from_code)
    }
    pub fn order_type(&self) -> Option<&str> {
        self.str("OrderType")
    }
    pub fn user_name(&self) -> Option<&str> {
        self.str("UserName")
    }
    pub fn reason_code(&self) -> Option<&str> {
        self.str("ReasonCode")
    }

    pub fn indexed(&self) -> Indexed {
        Indexed {
            order_status: self.0.get("OrderStatus").and_then(Value::as_i64),
            order_type: self.order_type().map(str::to_string),
            user_name: self.user_name().map(str::to_string),
            service_area_id: self
                .0
                .get("Location")
                .and_then(|l| l.get("ServiceAreaID"))
                .and_then(Value::as_str)
                .map(str::to_string),
            planned_start: self.str("PlannedStartDate").and_then(time::parse),
            planned_end: self.str("PlannedEndDate").and_then(time::parse),
            original_order_num: self.str("OriginalOrderNum").map(str::to_string),
            busy_end: self.busy_end(),
            lat: self.coordinate("Lat"),
            lon: self.coordinate("Lon"),
            window: self.promised_window(),
        }
    }

    /// The same order with a new planned visit (the scheduler moved it later in its window).
    pub fn moved(mut self, start: Timestamp, end: Timestamp) -> WorkOrder {
        self.0.insert(
            "PlannedStartDate".into(),
            Value::String(time::format(start)),
        );
        self.0
            .insert("PlannedEndDate".into(), Value::String(time::format(end)));
        self
    }

    fn busy_end(&self) -> Option<Timestamp> {
        let start = self.str("PlannedStartDate").and_then(time::parse)?;
        if let Some(end) = self.str("PlannedEndDate").and_then(time::parse) {
            return Some(end);
        }
        let dur = self.0.get("PlannedDur").and_then(Value::as_i64)?;
        start.checked_add(jiff::SignedDuration::from_mins(dur)).ok()
    }

    /// `Location.Address.Lat` / `Lon` as a number (strings on the wire, numbers accepted).
    pub fn coordinate(&self, key: &str) -> Option<f64> {
        let v = self.0.get("Location")?.get("Address")?.get(key)?;
        match v {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn promised_window(&self) -> Option<(Timestamp, Timestamp)> {
        self.0
            .get("TimeConstraints")?
            .as_array()?
            .iter()
            .find_map(|tc| {
                let ty = tc.get("Type")?;
                let is_window = ty.as_str() == Some("1001") || ty.as_i64() == Some(1001);
                if !is_window || tc.get("Delete").and_then(Value::as_bool) == Some(true) {
                    return None;
                }
                let p = tc.get("Period")?;
                Some((
                    time::parse(p.get("Start")?.as_str()?)?,
                    time::parse(p.get("End")?.as_str()?)?,
                ))
            })
    }

    /// The rule of §5.3: the order's own property, else the configuration by order type, else
    /// the configuration's default, else false.
    pub fn can_schedule_followup(&self, cfg: &EntityConfig) -> bool {
        self.0
            .get("CanScheduleFollowup")
            .and_then(Value::as_bool)
            .or_else(|| cfg.rule_can_schedule_followup(self.order_type()))
            .unwrap_or(false)
    }

    /// Checks the rules of a change from `prev` to `self` (§5.2): a closed order stays closed;
    /// entering Closed Incomplete, or changing its reason, needs a reason from category 15 or 16.
    pub fn check_transition(
        &self,
        prev: Option<&WorkOrder>,
        reasons: &Reasons,
    ) -> Result<(), DomainError> {
        let next = self.status();
        let before = prev.and_then(WorkOrder::status);
        // Removing the status (PUT without it, `_fields`) would reopen a closed order silently.
        if let (Some(b), None) = (before, next)
            && b.is_closed()
        {
            return Err(DomainError::conflict(
                "urn:revisit:error:order-closed",
                format!(
                    "work order {} is {} and keeps its OrderStatus; create a follow-up order instead",
                    self.order_num(),
                    b.desc()
                ),
            ));
        }
        if let (Some(b), Some(n)) = (before, next)
            && b.is_closed()
            && !n.is_closed()
        {
            return Err(DomainError::conflict(
                "urn:revisit:error:order-closed",
                format!(
                    "work order {} is {} and cannot move back to {} ({}); create a follow-up order instead",
                    self.order_num(),
                    b.desc(),
                    n.desc(),
                    n.code()
                ),
            ));
        }
        if next == Some(OrderStatus::ClosedIncomplete) {
            let changed =
                before != next || prev.and_then(WorkOrder::reason_code) != self.reason_code();
            if changed {
                match self.reason_code() {
                    None => {
                        return Err(DomainError::invalid(
                            "$.ReasonCode",
                            "Closed Incomplete (4097) requires a ReasonCode from system category 15 (follow-up required) or 16 (no follow-up required)",
                        ));
                    }
                    Some(code) if reasons.classify(code).is_none() => {
                        return Err(DomainError::invalid(
                            "$.ReasonCode",
                            format!(
                                "unknown reason code {code:?}: expected a code of system category 15 or 16"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

/// Why an order may not be followed up (§5.3, §5.4, §7), checked in the order a technician
/// would want to hear it.
pub fn check_followup_allowed(
    order: &WorkOrder,
    cfg: &EntityConfig,
    reasons: &Reasons,
) -> Result<(), DomainError> {
    if order.status() != Some(OrderStatus::ClosedIncomplete) {
        return Err(DomainError::conflict(
            "urn:revisit:error:not-closed-incomplete",
            format!(
                "work order {} is not Closed Incomplete (4097); close it as incomplete with a follow-up reason first",
                order.order_num()
            ),
        ));
    }
    if !order.can_schedule_followup(cfg) {
        return Err(DomainError::conflict(
            "urn:revisit:error:followup-not-allowed",
            format!(
                "the work order rule CanScheduleFollowup is false for work order {} (order type {}); set it on the order or in WorkOrderRules of the entity configuration",
                order.order_num(),
                order.order_type().unwrap_or("none")
            ),
        ));
    }
    if !cfg.allow_any_reason() {
        let code = order.reason_code().unwrap_or_default();
        match reasons.classify(code) {
            Some(ReasonKind::FollowupRequired) => {}
            Some(ReasonKind::NoFollowup) => {
                return Err(DomainError::conflict(
                    "urn:revisit:error:reason-no-followup",
                    format!(
                        "work order {} was closed with reason {code}, which says no follow-up is required (category 16)",
                        order.order_num()
                    ),
                ));
            }
            // A reason the entity has since removed from both lists.
            None => {
                return Err(DomainError::conflict(
                    "urn:revisit:error:reason-no-followup",
                    format!(
                        "work order {} was closed with reason {code:?}, which is not a follow-up reason (category 15) of the entity",
                        order.order_num()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Keys that identify an item of a collection in PATCH, tried in order.
const ITEM_KEYS: [&str; 6] = [
    "ID",
    "AssetNum",
    "ProdNum",
    "PartOrderNum",
    "PhoneNum",
    "Email",
];

fn item_key(v: &Value) -> Option<(&'static str, &Value)> {
    let o = v.as_object()?;
    ITEM_KEYS
        .iter()
        .find_map(|k| o.get(*k).filter(|x| !x.is_null()).map(|x| (*k, x)))
}

fn patch_array(base: &mut Vec<Value>, patch: Vec<Value>, path: &str) -> Result<(), DomainError> {
    for (i, item) in patch.into_iter().enumerate() {
        let delete = item.get("Delete").and_then(Value::as_bool) == Some(true);
        let key = item_key(&item).map(|(k, v)| (k, v.clone()));
        let pos = key
            .as_ref()
            .and_then(|(k, v)| base.iter().position(|b| b.get(*k) == Some(v)));
        match (delete, pos) {
            (true, Some(p)) => {
                base.remove(p);
            }
            (true, None) if key.is_none() => {
                return Err(DomainError::invalid(
                    format!("{path}[{i}]"),
                    format!(
                        "an item with \"Delete\": true needs its key (one of {})",
                        ITEM_KEYS.join(", ")
                    ),
                ));
            }
            (true, None) => {} // already gone: a retried PATCH stays harmless
            (false, Some(p)) => {
                if let (Some(b), Value::Object(pm)) = (base[p].as_object_mut(), item) {
                    patch_object(b, pm, &format!("{path}[{p}]"))?;
                }
            }
            (false, None) => base.push(item),
        }
    }
    Ok(())
}

fn patch_object(
    base: &mut Map<String, Value>,
    patch: Map<String, Value>,
    path: &str,
) -> Result<(), DomainError> {
    for (k, v) in patch {
        let p = format!("{path}.{k}");
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(pm)) => patch_object(b, pm, &p)?,
            (Some(Value::Array(b)), Value::Array(pa)) => patch_array(b, pa, &p)?,
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
    Ok(())
}

/// PATCH (§5): only the supplied properties change; nested objects merge; collection items are
/// matched by their key and removed with `"Delete": true`; `_fields` names (dotted) properties
/// to remove.
pub fn apply_patch(
    base: &Map<String, Value>,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, DomainError> {
    let mut out = base.clone();
    let fields = patch.remove("_fields");
    patch_object(&mut out, patch, "$")?;
    match fields {
        None | Some(Value::Null) => {}
        Some(Value::Array(names)) => {
            for (i, n) in names.iter().enumerate() {
                let Some(name) = n.as_str().filter(|s| !s.is_empty()) else {
                    return Err(DomainError::invalid(
                        format!("$._fields[{i}]"),
                        "expected a property name",
                    ));
                };
                if name == "OrderNum" {
                    return Err(DomainError::invalid(
                        format!("$._fields[{i}]"),
                        "OrderNum cannot be removed",
                    ));
                }
                remove_path(&mut out, name);
            }
        }
        Some(_) => {
            return Err(DomainError::invalid(
                "$._fields",
                "expected an array of property names",
            ));
        }
    }
    Ok(out)
}

fn remove_path(m: &mut Map<String, Value>, dotted: &str) {
    match dotted.split_once('.') {
        None => {
            m.remove(dotted);
        }
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = m.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

/// POST (update): the given top-level properties replace the stored ones; the rest is kept.
pub fn apply_update(base: &Map<String, Value>, update: Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    out.extend(update);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::category::{FOLLOWUP_REASONS, NO_FOLLOWUP_REASONS, default_category};
    use serde_json::json;

    fn reasons() -> Reasons {
        Reasons {
            followup: default_category(FOLLOWUP_REASONS).unwrap(),
            no_followup: default_category(NO_FOLLOWUP_REASONS).unwrap(),
        }
    }
    fn wo(v: Value) -> Result<WorkOrder, DomainError> {
        WorkOrder::parse(
            &WorkOrderNum::parse("WO-1").unwrap(),
            v.as_object().unwrap().clone(),
        )
    }
    fn paths(e: DomainError) -> Vec<String> {
        match e {
            DomainError::Invalid(p) => p.into_iter().map(|p| p.path).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_types_are_reported_with_their_json_path() {
        let e = wo(json!({"OrderStatus": "7", "RequiredParts": [{"ProdNum": "P", "Qty": "two"}],
            "Location": {"Address": {"Lat": "95"}}, "TimeConstraints": [{"Type": "1001", "Period": {"Start": "2026-12-02T13:00:00Z", "End": "2026-12-02T12:00:00Z"}}]}))
        .unwrap_err();
        let p = paths(e);
        assert!(p.contains(&"$.OrderStatus".to_string()), "{p:?}");
        assert!(p.contains(&"$.RequiredParts[0].Qty".to_string()), "{p:?}");
        assert!(p.contains(&"$.Location.Address.Lat".to_string()), "{p:?}");
        assert!(
            p.contains(&"$.TimeConstraints[0].Period.Start".to_string()),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_properties_are_kept_and_times_made_canonical() {
        let w = wo(
            json!({"Custom": {"a": [1]}, "PlannedStartDate": "2026-12-01T09:00:00+01:00",
            "RequiredParts": [{"ProdNum": "P", "Qty:": 2}]}),
        )
        .unwrap();
        assert_eq!(w.get("Custom"), Some(&json!({"a": [1]})));
        assert_eq!(
            w.get("PlannedStartDate"),
            Some(&json!("2026-12-01T08:00:00.000Z"))
        );
        assert_eq!(
            w.get("RequiredParts"),
            Some(&json!([{"ProdNum": "P", "Qty": 2}]))
        );
        assert_eq!(w.order_num(), "WO-1");
    }

    #[test]
    fn closed_incomplete_needs_a_known_reason_and_closed_stays_closed() {
        let open = wo(json!({"OrderStatus": 7})).unwrap();
        let no_reason = wo(json!({"OrderStatus": 4097})).unwrap();
        assert!(matches!(
            no_reason.check_transition(Some(&open), &reasons()),
            Err(DomainError::Invalid(_))
        ));
        let bad_reason = wo(json!({"OrderStatus": 4097, "ReasonCode": "9999"})).unwrap();
        assert!(
            bad_reason
                .check_transition(Some(&open), &reasons())
                .is_err()
        );
        let closed = wo(json!({"OrderStatus": 4097, "ReasonCode": "2001"})).unwrap();
        closed.check_transition(Some(&open), &reasons()).unwrap();
        let reopened = wo(json!({"OrderStatus": 1, "ReasonCode": "2001"})).unwrap();
        assert!(matches!(
            reopened.check_transition(Some(&closed), &reasons()),
            Err(DomainError::Conflict { .. })
        ));
        let no_status = wo(json!({"ReasonCode": "2001"})).unwrap();
        assert!(matches!(
            no_status.check_transition(Some(&closed), &reasons()),
            Err(DomainError::Conflict { .. })
        ));
    }

    #[test]
    fn patch_merges_deletes_items_by_key_and_removes_fields() {
        let base = json!({"OrderNum": "WO-1", "Notes": "n", "Location": {"Name": "A", "Notes": "x"},
            "TimeConstraints": [{"ID": "a", "Type": "1001"}, {"ID": "b", "Type": "1001"}]});
        let out = apply_patch(
            base.as_object().unwrap(),
            json!({"Location": {"Name": "B"},
            "TimeConstraints": [{"ID": "a", "Delete": true}, {"ID": "c", "Type": "1002"}],
            "_fields": ["Notes", "Location.Notes"]})
            .as_object()
            .unwrap()
            .clone(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"OrderNum": "WO-1", "Location": {"Name": "B"},
            "TimeConstraints": [{"ID": "b", "Type": "1001"}, {"ID": "c", "Type": "1002"}]})
        );
    }
}
