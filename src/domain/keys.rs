//! The keys a configuration file accepts, read from the serde types that parse it, so that
//! nothing has to list them by hand: every table of the file (a struct, or a list of them)
//! with its keys, in the order the struct declares them. The configuration reference
//! (docs/configuration.md) is checked against these lists, so a key added to a struct is a key
//! the reference must describe.
//!
//! How: the type is deserialized from a tracer, once per key. The tracer answers each struct
//! with a map holding only the next key of the path being explored, passes through options,
//! lists and `Spanned` wrappers, and stops at anything else (a string, a number, an untagged
//! enum, a free-form table such as a connector's `env`): those are the leaves. Deserializing
//! fails every time — a required key is always missing — but by then the struct on the path
//! has told its keys (serde's `FIELDS`), which is all that is wanted.

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
};

/// One table of a file and the keys it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// From the top of the file: `[]` for the top itself, `["server"]`, `["resources", "roles"]`.
    pub path: Vec<&'static str>,
    /// Written as an array of tables: `[[resources.roles]]`.
    pub array: bool,
    /// Its keys, as the struct declares them.
    pub keys: Vec<&'static str>,
}

impl Table {
    /// The TOML header that opens it: `[server]`, `[[resources.roles]]`; `top level` for the
    /// top of the file, which has no header.
    pub fn header(&self) -> String {
        let name = self.path.join(".");
        match (self.path.is_empty(), self.array) {
            (true, _) => "top level".to_owned(),
            (false, true) => format!("[[{name}]]"),
            (false, false) => format!("[{name}]"),
        }
    }
}

/// Deeper than this, a type that contains itself is not explored further.
const MAX_DEPTH: usize = 8;

/// Every table `T` accepts, the top first, then in the order they are reached.
pub fn tables_of<T: DeserializeOwned>() -> Vec<Table> {
    let found = RefCell::new(Vec::<Table>::new());
    let mut explored = BTreeSet::new();
    let mut paths: VecDeque<Vec<&'static str>> = VecDeque::from([Vec::new()]);
    while let Some(target) = paths.pop_front() {
        if target.len() > MAX_DEPTH || !explored.insert(target.clone()) {
            continue;
        }
        let tracer = Tracer {
            target: &target,
            depth: 0,
            array: false,
            found: &found,
        };
        // Always an error (see the module's comment); what matters is what it recorded.
        let _ = T::deserialize(tracer);
        for table in found.borrow().iter() {
            for key in &table.keys {
                let mut path = table.path.clone();
                path.push(key);
                if !explored.contains(&path) {
                    paths.push_back(path);
                }
            }
        }
    }
    found.into_inner()
}

/// Why tracing stopped: always, at a leaf or a missing key.
#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("traced")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

/// What `toml::Spanned<T>` deserializes as: a struct of that name whose `value` is the `T`.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";

/// A deserializer standing at `target[..depth]`, on the way to `target`.
#[derive(Clone, Copy)]
struct Tracer<'a> {
    target: &'a [&'static str],
    depth: usize,
    /// Reached through a list: the table there is an array of tables.
    array: bool,
    found: &'a RefCell<Vec<Table>>,
}

impl<'a> Tracer<'a> {
    fn record(&self, keys: &'static [&'static str]) {
        let path = self.target[..self.depth].to_vec();
        let mut found = self.found.borrow_mut();
        if !found.iter().any(|t| t.path == path) {
            found.push(Table {
                path,
                array: self.array,
                keys: keys.to_vec(),
            });
        }
    }

    fn deeper(self) -> Tracer<'a> {
        Tracer {
            depth: self.depth + 1,
            array: false,
            ..self
        }
    }
}

impl<'de> Deserializer<'de> for Tracer<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        if name == SPANNED {
            return visitor.visit_map(OneKey {
                key: Some(SPANNED_VALUE),
                value: self,
            });
        }
        self.record(fields);
        let key = self.target.get(self.depth).copied();
        visitor.visit_map(OneKey {
            key,
            value: self.deeper(),
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(OneElement {
            element: Some(Tracer {
                array: true,
                ..self
            }),
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct map enum identifier ignored_any
    }
}

/// A map holding at most one key, whose value is traced further.
struct OneKey<'a> {
    key: Option<&'static str>,
    value: Tracer<'a>,
}

impl<'de> MapAccess<'de> for OneKey<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.key.take() {
            Some(key) => seed
                .deserialize(BorrowedStrDeserializer::new(key))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        seed.deserialize(self.value)
    }
}

/// A list holding one element, traced further.
struct OneElement<'a> {
    element: Option<Tracer<'a>>,
}

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Stop;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Stop> {
        match self.element.take() {
            Some(tracer) => seed.deserialize(tracer).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use toml::Spanned;

    use super::*;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        server: Server,
        #[serde(default)]
        connectors: Vec<Connector>,
        extra: Option<Spanned<Extra>>,
        #[serde(skip)]
        internal: u8,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Server {
        listen: String,
        #[serde(rename = "cache_mb")]
        cache: u64,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Connector {
        id: Spanned<String>,
        env: BTreeMap<String, String>,
        stages: Vec<Spanned<Stage>>,
        pairs: Vec<(String, String)>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Stage {
        quorum: Option<Quorum>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Quorum {
        Count(i64),
        Word(String),
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Extra {
        when: Vec<String>,
    }

    fn table(path: &[&'static str], array: bool, keys: &[&'static str]) -> Table {
        Table {
            path: path.to_vec(),
            array,
            keys: keys.to_vec(),
        }
    }

    #[test]
    fn every_table_of_a_type_is_found_with_its_keys_as_serde_reads_them() {
        assert_eq!(
            tables_of::<File>(),
            vec![
                table(&[], false, &["server", "connectors", "extra"]),
                table(&["server"], false, &["listen", "cache_mb"]),
                table(&["connectors"], true, &["id", "env", "stages", "pairs"]),
                table(&["extra"], false, &["when"]),
                table(&["connectors", "stages"], true, &["quorum"]),
            ]
        );
    }

    #[test]
    fn a_table_is_named_as_its_toml_header() {
        assert_eq!(table(&[], false, &[]).header(), "top level");
        assert_eq!(table(&["server"], false, &[]).header(), "[server]");
        assert_eq!(
            table(&["resources", "roles"], true, &[]).header(),
            "[[resources.roles]]"
        );
    }
}
