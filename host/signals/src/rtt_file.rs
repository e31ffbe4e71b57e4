//! A static RTT table, for fleets without serf (or to pin RTTs in tests and demos). YAML, in
//! either of two forms, which may also be mixed:
//!
//! ```yaml
//! rtt:                       # a list of [a, b, milliseconds]
//!   - [cluster1, cluster2, 12.5]
//!   - [cluster1, cluster3, 30]
//! ```
//! ```yaml
//! cluster1:                  # a nested map a -> b -> milliseconds
//!   cluster2: 12.5
//!   cluster3: 30
//! ```
//!
//! RTT is symmetric: one direction per pair is enough; giving both is allowed if they agree.
//! Validation errors are reported by serde_yaml_ng, so they carry the entry's path and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

#[derive(Debug, thiserror::Error)]
pub enum RttFileError {
    #[error("RTT file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("RTT file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Reads an RTT file. Returns both directions of every pair, `(a, b, ms)` and `(b, a, ms)`,
/// sorted, the same shape as [`crate::serf::rtt_matrix`].
pub fn load_rtt_file(path: &Path) -> Result<Vec<(String, String, f32)>, RttFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RttFileError::Io { path: path.into(), source })?;
    parse_rtt(&text).map_err(|message| RttFileError::Invalid { path: path.into(), message })
}

/// [`load_rtt_file`] on a string; the error is a message with the entry and line.
pub fn parse_rtt(text: &str) -> Result<Vec<(String, String, f32)>, String> {
    if text.trim().is_empty() || serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text).is_ok_and(|v| v.is_null()) {
        return Err("empty: expected `rtt: [[a, b, ms], ...]` or `a: {b: ms}`".into());
    }
    let mut table = Table::default();
    let de = serde_yaml_ng::Deserializer::from_str(text);
    TopSeed(&mut table).deserialize(de).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(table.0.len() * 2);
    for ((a, b), (ms, _)) in table.0 {
        out.push((b.clone(), a.clone(), ms));
        out.push((a, b, ms));
    }
    out.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
    Ok(out)
}

/// Unordered pair (smaller name first) -> (ms, where it was given).
#[derive(Default)]
struct Table(BTreeMap<(String, String), (f32, String)>);

impl Table {
    fn insert<E: de::Error>(&mut self, a: String, b: String, ms: f64, entry: String) -> Result<(), E> {
        if a.is_empty() || b.is_empty() {
            return Err(E::custom(format!("{entry}: empty cluster name")));
        }
        if a == b {
            return Err(E::custom(format!("{entry}: RTT from {a} to itself; list pairs of different clusters")));
        }
        if ms.is_nan() {
            return Err(E::custom(format!("{entry}: RTT is not a number")));
        }
        if !ms.is_finite() || ms > f64::from(f32::MAX) {
            return Err(E::custom(format!("{entry}: RTT {ms} ms is not finite")));
        }
        if ms < 0.0 {
            return Err(E::custom(format!("{entry}: RTT {ms} ms is negative")));
        }
        let ms = ms as f32;
        let key = if a < b { (a, b) } else { (b, a) };
        if let Some((old, old_entry)) = self.0.get(&key) {
            if *old != ms {
                return Err(E::custom(format!("{entry}: {} <-> {} is {ms} ms here but {old} ms in {old_entry}", key.0, key.1)));
            }
            return Ok(());
        }
        self.0.insert(key, (ms, entry));
        Ok(())
    }
}

/// The document: a map whose `rtt` key holds the list form and whose other keys are rows.
struct TopSeed<'a>(&'a mut Table);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map: `rtt: [[a, b, ms], ...]` and/or `a: {b: ms}`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "rtt" {
                map.next_value_seed(RttKeySeed(self.0))?;
            } else {
                map.next_value_seed(RowSeed { from: key, table: self.0 })?;
            }
        }
        Ok(())
    }
}

/// `rtt:` is the list form; a map there is a row for a cluster that happens to be named `rtt`.
struct RttKeySeed<'a>(&'a mut Table);

impl<'de> DeserializeSeed<'de> for RttKeySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RttKeySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [a, b, ms] entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq.next_element_seed(EntrySeed { index, table: self.0 })?.is_some() {
            index += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        RowSeed { from: "rtt".into(), table: self.0 }.visit_map(map)
    }
}

/// One `[a, b, ms]` entry of the list form.
struct EntrySeed<'a> {
    index: usize,
    table: &'a mut Table,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "rtt entry {} as [cluster, cluster, milliseconds]", self.index + 1)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let entry = format!("rtt entry {}", self.index + 1);
        let a: String = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let b: String = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let ms: f64 = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(2, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        let entry = format!("{entry} [{a}, {b}, {ms}]");
        self.table.insert(a, b, ms, entry)
    }
}

