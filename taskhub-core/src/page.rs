//! Keyset (cursor) pagination shared by every list.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde::{Serialize, de::DeserializeOwned};

/// Default number of rows in a page.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 200;

/// A request for one page: its size and the opaque cursor of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page (1..=200); `None` means the default of 50.
    pub page_size: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The first page of `size` rows.
    pub fn first(size: u32) -> Self {
        PageRequest { page_size: Some(size), cursor: None }
    }

    /// The page size, validated against the bounds.
    pub fn size(&self) -> Result<u32> {
        match self.page_size {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            Some(_) => Err(Error::field("page_size", format!("must be between 1 and {MAX_PAGE_SIZE}"))),
        }
    }

    /// Decodes the cursor into the position type `P`; a malformed cursor is a validation error.
    pub fn position<P: DeserializeOwned>(&self) -> Result<Option<P>> {
        let Some(c) = &self.cursor else {
            return Ok(None);
        };
        let bad = || Error::field("cursor", "is not a valid cursor");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }
}

/// Encodes a position into an opaque cursor.
pub fn encode_cursor<P: Serialize>(p: &P) -> Result<String> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(p)?))
}

/// One page of results.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Page<T> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// Cursor of the next page, `None` on the last page.
    pub next_cursor: Option<String>,
    /// The page size that was applied.
    pub page_size: u32,
    /// Total rows matching the filters, where counting is cheap.
    pub count: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from `size + 1` fetched rows: the extra row only says another page exists.
    pub fn from_overfetch<P: Serialize>(
        mut rows: Vec<T>,
        size: u32,
        count: Option<i64>,
        position_of: impl Fn(&T) -> P,
    ) -> Result<Self> {
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        let next_cursor = match (more, rows.last()) {
            (true, Some(last)) => Some(encode_cursor(&position_of(last))?),
            _ => None,
        };
        Ok(Page { items: rows, next_cursor, page_size: size, count })
    }

    /// Maps the rows, keeping the paging information.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
            page_size: self.page_size,
            count: self.count,
        }
    }
}
