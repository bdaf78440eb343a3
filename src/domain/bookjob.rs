//! The Book Job object, which is also the Appointment Search object (docs/api.md §7.2).

use serde_json::{Map, Value};

use super::{DomainError, WorkOrderNum, time::Time, workorder::Checker};

/// A period of a TimeConstraints item, `start` before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Time,
    pub end: Time,
}

/// A type-checked Book Job / Appointment Search body. `raw` keeps every property as given, to
/// be forwarded to a third party or copied into the follow-up order.
#[derive(Debug, Clone)]
pub struct BookJob {
    pub raw: Map<String, Value>,
    pub original_order_num: Option<String>,
    /// Type 1001 items: in a booking, the chosen slot.
    pub windows: Vec<Period>,
    /// Type 1002 items: customer available.
    pub available: Vec<Period>,
    /// Type 1003 items: customer not available.
    pub unavailable: Vec<Period>,
    /// Whether the client sent `OriginalOrderNum` itself (it is filled in from the path when
    /// not); every other property in `raw` is one the client sent.
    sent_original: bool,
}

impl BookJob {
    /// Checks the types of every known property, with JSON paths in the errors.
    pub fn parse(mut raw: Map<String, Value>) -> Result<Self, DomainError> {
        let mut c = Checker::default();
        c.account(raw.get("Account"));
        c.location(raw.get("Location"));
        c.assets(raw.get("Assets"));
        c.flex(raw.get("FlexAttrs"), raw.get("FlexForms"));
        c.required_parts(raw.get("RequiredParts"));
        for k in ["OrderType", "OriginalOrderNum", "UserName"] {
            if let Some(v) = raw.get(k)
                && !(v.is_string() || v.is_null())
            {
                let mut p = super::InvalidParam::new(format!("$.{k}"), "expected a string");
                p.value = v.to_string();
                c.errs.push(p);
            }
        }
        let tcs = c.time_constraints(raw.get("TimeConstraints"));
        c.finish()?;
        super::workorder::normalize(&mut raw);
        let pick = |ty: &str| {
            tcs.iter()
                .filter(|(t, _, _)| t == ty)
                .map(|(_, s, e)| Period { start: *s, end: *e })
                .collect::<Vec<_>>()
        };
        Ok(Self {
            sent_original: raw.contains_key("OriginalOrderNum"),
            original_order_num: raw
                .get("OriginalOrderNum")
                .and_then(Value::as_str)
                .map(str::to_string),
            windows: pick("1001"),
            available: pick("1002"),
            unavailable: pick("1003"),
            raw,
        })
    }

    /// The booking rules of §7.1 that need no database: `OriginalOrderNum` matches the path (and
    /// is filled in from it when absent), and exactly one type-1001 item names the chosen slot.
    pub(crate) fn check_booking(&mut self, original: &WorkOrderNum) -> Result<Period, DomainError> {
        match &self.original_order_num {
            Some(n) if n != original.as_str() => {
                return Err(DomainError::invalid(
                    "$.OriginalOrderNum",
                    format!("must equal the work order in the path ({original}), got {n:?}"),
                ));
            }
            Some(_) => {}
            None => {
                self.original_order_num = Some(original.to_string());
                self.raw.insert(
                    "OriginalOrderNum".into(),
                    Value::String(original.to_string()),
                );
            }
        }
        match self.windows.as_slice() {
            [slot] => Ok(*slot),
            [] => Err(DomainError::invalid(
                "$.TimeConstraints",
                "a booking needs exactly one TimeConstraints item of Type 1001 naming the chosen slot",
            )),
            _ => Err(DomainError::invalid(
                "$.TimeConstraints",
                "a booking names exactly one slot: more than one TimeConstraints item of Type 1001 was given",
            )),
        }
    }

    /// Whether the client sent the top-level property `k` (`null` included).
    pub fn given(&self, k: &str) -> bool {
        match k {
            "OriginalOrderNum" => self.sent_original,
            _ => self.raw.contains_key(k),
        }
    }

    pub fn str(&self, k: &str) -> Option<&str> {
        self.raw.get(k).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bj(v: Value) -> BookJob {
        BookJob::parse(v.as_object().unwrap().clone()).unwrap()
    }

    #[test]
    fn booking_needs_one_slot_and_a_matching_original() {
        let wo = WorkOrderNum::parse("WO-1").unwrap();
        let slot = json!({"Type": "1001", "Period": {"Start": "2026-12-02T13:00:00Z", "End": "2026-12-02T17:00:00Z"}});
        assert!(bj(json!({})).check_booking(&wo).is_err());
        assert!(
            bj(json!({"OriginalOrderNum": "WO-2", "TimeConstraints": [slot.clone()]}))
                .check_booking(&wo)
                .is_err()
        );
        let mut ok = bj(json!({"TimeConstraints": [slot]}));
        let p = ok.check_booking(&wo).unwrap();
        assert_eq!(p.start.to_string(), "2026-12-02T13:00:00.000Z");
        assert_eq!(ok.str("OriginalOrderNum"), Some("WO-1"));
    }

    #[test]
    fn slots_take_the_whole_time_range_and_nothing_outside_it() {
        let wo = WorkOrderNum::parse("WO-1").unwrap();
        let period = |s: &str, e: &str| json!({"TimeConstraints": [{"Type": "1001", "Period": {"Start": s, "End": e}}]});
        let mut edge = bj(period("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"));
        let p = edge.check_booking(&wo).unwrap();
        assert_eq!(
            (p.start.to_string(), p.end.to_string()),
            (
                "0001-01-01T00:00:00.000Z".into(),
                "9999-12-31T23:59:59.999Z".into()
            )
        );
        // What is forwarded or copied is the canonical form.
        assert_eq!(
            edge.raw["TimeConstraints"][0]["Period"],
            json!({"Start": "0001-01-01T00:00:00.000Z", "End": "9999-12-31T23:59:59.999Z"})
        );
        let (start, end) = (
            "$.TimeConstraints[0].Period.Start",
            "$.TimeConstraints[0].Period.End",
        );
        for (s, e, path) in [
            ("-000001-01-01T00:00:00Z", "2026-12-02T17:00:00Z", start),
            ("2026-12-02T13:00:00Z", "10000-01-01T00:00:00Z", end),
            ("2026-12-02 13:00", "2026-12-02T17:00:00Z", start),
            ("2026-12-02T13:00:00Z", "2026-12-02T17:00:00", end),
        ] {
            let DomainError::Invalid(params) =
                BookJob::parse(period(s, e).as_object().unwrap().clone()).unwrap_err()
            else {
                panic!("{s} {e}: not an invalid-parameters error");
            };
            assert!(params.iter().any(|p| p.path == path), "{s} {e}: {params:?}");
        }
    }
}
