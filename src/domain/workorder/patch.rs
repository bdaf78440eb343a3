//! PATCH and POST (update) of a stored work order (docs/api.md §5). Both are merges of JSON
//! objects by definition, so they work on the wire object; the result is validated and typed
//! again like any body.

use serde_json::{Map, Value};

use super::WorkOrder;
use crate::domain::DomainError;

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

/// PATCH (§5) of a stored order: only the supplied properties change; nested objects merge;
/// collection items are matched by their key and removed with `"Delete": true`; `_fields` names
/// (dotted) properties to remove. The result is a wire object, to be validated again.
pub(crate) fn apply_patch(
    base: &WorkOrder,
    patch: Map<String, Value>,
) -> Result<Map<String, Value>, DomainError> {
    merge_patch(base.to_map(), patch)
}

/// The JSON merge of [`apply_patch`], on wire objects.
fn merge_patch(
    mut out: Map<String, Value>,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, DomainError> {
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
pub(crate) fn apply_update(base: &WorkOrder, update: Map<String, Value>) -> Map<String, Value> {
    let mut out = base.to_map();
    out.extend(update);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::wo;
    use super::*;

    #[test]
    fn patch_merges_deletes_items_by_key_and_removes_fields() {
        let base = json!({"OrderNum": "WO-1", "Notes": "n", "Location": {"Name": "A", "Notes": "x"},
            "TimeConstraints": [{"ID": "a", "Type": "1001"}, {"ID": "b", "Type": "1001"}]});
        let out = merge_patch(
            base.as_object().unwrap().clone(),
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

    #[test]
    fn patch_of_a_typed_order_merges_nested_objects_and_items_keeping_what_it_does_not_name() {
        let base = wo(json!({
            "OrderStatus": 7, "UserName": "tom",
            "Location": {"ServiceAreaID": "N", "Gate": {"Code": "1234"},
                "Address": {"Lat": "41.95", "Lon": -87.65, "Zip": "60601", "Door": "red"}},
            "TimeConstraints": [
                {"ID": "a", "Type": "1001", "Source": "crm",
                 "Period": {"Start": "2026-12-01T08:00:00Z", "End": "2026-12-01T12:00:00Z", "Zone": "CT"}},
                {"ID": "b", "Type": 1002, "Period": {"Start": "2026-12-02T08:00:00Z", "End": "2026-12-02T12:00:00Z"}}
            ],
            "RequiredParts": [{"ProdNum": "P1", "Qty": 2, "Bin": "A3"}, {"ProdNum": "P2", "Qty:": 1.5}]
        }))
        .unwrap();
        let patch = json!({
            "Location": {"Address": {"Lat": 42.0, "Floor": 3}, "Gate": {"Open": true}},
            "TimeConstraints": [
                {"ID": "a", "Period": {"End": "2026-12-01T14:00:00+01:00"}, "Source": null},
                {"ID": "b", "Delete": true},
                {"ID": "c", "Type": "1003", "Why": "holiday",
                 "Period": {"Start": "2026-12-03T08:00:00Z", "End": "2026-12-03T09:00:00Z"}}
            ],
            "RequiredParts": [{"ProdNum": "P2", "Qty": 3, "Note": "rush"}]
        });
        let merged = apply_patch(&base, patch.as_object().unwrap().clone()).unwrap();
        let patched = wo(Value::Object(merged)).unwrap();
        assert_eq!(
            patched.to_value(),
            json!({
                "OrderNum": "WO-1", "OrderStatus": 7, "UserName": "tom",
                "Location": {"ServiceAreaID": "N", "Gate": {"Code": "1234", "Open": true},
                    "Address": {"Lat": 42.0, "Lon": -87.65, "Zip": "60601", "Door": "red", "Floor": 3}},
                "TimeConstraints": [
                    {"ID": "a", "Type": "1001", "Source": null,
                     "Period": {"Start": "2026-12-01T08:00:00.000Z", "End": "2026-12-01T13:00:00.000Z", "Zone": "CT"}},
                    {"ID": "c", "Type": "1003", "Why": "holiday",
                     "Period": {"Start": "2026-12-03T08:00:00.000Z", "End": "2026-12-03T09:00:00.000Z"}}
                ],
                "RequiredParts": [{"ProdNum": "P1", "Qty": 2, "Bin": "A3"}, {"ProdNum": "P2", "Qty": 3, "Note": "rush"}]
            })
        );
        let (lat, _) = patched.coordinates().unwrap();
        assert_eq!(lat, 42.0);
        assert_eq!(
            patched.promised_window().map(|w| w.1.to_string()),
            Some("2026-12-01T13:00:00.000Z".to_string())
        );
    }

    #[test]
    fn update_replaces_the_given_top_level_properties_whole() {
        let base =
            wo(json!({"UserName": "tom", "Location": {"ServiceAreaID": "N", "Gate": 1}})).unwrap();
        let out = apply_update(
            &base,
            json!({"Location": {"ServiceAreaID": "S"}, "Custom": null})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            wo(Value::Object(out)).unwrap().to_value(),
            json!({"OrderNum": "WO-1", "UserName": "tom", "Location": {"ServiceAreaID": "S"}, "Custom": null})
        );
    }
}
