//! An observation's other fields: a small map from names to JSON values.
//!
//! An observation carries a dozen or two of these, built once by an adapter, read by name a
//! few times (correlation looks up `feeder`, `name` and the configured asset fields) and
//! serialized once into the store. A sorted vector suits that better than a tree: an adapter
//! that adds its fields in name order only appends, a lookup is a binary search over one
//! allocation, and the names an adapter knows in advance are `&'static str`, not copies.
//! Serialized, it is a JSON object with its keys in sorted order, byte for byte what a
//! `serde_json::Map` gives, so stored fields and observation digests are unchanged.

use std::borrow::Cow;
use std::fmt;
use std::ops::Index;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A field's name: static for the names an adapter knows, owned for names from the feed.
pub type FieldName = Cow<'static, str>;

/// Names and JSON values, at most one value per name, kept sorted by name.
#[derive(Clone, Default, PartialEq)]
pub struct Fields {
    entries: Vec<(FieldName, Value)>,
}

impl Fields {
    /// No fields.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    /// The value named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.entries[i].1)
    }

    /// Whether a value is named `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets the value named `key`, returning the one it replaces. Adding names in ascending
    /// order appends without a search; a name out of order moves every name after it, so many
    /// names in no particular order (a payload's keys) are better collected and made into
    /// `Fields` at once (`collect`, or `From<Vec<_>>`), which sorts them.
    pub fn insert(&mut self, key: impl Into<FieldName>, value: Value) -> Option<Value> {
        let key = key.into();
        if self.entries.last().is_none_or(|(last, _)| last.as_ref() < key.as_ref()) {
            self.entries.push((key, value));
            return None;
        }
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Takes out the value named `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Names and values, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }

    /// A copy as a JSON object map.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect()
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// `fields["name"]`, like `serde_json::Map`: panics when there is no such field.
impl Index<&str> for Fields {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or_else(|| panic!("no field named {key:?}"))
    }
}

/// A JSON object's members. They come out of the map sorted and distinct, so this costs one
/// comparison a member; the check stays so that the order holds even if serde_json's
/// `preserve_order` feature is ever turned on.
impl From<Map<String, Value>> for Fields {
    fn from(map: Map<String, Value>) -> Fields {
        Fields::from(map.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect::<Vec<_>>())
    }
}

/// The JSON object map of the same fields, for a value nested in another (a map's members
/// are `Value`s, and an object among them is a `serde_json::Map`).
impl From<Fields> for Map<String, Value> {
    fn from(fields: Fields) -> Map<String, Value> {
        fields.entries.into_iter().map(|(k, v)| (k.into_owned(), v)).collect()
    }
}

/// Collects pairs in any order; of two values with one name the later wins, as it does for a
/// map and for a JSON object read by serde_json.
impl<K: Into<FieldName>> FromIterator<(K, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Fields {
        Fields::from(iter.into_iter().map(|(k, v)| (k.into(), v)).collect::<Vec<_>>())
    }
}

/// Takes pairs in any order (as [`FromIterator`]); pairs already in strictly ascending name
/// order, as an adapter that knows its names can give them, cost one comparison each.
impl From<Vec<(FieldName, Value)>> for Fields {
    fn from(mut entries: Vec<(FieldName, Value)>) -> Fields {
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable, so equal names keep their order; of each run of one name the first stays
            // in place and takes the last one's value.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                same
            });
        }
        Fields { entries }
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Fields, A::Error> {
                let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0).min(256));
                while let Some((k, v)) = access.next_entry::<String, Value>()? {
                    pairs.push((k, v));
                }
                Ok(pairs.into_iter().collect())
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, i64),
        Remove(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = "[a-d]{0,2}";
        prop_oneof![
            3 => (key, any::<i64>()).prop_map(|(k, v)| Op::Insert(k, v)),
            1 => key.prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Any sequence of insertions and removals leaves the same contents, the same answers
        /// and the same JSON as a `serde_json::Map` given that sequence.
        #[test]
        fn behaves_as_a_json_map(ops in proptest::collection::vec(op(), 0..40)) {
            let (mut fields, mut model) = (Fields::new(), Map::new());
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(fields.insert(k.clone(), json!(v)), model.insert(k, json!(v))),
                    Op::Remove(k) => prop_assert_eq!(fields.remove(&k), model.remove(&k)),
                }
                prop_assert_eq!(fields.len(), model.len());
            }
            for k in ["", "a", "ab", "d", "dd", "e"] {
                prop_assert_eq!(fields.get(k), model.get(k));
                prop_assert_eq!(fields.contains_key(k), model.contains_key(k));
            }
            prop_assert_eq!(fields.keys().collect::<Vec<_>>(), model.keys().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(serde_json::to_string(&fields).unwrap(), serde_json::to_string(&model).unwrap());
            prop_assert_eq!(&fields.to_map(), &model);
            prop_assert_eq!(&Fields::from(model.clone()), &fields);
        }

        /// Collecting pairs in any order, and reading a JSON object with repeated names, keep
        /// the last value of each name, as a map does.
        #[test]
        fn collecting_and_reading_keep_the_last_of_a_name(pairs in proptest::collection::vec(("[a-c]{1,2}", any::<i64>()), 0..20)) {
            let model: BTreeMap<String, Value> = pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let fields: Fields = pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            prop_assert_eq!(fields.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect::<BTreeMap<_, _>>(), model.clone());
            prop_assert_eq!(fields.len(), model.len());

            let members: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            let read: Fields = serde_json::from_str(&format!("{{{}}}", members.join(","))).unwrap();
            prop_assert_eq!(read, fields);
        }
    }

    #[test]
    fn static_and_owned_names_are_one_name() {
        let mut f = Fields::new();
        f.insert("zone", json!("door"));
        assert_eq!(f.insert(String::from("zone"), json!("gate")), Some(json!("door")));
        assert_eq!(f["zone"], json!("gate"));
        assert_eq!(f.len(), 1);
        assert_eq!(format!("{f:?}"), r#"{"zone": String("gate")}"#);
    }
}
