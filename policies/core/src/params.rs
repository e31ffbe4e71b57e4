//! Parsing of policy parameters (`params` key/value pairs).

/// `"a:2, b:1"` or `"a=2,b=1"` → `[("a", 2), ("b", 1)]`. Malformed entries are errors, so a
/// typo is reported instead of silently weighting a cluster 0.
pub fn weights(text: &str) -> Result<Vec<(&str, u64)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (name, w) = entry.split_once([':', '=']).ok_or_else(|| format!("weight entry {entry:?} is not name:weight"))?;
            let w = w.trim().parse::<u64>().map_err(|_| format!("weight of {:?} is not a non-negative integer: {w:?}", name.trim()))?;
            Ok((name.trim(), w))
        })
        .collect()
}

pub fn seconds(value: Option<&str>, default: u32, name: &str) -> Result<u32, String> {
    match value {
        None => Ok(default),
        Some(v) => v.trim().trim_end_matches('s').parse().map_err(|_| format!("parameter {name} must be a number of seconds, got {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_accept_both_separators_and_reject_garbage() {
        assert_eq!(weights("a:2, b=1").unwrap(), vec![("a", 2), ("b", 1)]);
        assert!(weights("a").is_err());
        assert!(weights("a:-1").is_err());
    }
}
