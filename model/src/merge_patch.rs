//! JSON merge patches (RFC 7396) between two versions of a document: how the
//! Overview's live feed sends only what changed since the version a browser
//! already has. Objects are compared key by key. A `null` in a patch removes
//! the key, so a field that became `None` is missing after [`apply`] and
//! reads back as `None`.
//!
//! One extension, because the Overview's lists (members, servers) keep their
//! length from one second to the next while a few numbers in them change:
//! an array of unchanged length is patched element by element, as an object
//! keyed by index (`{"2": {"lag_bytes": 0}}`). RFC 7396 would replace it
//! whole. This is unambiguous for documents (like the Overview) in which no
//! value is an array in one version and an object in another. An array whose
//! length changed is sent whole.

use serde_json::{Map, Value};

/// The patch that turns `old` into `new`, or None when they are equal.
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(p) = diff(ov, nv) {
                            patch.insert(k.clone(), p);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), strip_nulls(nv));
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            Some(Value::Object(patch))
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => Some(Value::Object(
            o.iter()
                .zip(n)
                .enumerate()
                .filter_map(|(i, (ov, nv))| diff(ov, nv).map(|p| (i.to_string(), p)))
                .collect(),
        )),
        // A patch cannot say "this object, exactly": an object replacing a
        // non-object is sent without its nulls (apply would drop them anyway).
        (_, n) => Some(strip_nulls(n)),
    }
}

/// Apply a merge patch to `doc` in place.
pub fn apply(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = patch.clone();
        return;
    };
    if let Value::Array(items) = doc {
        for (k, pv) in p {
            if let Some(item) = k.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                match pv {
                    Value::Null => *item = Value::Null,
                    pv => apply(item, pv),
                }
            }
        }
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(d) = doc else {
        unreachable!("made an object above")
    };
    for (k, pv) in p {
        if pv.is_null() {
            d.remove(k);
        } else {
            apply(d.entry(k.clone()).or_insert(Value::Null), pv);
        }
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(old: Value, new: Value) -> Option<Value> {
        let patch = diff(&old, &new);
        let mut doc = old.clone();
        if let Some(p) = &patch {
            apply(&mut doc, p);
        }
        assert_eq!(strip_nulls(&doc), strip_nulls(&new), "patch {patch:?}");
        patch
    }

    #[test]
    fn equal_documents_need_no_patch() {
        assert_eq!(
            round_trip(json!({"a": [1, 2], "b": {"c": 1}}), json!({"a": [1, 2], "b": {"c": 1}})),
            None
        );
    }

    #[test]
    fn only_changed_keys_are_sent() {
        let p = round_trip(
            json!({"observed": 1, "members": [{"name": "pg-0"}], "cluster": "pg", "nested": {"x": 1, "y": 2}}),
            json!({"observed": 2, "members": [{"name": "pg-0"}], "cluster": "pg", "nested": {"x": 1, "y": 3}}),
        );
        assert_eq!(p, Some(json!({"observed": 2, "nested": {"y": 3}})));
    }

    #[test]
    fn removed_and_nulled_keys_are_deleted_and_arrays_replaced() {
        let p = round_trip(
            json!({"gone": 1, "error": "x", "list": [1, 2, 3]}),
            json!({"error": null, "list": [1, 3], "new": {"a": null, "b": 1}}),
        );
        assert_eq!(
            p,
            Some(json!({"gone": null, "error": null, "list": [1, 3], "new": {"b": 1}}))
        );
    }

    #[test]
    fn arrays_of_the_same_length_are_patched_by_index() {
        let p = round_trip(
            json!({"members": [{"name": "pg-0", "lag": 0}, {"name": "pg-1", "lag": 5}, 7, null]}),
            json!({"members": [{"name": "pg-0", "lag": 0}, {"name": "pg-1", "lag": 9}, null, {"a": 1}]}),
        );
        assert_eq!(p, Some(json!({"members": {"1": {"lag": 9}, "2": null, "3": {"a": 1}}})));
        round_trip(json!([[1, 2], [3]]), json!([[1, 4], [3, 5]]));
    }

    #[test]
    fn scalars_and_type_changes_replace_the_value() {
        round_trip(json!(1), json!("one"));
        round_trip(json!({"a": 1}), json!([1]));
        round_trip(json!({"a": {"b": 1}}), json!({"a": [1, null]}));
        round_trip(json!({"a": 1}), json!({"a": {"b": 2, "c": null}}));
    }
}
