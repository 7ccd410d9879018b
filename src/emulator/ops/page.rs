//! `NextToken`/`Limit` pagination.
//!
//! Lists are ordered by a sort key (creation time, then id); the token is the hex of the last
//! key returned, so a page boundary survives deletions and insertions between calls (an item
//! created later sorts after every earlier one). Ranked results (`MatchImage`) page by position.

use super::super::error::ApiError;

/// One page of `items` (in any order) after `token`, in `key` order, at most `limit` long, with
/// the token of the next page (empty when this is the last).
///
/// Keys are made once an item and only the page is sorted: a describe of 10,000 groups that
/// sorted them all by a freshly formatted key at every comparison took tens of milliseconds a
/// page under the store's lock, and a node walking its 500 pages never finished (issue #21).
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, String), ApiError> {
    let after = token.map(decode).transpose()?;
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .map(|item| (key(&item), item))
        .filter(|(k, _)| after.as_ref().is_none_or(|after| k > after))
        .collect();
    let more = rest.len() > limit;
    if more {
        // The `limit` smallest keys before index `limit`, in no order yet.
        rest.select_nth_unstable_by(limit, |a, b| a.0.cmp(&b.0));
        rest.truncate(limit);
    }
    rest.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let next = if more {
        rest.last().map(|(k, _)| hex::encode(k)).unwrap_or_default()
    } else {
        String::new()
    };
    Ok((rest.into_iter().map(|(_, item)| item).collect(), next))
}

fn decode(token: &str) -> Result<String, ApiError> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid("NextToken", "not a token this service returned"))
}

/// A sort key that orders by time, then id.
pub fn time_key(at: jiff::Timestamp, id: &str) -> String {
    format!("{:024}/{id}", at.as_nanosecond().max(0))
}

/// `Limit`: `default` when absent, capped at `max`, at least 1.
pub fn limit(
    p: &super::super::params::Params,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match p.int("Limit")? {
        None => Ok(default),
        Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(max).min(max)),
        Some(_) => Err(ApiError::invalid("Limit", "must be at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_list_once_and_survive_a_deletion() {
        let items: Vec<u32> = (1..=45).collect();
        let key = |i: &u32| format!("{i:04}");
        let (first, token) = page(items.clone(), key, None, 20).expect("page 1");
        assert_eq!(first, (1..=20).collect::<Vec<_>>());
        assert!(!token.is_empty());
        // Item 21 is deleted between calls: the next page starts at 22, nothing is skipped.
        let without: Vec<u32> = items.iter().copied().filter(|i| *i != 21).collect();
        let (second, token) = page(without.clone(), key, Some(&token), 20).expect("page 2");
        assert_eq!(second, (22..=41).collect::<Vec<_>>());
        let (third, token) = page(without, key, Some(&token), 20).expect("page 3");
        assert_eq!(third, (42..=45).collect::<Vec<_>>());
        assert_eq!(token, "", "the last page has an empty token");
    }

    #[test]
    fn items_in_any_order_page_in_key_order() {
        let mut items: Vec<u32> = (1..=45).collect();
        items.reverse();
        items.swap(3, 30);
        let key = |i: &u32| format!("{i:04}");
        let (first, token) = page(items.clone(), key, None, 20).expect("page 1");
        assert_eq!(first, (1..=20).collect::<Vec<_>>());
        let (second, _) = page(items, key, Some(&token), 20).expect("page 2");
        assert_eq!(second, (21..=40).collect::<Vec<_>>());
    }

    #[test]
    fn an_exact_fit_has_no_next_page_and_bad_tokens_are_rejected() {
        let items: Vec<u32> = (1..=20).collect();
        let (all, token) = page(items.clone(), |i| format!("{i:04}"), None, 20).expect("page");
        assert_eq!(all.len(), 20);
        assert_eq!(token, "");
        let error = page(items, |i| format!("{i:04}"), Some("zz"), 20).expect_err("bad token");
        assert_eq!(error.code, "InvalidParameter.NextToken");
    }

    #[test]
    fn time_keys_sort_by_time_then_id() {
        let t1 = jiff::Timestamp::from_second(100).expect("t");
        let t2 = jiff::Timestamp::from_second(1000).expect("t");
        assert!(time_key(t1, "eci-z") < time_key(t2, "eci-a"));
        assert!(time_key(t1, "eci-a") < time_key(t1, "eci-b"));
    }
}
