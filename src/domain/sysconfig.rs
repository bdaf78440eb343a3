//! The entity configuration object (README, "Configuration of an entity"): validation, merge,
//! and the settings Revisit acts on.

use serde_json::{Map, Value};

use super::{DomainError, InvalidParam};

/// Where the follow-up endpoints of an entity send their work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SchedulerTarget {
    /// `builtin:`: Revisit's own scheduler.
    Builtin,
    /// An http(s) endpoint of the company's own scheduler (for BookJob, holding `{0}`).
    Http(String),
    /// Not configured.
    None,
}

pub(crate) const BUILTIN: &str = "builtin:";

/// Validates one URI property; `needs_placeholder` for BookJob.
fn check_uri(
    path: &str,
    v: &Value,
    needs_placeholder: bool,
    allow_builtin: bool,
    errs: &mut Vec<InvalidParam>,
) {
    let Some(s) = v.as_str() else {
        if !v.is_null() {
            errs.push(InvalidParam::new(path, "expected a string (URI)"));
        }
        return;
    };
    if allow_builtin && s == BUILTIN {
        return;
    }
    let ok = url::Url::parse(s).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if ok.is_none() {
        let expected = if allow_builtin {
            "expected an absolute http(s) URI or builtin:"
        } else {
            "expected an absolute http(s) URI"
        };
        let mut p = InvalidParam::new(path, expected);
        p.value = s.chars().take(200).collect();
        errs.push(p);
        return;
    }
    if needs_placeholder && !s.contains("{0}") {
        let mut p = InvalidParam::new(
            path,
            "an http(s) BookJob URI must contain {0}, replaced by the original work order number",
        );
        p.value = s.chars().take(200).collect();
        errs.push(p);
    }
}

fn check_bool(path: &str, v: Option<&Value>, errs: &mut Vec<InvalidParam>) {
    if let Some(v) = v
        && !(v.is_boolean() || v.is_null())
    {
        errs.push(InvalidParam::new(path, "expected a boolean"));
    }
}

/// `v` as an object; `None` when absent or null; a reason in `errs` when it is something else.
pub(crate) fn check_object<'a>(
    path: &str,
    v: Option<&'a Value>,
    errs: &mut Vec<InvalidParam>,
) -> Option<&'a Map<String, Value>> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            errs.push(InvalidParam::new(path, "expected an object"));
            None
        }
    }
}

/// Validates the properties Revisit acts on; every other property is kept as given.
pub(crate) fn validate(cfg: &Map<String, Value>) -> Result<(), DomainError> {
    let mut errs = Vec::new();
    if let Some(rest) = check_object("$.RestApi", cfg.get("RestApi"), &mut errs) {
        if let Some(v) = rest.get("BookJob") {
            check_uri("$.RestApi.BookJob", v, true, true, &mut errs);
        }
        if let Some(v) = rest.get("SearchAppts") {
            check_uri("$.RestApi.SearchAppts", v, false, true, &mut errs);
        }
        if let Some(v) = rest.get("TimeoutMs")
            && !(v.is_null() || v.as_u64().is_some_and(|n| (100..=120_000).contains(&n)))
        {
            errs.push(InvalidParam::new(
                "$.RestApi.TimeoutMs",
                "expected milliseconds between 100 and 120000",
            ));
        }
    }
    if let Some(parts) = check_object("$.PartsOrdering", cfg.get("PartsOrdering"), &mut errs)
        && let Some(v) = parts.get("EntityServiceURI")
    {
        check_uri(
            "$.PartsOrdering.EntityServiceURI",
            v,
            false,
            false,
            &mut errs,
        );
    }
    if let Some(rules) = check_object("$.WorkOrderRules", cfg.get("WorkOrderRules"), &mut errs) {
        for (ty, rule) in rules {
            let path = format!("$.WorkOrderRules.{ty}");
            if let Some(r) = check_object(&path, Some(rule), &mut errs) {
                check_bool(
                    &format!("{path}.CanScheduleFollowup"),
                    r.get("CanScheduleFollowup"),
                    &mut errs,
                );
            }
        }
    }
    if let Some(f) = check_object("$.FollowUp", cfg.get("FollowUp"), &mut errs) {
        check_bool(
            "$.FollowUp.AllowAnyReason",
            f.get("AllowAnyReason"),
            &mut errs,
        );
    }
    crate::notify::config::validate(cfg, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Invalid(errs))
    }
}

