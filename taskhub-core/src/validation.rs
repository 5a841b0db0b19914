//! Building blocks for input validation: a collector of per-field messages and the
//! absent/null/value distinction that PATCH needs.

use crate::error::{Error, FieldErrors};
use serde::{Deserialize, Deserializer};

/// Collects messages per field, then turns into [`Error::Validation`] if any were added.
#[derive(Debug, Default)]
pub struct Violations(FieldErrors);

impl Violations {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` against `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_default().push(message.into());
    }

    /// Runs a check that yields a value or a message; records the message and returns `None`.
    pub fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.add(field, m);
                None
            }
        }
    }

    /// `Ok(())` when nothing was recorded, else the validation error.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::Validation { fields: self.0 }) }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A field of a partial update: absent (leave as is), explicit `null` (clear), or a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    /// The field was not in the request.
    #[default]
    Absent,
    /// The field was `null`.
    Null,
    /// The field had a value.
    Value(T),
}

impl<T> Patch<T> {
    /// True unless the field was absent.
    pub fn is_present(&self) -> bool {
        !matches!(self, Patch::Absent)
    }

    /// The present value as an `Option` (`Null` → `Some(None)`), `None` when absent.
    pub fn into_option(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

impl<T: serde::Serialize> serde::Serialize for Patch<T> {
    /// An absent or null field serializes as `null` (schemas and echoes; requests never need it).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Value(v) => v.serialize(s),
            Patch::Absent | Patch::Null => s.serialize_none(),
        }
    }
}

/// Counts characters (Unicode scalar values), which is what the API's length bounds mean.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Checks `min..=max` characters, returning the message API clients see.
pub fn length(s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = char_len(s);
    if n < min {
        if min == 1 { Err("must not be empty".into()) } else { Err(format!("must be at least {min} characters")) }
    } else if n > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}
