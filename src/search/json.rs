//! Reading the run directory's JSON back with errors that name the file
//! and the key: a corrupt or foreign checkpoint must be a clear error,
//! never a panic or a silent default.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The fields of one JSON object of `file`.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    file: &'a str,
}

impl<'a> Fields<'a> {
    /// `value` must be an object.
    pub fn of(value: &'a Value, file: &'a str, what: &str) -> Result<Fields<'a>> {
        match value.as_object() {
            Some(map) => Ok(Fields { map, file }),
            None => Err(bad(file, format!("{what} is not a JSON object"))),
        }
    }

    pub fn get(&self, key: &str) -> Result<&'a Value> {
        self.map
            .get(key)
            .ok_or_else(|| bad(self.file, format!("the key `{key}` is missing")))
    }

    pub fn opt(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn typed<T>(&self, key: &str, kind: &str, f: impl Fn(&Value) -> Option<T>) -> Result<T> {
        f(self.get(key)?).ok_or_else(|| bad(self.file, format!("`{key}` is not {kind}")))
    }

    pub fn str(&self, key: &str) -> Result<&'a str> {
        let v = self.get(key)?;
        v.as_str()
            .ok_or_else(|| bad(self.file, format!("`{key}` is not a string")))
    }

    pub fn u64(&self, key: &str) -> Result<u64> {
        self.typed(key, "a non-negative integer", Value::as_u64)
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        self.typed(key, "a non-negative integer", |v| {
            v.as_u64().and_then(|n| usize::try_from(n).ok())
        })
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        self.typed(key, "a number", Value::as_f64)
    }

    pub fn bool(&self, key: &str) -> Result<bool> {
        self.typed(key, "true or false", Value::as_bool)
    }

    pub fn array(&self, key: &str) -> Result<&'a Vec<Value>> {
        let v = self.get(key)?;
        v.as_array()
            .ok_or_else(|| bad(self.file, format!("`{key}` is not a list")))
    }

    pub fn object(&self, key: &str) -> Result<Fields<'a>> {
        Fields::of(self.get(key)?, self.file, &format!("`{key}`"))
    }

    /// A 16-hex-digit hash.
    pub fn hash(&self, key: &str) -> Result<u64> {
        parse_hash(self.str(key)?).ok_or_else(|| bad(self.file, format!("`{key}` is not a hash")))
    }

    pub fn file(&self) -> &'a str {
        self.file
    }
}

/// An error about the contents of `file`.
pub fn bad(file: &str, message: String) -> Error {
    Error::Input {
        path: file.to_string(),
        line: None,
        message,
    }
}

/// 16 hex digits.
pub fn parse_hash(text: &str) -> Option<u64> {
    (text.len() == 16)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}

/// A finite number, or `null` (JSON has no infinities).
pub fn num(v: f64) -> Value {
    if v.is_finite() {
        Value::from(v)
    } else {
        Value::Null
    }
}

/// Read a JSON file.
pub fn read(path: &std::path::Path) -> Result<Value> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(&shown, e))?;
    serde_json::from_str(&text).map_err(|e| bad(&shown, format!("not valid JSON: {e}")))
}

/// Read `value` as a `T` through its serde derive; an error names `file`,
/// `what` is read and the key at fault (serde_json's own message names a
/// missing field, and the key is found for a value of the wrong type).
pub fn typed<T: serde::de::DeserializeOwned>(value: &Value, file: &str, what: &str) -> Result<T> {
    T::deserialize(value).map_err(|e| {
        let at = key_at_fault::<T>(value).map_or(String::new(), |k| format!(" (at `{k}`)"));
        bad(file, format!("{what}: {e}{at}"))
    })
}

/// The key whose value `T` refuses: the value is printed one key a line
/// and read again, and the error's line leads to the key (an item of a
/// list leads to the list's key).
fn key_at_fault<T: serde::de::DeserializeOwned>(value: &Value) -> Option<String> {
    let text = serde_json::to_string_pretty(value).ok()?;
    let e = serde_json::from_str::<T>(&text).err()?;
    let lines: Vec<&str> = text.lines().collect();
    let at = e.line().checked_sub(1)?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let depth = indent(lines.get(at)?);
    lines[..=at]
        .iter()
        .rev()
        .filter(|l| indent(l) <= depth)
        .find_map(|l| {
            let rest = l.trim_start().strip_prefix('"')?;
            let (key, tail) = rest.split_once("\": ")?;
            (!tail.is_empty()).then(|| key.to_string())
        })
}

/// Serde through `Display`/`FromStr`: a typed value kept in JSON as the
/// text a user writes (`"cuda:2"`, `"bleu=0,ppl=1,acc=1"`).
pub mod text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }

    /// The same for an `Option` (`null` is `None`).
    pub mod opt {
        use super::*;

        pub fn serialize<T: Display, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_str(v),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
        where
            T: FromStr,
            T::Err: Display,
            D: Deserializer<'de>,
        {
            Option::<String>::deserialize(d)?
                .map(|s| s.parse().map_err(D::Error::custom))
                .transpose()
        }
    }
}