/// The sections of the configuration Revisit acts on, and the properties it reads in each.
const SECTIONS: [(&str, &[&str]); 5] = [
    ("RestApi", &["BookJob", "SearchAppts", "TimeoutMs"]),
    ("PartsOrdering", &["EntityServiceURI"]),
    ("WorkOrderRules", &[]),
    ("FollowUp", &["AllowAnyReason"]),
    ("ExportNotifications", &["Authentication", "Notifications"]),
];

/// The body of a configuration write as Revisit reads it ([Revisit]): a top-level dotted name of
/// a known section (`"RestApi.BookJob"`, as the platform's documentation names the settings)
/// means the nested property and is stored nested; a known section or property spelt with other
/// capitals (`RestAPI`, `restApi`, `RestApi.bookJob`) is refused, naming the right spelling,
/// since it would otherwise be kept as an unknown property and change nothing.
pub(crate) fn normalize_names(body: Map<String, Value>) -> Result<Map<String, Value>, DomainError> {
    let mut errs = Vec::new();
    let mut out = Map::new();
    let misspelt = |given: &str, right: &str, path: String, errs: &mut Vec<InvalidParam>| {
        let mut p = InvalidParam::new(
            path,
            format!("unknown property {given:?}: the setting is spelt {right:?}"),
        );
        p.value = given.to_string();
        errs.push(p);
    };
    for (key, value) in body {
        let (head, rest) = match key.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (key.as_str(), None),
        };
        let Some((section, props)) = SECTIONS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(head))
        else {
            out.insert(key, value);
            continue;
        };
        if head != *section {
            misspelt(head, section, format!("$.{head}"), &mut errs);
            continue;
        }
        let check_props = |v: &Value, errs: &mut Vec<InvalidParam>| {
            if let Value::Object(m) = v {
                for k in m.keys() {
                    if let Some(right) =
                        props.iter().find(|p| p.eq_ignore_ascii_case(k) && **p != k)
                    {
                        misspelt(k, right, format!("$.{section}.{k}"), errs);
                    }
                }
            }
        };
        match rest {
            None => {
                check_props(&value, &mut errs);
                merge_into(&mut out, section, value);
            }
            Some(prop) => {
                if let Some(right) = props
                    .iter()
                    .find(|p| p.eq_ignore_ascii_case(prop) && **p != prop)
                {
                    misspelt(prop, right, format!("$.{section}.{prop}"), &mut errs);
                    continue;
                }
                let mut nested = Map::new();
                nested.insert(prop.to_string(), value);
                merge_into(&mut out, section, Value::Object(nested));
            }
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(DomainError::Invalid(errs))
    }
}

/// Puts `value` at `out[section]`, merging objects (`{"RestApi": {...}, "RestApi.BookJob": ...}`
/// in one body).
fn merge_into(out: &mut Map<String, Value>, section: &str, value: Value) {
    match (out.get_mut(section), value) {
        (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
        (_, v) => {
            out.insert(section.to_string(), v);
        }
    }
}

/// The http(s) endpoints a configuration body sets, with the JSON path of each: what the
/// outbound policy must allow before they are stored.
pub fn endpoints(body: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (section, prop) in [
        ("RestApi", "BookJob"),
        ("RestApi", "SearchAppts"),
        ("PartsOrdering", "EntityServiceURI"),
    ] {
        if let Some(uri) = body
            .get(section)
            .and_then(|s| s.get(prop))
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            out.push((format!("$.{section}.{prop}"), uri.to_string()));
        }
    }
    out.extend(crate::notify::config::endpoints(body));
    out
}

/// Merges `patch` into `base` ([Revisit]: properties absent from the body keep their value;
/// nested objects merge; `null` removes a property).
pub fn merge(base: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                base.remove(&k);
            }
            Value::Object(p) => match base.get_mut(&k) {
                Some(Value::Object(b)) => merge(b, p),
                _ => {
                    let mut fresh = Map::new();
                    merge(&mut fresh, p);
                    base.insert(k, Value::Object(fresh));
                }
            },
            other => {
                base.insert(k, other);
            }
        }
    }
}

/// Read access to the settings of a stored (already validated) configuration.
#[derive(Debug, Clone, Default)]
pub struct EntityConfig(pub Map<String, Value>);

