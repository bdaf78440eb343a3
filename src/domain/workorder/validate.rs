//! The type check of a work order on the wire (seiapi.md §5.1, §7.2): every error is collected,
//! each with its JSON path, before anything is converted (serde would stop at the first).

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::domain::{DomainError, InvalidParam, WorkOrderNum, status::OrderStatus, time};

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

/// Type-checks a work order body; the number comes from the path and must match `OrderNum`.
pub(super) fn work_order(num: &WorkOrderNum, m: &Map<String, Value>) -> Result<(), DomainError> {
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
    c.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{paths, wo};

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
