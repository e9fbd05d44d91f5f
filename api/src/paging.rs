//! Paging for the lists whose items have a stable, unique sort key (an id
//! or a name): webhooks, tenants, API keys, event types. Every list of the
//! API answers the same shape, `{"data": [...], "next": "…"}`, and takes
//! `limit` and `cursor`, so clients and the console page them all alike
//! (the delivery log has its own cursor: its order is by time, across
//! several sources).
//!
//! The cursor is the last key of a page, base64url-encoded so clients treat
//! it as opaque; the next page holds the keys after it. A page is stable
//! while items are added or removed: nothing already seen comes again and
//! nothing after the cursor is skipped.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::ApiError;

/// Default page size of the lists paged here.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 250;

/// A page request: at most `limit` items after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// The last key of the previous page.
    pub after: Option<String>,
}

impl PageRequest {
    /// From the `limit` and `cursor` query parameters; a cursor this API
    /// did not return is a 400 naming `cursor`.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(ApiError::bad_param(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                ))
            }
        };
        let after = cursor.map(decode).transpose()?;
        Ok(Self {
            limit: limit as usize,
            after,
        })
    }

    /// One page of `items`, which must be sorted by `key` ascending with
    /// unique keys; the cursor of the next page when more follow.
    pub fn page<T>(&self, items: Vec<T>, key: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
        let mut out: Vec<T> = Vec::with_capacity(self.limit.min(items.len()));
        let mut more = false;
        for item in items {
            if self
                .after
                .as_deref()
                .is_some_and(|after| key(&item) <= after)
            {
                continue;
            }
            if out.len() == self.limit {
                more = true;
                break;
            }
            out.push(item);
        }
        let next = if more {
            out.last().map(|last| encode(key(last)))
        } else {
            None
        };
        (out, next)
    }
}

/// The cursor for a page ending at `key`.
pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("k:{key}"))
}

fn decode(cursor: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_param("cursor", "not a cursor returned by this API");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let key = raw.strip_prefix("k:").ok_or_else(bad)?;
    if key.is_empty() || key.len() > 200 {
        return Err(bad());
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i:03}")).collect()
    }

    #[test]
    fn pages_walk_the_list_once_and_stop() {
        let mut request = PageRequest::parse(Some(4), None).unwrap();
        let mut seen = Vec::new();
        loop {
            let (page, next) = request.page(keys(10), |k| k.as_str());
            assert!(page.len() <= 4);
            seen.extend(page);
            match next {
                Some(cursor) => request = PageRequest::parse(Some(4), Some(&cursor)).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, keys(10));
        // An exact multiple ends without an empty page after it.
        let (page, next) = PageRequest::parse(Some(5), Some(&encode("k004")))
            .unwrap()
            .page(keys(10), |k| k.as_str());
        assert_eq!(page.len(), 5);
        assert_eq!(next, None);
    }

    #[test]
    fn bad_limits_and_cursors_name_their_parameter() {
        for limit in [0, 251, 100_000] {
            let err = PageRequest::parse(Some(limit), None).unwrap_err();
            assert_eq!(err.into_body().field.as_deref(), Some("limit"));
        }
        for cursor in ["***", "bm9wZQ", "", "azo"] {
            let err = PageRequest::parse(None, Some(cursor)).unwrap_err();
            assert_eq!(err.into_body().field.as_deref(), Some("cursor"), "{cursor}");
        }
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
    }
}