impl EntityConfig {
    fn target(&self, key: &str) -> SchedulerTarget {
        match self
            .0
            .get("RestApi")
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
        {
            Some(BUILTIN) => SchedulerTarget::Builtin,
            Some(s) if !s.is_empty() => SchedulerTarget::Http(s.to_string()),
            _ => SchedulerTarget::None,
        }
    }
    pub(crate) fn search_appts(&self) -> SchedulerTarget {
        self.target("SearchAppts")
    }
    pub(crate) fn book_job(&self) -> SchedulerTarget {
        self.target("BookJob")
    }
    /// `WorkOrderRules.<OrderType>.CanScheduleFollowup`, else `WorkOrderRules.Default...`.
    pub(crate) fn rule_can_schedule_followup(&self, order_type: Option<&str>) -> Option<bool> {
        let rules = self.0.get("WorkOrderRules")?;
        order_type
            .and_then(|t| rules.get(t))
            .and_then(|r| r.get("CanScheduleFollowup"))
            .and_then(Value::as_bool)
            .or_else(|| {
                rules
                    .get("Default")
                    .and_then(|r| r.get("CanScheduleFollowup"))
                    .and_then(Value::as_bool)
            })
    }
    pub(crate) fn allow_any_reason(&self) -> bool {
        self.0
            .get("FollowUp")
            .and_then(|f| f.get("AllowAnyReason"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn bookjob_needs_placeholder_and_uris_must_be_absolute_http() {
        assert!(validate(&obj(json!({"RestApi": {"BookJob": "https://crm.example.com/wo/{0}/followup", "SearchAppts": "builtin:"}}))).is_ok());
        for bad in [
            json!({"RestApi": {"BookJob": "https://crm.example.com/wo/followup"}}),
            json!({"RestApi": {"SearchAppts": "ftp://x/y"}}),
            json!({"RestApi": {"SearchAppts": "/relative"}}),
            json!({"RestApi": {"SearchAppts": 12}}),
            json!({"RestApi": "builtin:"}),
            json!({"WorkOrderRules": {"Default": {"CanScheduleFollowup": "yes"}}}),
        ] {
            assert!(validate(&obj(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn dotted_names_are_nested_and_misspelt_sections_are_refused_with_the_right_spelling() {
        let n = normalize_names(obj(json!({
            "RestApi.BookJob": "https://crm.example.com/wo/{0}/followup",
            "RestApi": {"SearchAppts": "builtin:"},
            "Custom.Thing": 1
        })))
        .unwrap();
        assert_eq!(
            Value::Object(n),
            json!({"RestApi": {"BookJob": "https://crm.example.com/wo/{0}/followup", "SearchAppts": "builtin:"}, "Custom.Thing": 1})
        );
        for (bad, right) in [
            (json!({"RestAPI": {"BookJob": "builtin:"}}), "RestApi"),
            (json!({"restApi.BookJob": "builtin:"}), "RestApi"),
            (json!({"RestApi": {"bookJob": "builtin:"}}), "BookJob"),
            (json!({"RestApi.searchappts": "builtin:"}), "SearchAppts"),
        ] {
            match normalize_names(obj(bad.clone())) {
                Err(DomainError::Invalid(p)) => {
                    assert!(p[0].reason.contains(&format!("{right:?}")), "{bad}: {p:?}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn merge_keeps_absent_properties_and_null_removes() {
        let mut base =
            obj(json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}, "X": 1}));
        merge(
            &mut base,
            obj(json!({"RestApi": {"BookJob": "https://a/{0}"}, "X": null, "Y": [1]})),
        );
        assert_eq!(
            Value::Object(base),
            json!({"RestApi": {"BookJob": "https://a/{0}", "SearchAppts": "builtin:"}, "Y": [1]})
        );
    }

    #[test]
    fn rule_resolution_prefers_order_type_then_default() {
        let c = EntityConfig(obj(
            json!({"WorkOrderRules": {"Default": {"CanScheduleFollowup": false}, "REPAIR": {"CanScheduleFollowup": true}}}),
        ));
        assert_eq!(c.rule_can_schedule_followup(Some("REPAIR")), Some(true));
        assert_eq!(c.rule_can_schedule_followup(Some("INSTALL")), Some(false));
        assert_eq!(
            EntityConfig::default().rule_can_schedule_followup(None),
            None
        );
    }
}
