//! The type check of a work order on the wire (docs/api.md §5.1, §7.2): every error is collected,
//! each with its JSON path, before anything is converted (serde would stop at the first).

use serde_json::{Map, Value};

use crate::domain::{
    DomainError, InvalidParam, WorkOrderNum,
    status::OrderStatus,
    time::{Time, TimeError},
};

/// Collects type errors with their JSON paths.
#[derive(Default)]
pub(crate) struct Checker {
    pub errs: Vec<InvalidParam>,
    /// Checking what the store holds: see [`Checker::stored`].
    stored: bool,
}

impl Checker {
    /// The checker of an order read back from the store. Versions before the time range was
    /// enforced stored times this one refuses (`-001-01-01T00:00:00.000Z`, year 0000), and
    /// periods whose ends became equal when cut to the millisecond: such a time reads back as
    /// stored rather than making every read of its order fail.
    pub(super) fn stored() -> Self {
        Self {
            stored: true,
            ..Self::default()
        }
    }
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
    fn time(&mut self, path: &str, v: Option<&Value>) -> Option<Time> {
        let v = v?;
        match v {
            Value::Null => None,
            Value::String(s) => match Time::parse(s) {
                Ok(t) => Some(t),
                Err(_) if self.stored => None,
                Err(e) => {
                    self.push(path, &e.to_string(), v);
                    None
                }
            },
            _ => {
                self.push(path, &TimeError::Malformed.to_string(), v);
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

    pub(crate) fn contacts(&mut self, path: &str, v: Option<&Value>) {
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

    pub(crate) fn assets(&mut self, v: Option<&Value>) {
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

    pub(crate) fn flex(&mut self, attrs: Option<&Value>, forms: Option<&Value>) {
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
    pub(crate) fn time_constraints(&mut self, v: Option<&Value>) -> Vec<(String, Time, Time)> {
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
                (Some(_), Some(_)) if !self.stored => self.push(
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

/// Type-checks a work order body with `c`; the number comes from the path and must match
/// `OrderNum`.
pub(super) fn work_order(
    mut c: Checker,
    num: &WorkOrderNum,
    m: &Map<String, Value>,
) -> Result<(), DomainError> {
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
    c.boolean("$.Pinned", m.get("Pinned"));
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
    c.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::{
        WorkOrder,
        testing::{paths, wo},
    };
    use crate::domain::{DomainError, WorkOrderNum};

    /// A body with `t` in every time property of a work order.
    fn every_time(t: &str) -> Value {
        json!({"PlannedStartDate": t, "PlannedEndDate": t, "OrderDate": t,
            "TimeConstraints": [{"Type": "1002", "Period": {"Start": t, "End": t}}],
            "RequiredParts": [{"ProdNum": "P", "EstimatedDelivery": t}]})
    }

    const EVERY_TIME_PATH: [&str; 5] = [
        "$.PlannedStartDate",
        "$.PlannedEndDate",
        "$.OrderDate",
        "$.TimeConstraints[0].Period.Start",
        "$.RequiredParts[0].EstimatedDelivery",
    ];

    #[test]
    fn the_first_and_last_millisecond_of_the_range_read_back_exactly() {
        let (first, last) = ("0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z");
        let body = json!({"PlannedStartDate": first, "PlannedEndDate": last, "OrderDate": last,
            "TimeConstraints": [{"Type": "1001", "Period": {"Start": first, "End": last}}],
            "RequiredParts": [{"ProdNum": "P", "EstimatedDelivery": last}]});
        let order = wo(body.clone()).unwrap();
        let mut expected = body;
        expected["OrderNum"] = json!("WO-1");
        assert_eq!(order.to_value(), expected);
        let ix = order.indexed();
        assert_eq!(
            ix.planned_start.map(|t| t.as_millis()),
            Some(-62_135_596_800_000)
        );
        assert_eq!(
            ix.planned_end.map(|t| t.as_millis()),
            Some(253_402_300_799_999)
        );
        assert_eq!(ix.window.map(|w| w.1.to_string()).as_deref(), Some(last));
        // Written with offsets, the same instants.
        let order = wo(json!({"PlannedStartDate": "0001-01-01T01:00:00+01:00",
            "PlannedEndDate": "9999-12-31T22:59:59.999-01:00"}))
        .unwrap();
        assert_eq!(order.to_value()["PlannedStartDate"], first);
        assert_eq!(order.to_value()["PlannedEndDate"], last);
    }

    #[test]
    fn times_outside_the_range_or_not_rfc_3339_are_refused_naming_each_path() {
        for (t, reason) in [
            ("0000-12-31T23:59:59.999Z", "out of range"),
            ("-000001-01-01T00:00:00Z", "out of range"),
            ("-001-01-01T00:00:00.000Z", "out of range"),
            ("10000-01-01T00:00:00Z", "out of range"),
            ("0001-01-01T00:59:59+01:00", "out of range"),
            ("2026-12-01 08:00", "expected an RFC 3339 time"),
            ("2026-12-01T08:00:00", "expected an RFC 3339 time"),
            ("2026-12-01T08:00:00.000", "expected an RFC 3339 time"),
            ("2026-02-30T08:00:00Z", "not a date or time of day"),
        ] {
            let DomainError::Invalid(params) = wo(every_time(t)).unwrap_err() else {
                panic!("{t}: not an invalid-parameters error");
            };
            for path in EVERY_TIME_PATH {
                let p = params.iter().find(|p| p.path == path);
                let p = p.unwrap_or_else(|| panic!("{t}: {path} not in {params:?}"));
                assert!(p.reason.starts_with(reason), "{t}: {p:?}");
                assert_eq!(p.value, t);
            }
        }
        let e = wo(json!({"PlannedStartDate": 20261201})).unwrap_err();
        assert_eq!(paths(e), ["$.PlannedStartDate"]);
    }

    #[test]
    fn a_period_shorter_than_a_millisecond_is_refused_not_stored_empty() {
        // Cut to the millisecond both ends are the same instant: the period would be empty.
        let e = wo(json!({"TimeConstraints": [{"Type": "1001", "Period": {
            "Start": "2026-12-01T08:00:00.0001Z", "End": "2026-12-01T08:00:00.0009Z"}}]}))
        .unwrap_err();
        assert_eq!(paths(e), ["$.TimeConstraints[0].Period.Start"]);
    }

    #[test]
    fn a_stored_order_with_times_this_version_refuses_still_reads_as_stored() {
        // As versions before the range was enforced could store them.
        let body = json!({"OrderNum": "WO-1", "PlannedStartDate": "-001-01-01T00:00:00.000Z",
            "OrderDate": "0000-06-01T00:00:00.000Z", "PlannedDur": 30,
            "TimeConstraints": [{"Type": "1001", "Period": {"Start": "2026-12-01T08:00:00.000Z", "End": "2026-12-01T08:00:00.000Z"}}]});
        let num = WorkOrderNum::parse("WO-1").unwrap();
        let m = body.as_object().unwrap().clone();
        assert!(WorkOrder::parse(&num, m.clone()).is_err());
        let order = WorkOrder::from_stored(&num, m).unwrap();
        assert_eq!(order.planned_start(), None);
        assert_eq!(order.indexed().busy_end, None);
        assert_eq!(order.to_value(), body);
        // Other errors are still errors.
        let bad = json!({"OrderStatus": "7"}).as_object().unwrap().clone();
        assert!(WorkOrder::from_stored(&num, bad).is_err());
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
}
