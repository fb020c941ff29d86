//! The rules every JSON body obeys before any handler sees it.
//!
//! `serde_json` keeps the last of two equal keys, so `{"reason":"a","reason":"b"}` would be
//! read one way here and perhaps another way by a proxy or an auditor's tool: duplicate keys
//! are refused, naming the key. Control characters (U+0000 to U+001F, U+007F to U+009F) other
//! than tab, newline and carriage return are refused in every string of every body: PostgreSQL
//! cannot store U+0000 in text, and no name, reason or response needs the others; checking them
//! here covers every free-text field of every endpoint, present and future, in one place.

use std::cell::RefCell;
use std::fmt;

use redtape_domain::values::forbidden_control;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body was refused before its shape was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// Not JSON at all (serde_json's message).
    Syntax(String),
    /// The object at `pointer`'s parent repeats the key that ends `pointer`.
    DuplicateKey { pointer: String },
    /// Strings holding forbidden control characters, by JSON pointer, in document order.
    ControlCharacters { pointers: Vec<String> },
}

/// Parses `body` as JSON, refusing duplicate keys and control characters in strings.
pub fn parse(body: &[u8]) -> Result<Value, BodyRule> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Seed {
        path: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    let value = match parsed {
        Ok(value) => value,
        Err(e) => {
            return Err(match duplicate.into_inner() {
                Some(pointer) => BodyRule::DuplicateKey { pointer },
                None => BodyRule::Syntax(e.to_string()),
            })
        }
    };
    let mut pointers = Vec::new();
    find_control(&value, &mut String::new(), &mut pointers);
    if pointers.is_empty() {
        Ok(value)
    } else {
        Err(BodyRule::ControlCharacters { pointers })
    }
}

/// RFC 6901: `~` and `/` in a key are escaped.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn find_control(value: &Value, path: &mut String, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s.chars().any(forbidden_control) => found.push(path.clone()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                find_control(item, path, found);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                path.push('/');
                path.push_str(&escape(key));
                find_control(item, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Builds a [`Value`] like serde_json's own, but stops at the first repeated key and records
/// where it was (serde's error type cannot carry it, so it goes through `duplicate`).
struct Seed<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Seed {
                path: format!("{}/{}", self.path, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let path = format!("{}/{}", self.path, escape(&key));
            if map.contains_key(&key) {
                let detail = format!("duplicate key at {path}");
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom(detail));
            }
            let value = access.next_value_seed(Seed {
                path,
                duplicate: self.duplicate,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_serde_json_accepts_and_equals_it() {
        let body = br#"{"a":[1,-2,3.5,"x\ty\n",null,true,{"b":{}}],"c/d~":"\u00e9"}"#;
        let strict = parse(body).unwrap();
        let plain: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(strict, plain);
    }

    #[test]
    fn names_the_repeated_key_with_its_pointer() {
        assert_eq!(
            parse(br#"{"reason":"a","reason":"b"}"#),
            Err(BodyRule::DuplicateKey {
                pointer: "/reason".into()
            })
        );
        assert_eq!(
            parse(br#"{"costs":[{"x":1},{"a/b":1,"a/b":2}]}"#),
            Err(BodyRule::DuplicateKey {
                pointer: "/costs/1/a~1b".into()
            })
        );
        // Equal keys in different objects are fine.
        assert!(parse(br#"{"a":{"k":1},"b":{"k":2}}"#).is_ok());
    }

    #[test]
    fn refuses_control_characters_but_tab_and_newline() {
        assert_eq!(
            parse(br#"{"reason":"x\u0000","ok":"a\tb\r\n","list":["\u001b[31m","\u0085"]}"#),
            Err(BodyRule::ControlCharacters {
                pointers: vec!["/list/0".into(), "/list/1".into(), "/reason".into()]
            })
        );
    }

    #[test]
    fn syntax_errors_and_trailing_data_stay_syntax_errors() {
        assert!(matches!(parse(b"{\"a\":"), Err(BodyRule::Syntax(_))));
        assert!(matches!(parse(b"{} {}"), Err(BodyRule::Syntax(_))));
        assert!(matches!(parse(b""), Err(BodyRule::Syntax(_))));
    }
}