/// `from: {to: ms, ...}` of the nested-map form.
struct RowSeed<'a> {
    from: String,
    table: &'a mut Table,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a map of cluster -> milliseconds under {}", self.from)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(to) = map.next_key::<String>()? {
            let ms: f64 = map.next_value()?;
            let entry = format!("{}.{to}", self.from);
            self.table.insert(self.from.clone(), to, ms, entry)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(String, String, f32)]) -> Vec<(&str, &str, f32)> {
        v.iter().map(|(a, b, x)| (a.as_str(), b.as_str(), *x)).collect()
    }

    #[test]
    fn list_form() {
        let v = parse_rtt("rtt:\n  - [cluster1, cluster2, 12.5]\n  - [cluster3, cluster1, 30]\n").unwrap();
        assert_eq!(pairs(&v), [("cluster1", "cluster2", 12.5), ("cluster1", "cluster3", 30.0), ("cluster2", "cluster1", 12.5), ("cluster3", "cluster1", 30.0)]);
    }

    #[test]
    fn nested_form_with_both_directions_agreeing() {
        let v = parse_rtt("cluster1: {cluster2: 12.5}\ncluster2:\n  cluster1: 12.5\n  cloud1: 80\n").unwrap();
        assert_eq!(pairs(&v), [("cloud1", "cluster2", 80.0), ("cluster1", "cluster2", 12.5), ("cluster2", "cloud1", 80.0), ("cluster2", "cluster1", 12.5)]);
    }

    #[test]
    fn mixed_forms_and_empty_list() {
        assert_eq!(parse_rtt("rtt: []\n").unwrap(), vec![]);
        let v = parse_rtt("rtt: [[a, b, 1]]\nb: {c: 2}\n").unwrap();
        assert_eq!(v.len(), 4);
    }

    fn err(text: &str) -> String {
        parse_rtt(text).unwrap_err()
    }

    #[test]
    fn negative_nan_and_infinite_rtts_are_rejected_with_entry_and_line() {
        let e = err("rtt:\n  - [cluster1, cluster2, 12.5]\n  - [cluster1, cluster3, -1]\n");
        assert!(e.contains("rtt entry 2 [cluster1, cluster3, -1]") && e.contains("negative") && e.contains("line 3"), "{e}");
        let e = err("cluster1:\n  cluster2: .nan\n");
        assert!(e.contains("cluster1.cluster2") && e.contains("not a number") && e.contains("line 2"), "{e}");
        let e = err("cluster1:\n  cluster2: .inf\n");
        assert!(e.contains("not finite"), "{e}");
        let e = err("cluster1: {cluster2: fast}\n");
        assert!(e.contains("invalid type") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn self_pairs_and_conflicts_are_rejected() {
        let e = err("rtt:\n  - [cluster1, cluster1, 0]\n");
        assert!(e.contains("rtt entry 1") && e.contains("itself") && e.contains("line 2"), "{e}");
        let e = err("a:\n  a: 1\n");
        assert!(e.contains("a.a") && e.contains("itself"), "{e}");
        let e = err("rtt:\n  - [a, b, 1]\nb:\n  a: 2\n");
        assert!(e.contains("b.a") && e.contains("2 ms here but 1 ms in rtt entry 1"), "{e}");
    }

    #[test]
    fn malformed_entries() {
        let e = err("rtt:\n  - [a, b]\n");
        assert!(e.contains("invalid length 2") && e.contains("line 2"), "{e}");
        let e = err("rtt:\n  - [a, b, 1, 2]\n");
        assert!(e.contains("invalid length 4"), "{e}");
        let e = err("rtt:\n  - [a, '', 1]\n");
        assert!(e.contains("empty cluster name"), "{e}");
        let e = err("- [a, b, 1]\n");
        assert!(e.contains("expected a map"), "{e}");
        assert!(err("").contains("empty"));
        assert!(err("# only a comment\n").contains("empty"));
        let e = err("a: {b: 1\n");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rtt.yaml");
        std::fs::write(&p, "cluster1: {cluster2: 3}\n").unwrap();
        assert_eq!(load_rtt_file(&p).unwrap().len(), 2);
        std::fs::write(&p, "cluster1: {cluster2: -3}\n").unwrap();
        let e = load_rtt_file(&p).unwrap_err();
        assert!(matches!(e, RttFileError::Invalid { .. }) && e.to_string().contains("rtt.yaml"), "{e}");
        assert!(matches!(load_rtt_file(&dir.path().join("missing.yaml")), Err(RttFileError::Io { .. })));
    }
}
