//! Framing for a stream of MessagePack values. Serf's RPC puts values back to back on the TCP
//! stream with no length prefix, so the reader has to know where one value ends before it can
//! hand the bytes to the decoder.

/// Why a buffer cannot start with a MessagePack value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub String);

/// Length in bytes of the first complete MessagePack value in `buf`; `Ok(None)` if `buf` holds
/// only a prefix of one (read more and ask again).
///
/// Iterative, with a count of values still owed, so hostile nesting cannot exhaust the stack.
pub(crate) fn value_len(buf: &[u8]) -> Result<Option<usize>, Malformed> {
    let mut pos = 0usize;
    // Values still to be read: 1 for the top-level one, plus every element / key / value that
    // an array or map header announced. u64: a map32 header may announce 2 * (2^32 - 1).
    let mut owed: u64 = 1;
    while owed > 0 {
        let Some(&marker) = buf.get(pos) else { return Ok(None) };
        pos += 1;
        owed -= 1;
        // Bytes of payload to skip after the marker (and after a length field if any).
        let skip: u64 = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0x80..=0x8f => {
                owed += 2 * u64::from(marker & 0x0f);
                0
            }
            0x90..=0x9f => {
                owed += u64::from(marker & 0x0f);
                0
            }
            0xa0..=0xbf => u64::from(marker & 0x1f),
            0xc1 => return Err(Malformed(format!("reserved marker 0xc1 at byte {}", pos - 1))),
            // bin 8/16/32, str 8/16/32: a big-endian length, then that many bytes.
            0xc4 | 0xd9 => read_len(buf, &mut pos, 1)?.unwrap_or(u64::MAX),
            0xc5 | 0xda => read_len(buf, &mut pos, 2)?.unwrap_or(u64::MAX),
            0xc6 | 0xdb => read_len(buf, &mut pos, 4)?.unwrap_or(u64::MAX),
            // ext 8/16/32: length, one type byte, then the data.
            0xc7 => read_len(buf, &mut pos, 1)?.map_or(u64::MAX, |n| n + 1),
            0xc8 => read_len(buf, &mut pos, 2)?.map_or(u64::MAX, |n| n + 1),
            0xc9 => read_len(buf, &mut pos, 4)?.map_or(u64::MAX, |n| n + 1),
            0xca => 4,
            0xcb => 8,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xce | 0xd2 => 4,
            0xcf | 0xd3 => 8,
            // fixext 1/2/4/8/16: type byte + fixed data.
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xdc..=0xdf => {
                let width = if marker == 0xdc || marker == 0xde { 2 } else { 4 };
                let Some(n) = read_len(buf, &mut pos, width)? else { return Ok(None) };
                owed += if marker >= 0xde { 2 * n } else { n };
                0
            }
        };
        // u64::MAX marks "the length field itself is not complete yet".
        if skip == u64::MAX {
            return Ok(None);
        }
        let end = (pos as u64).saturating_add(skip);
        if end > buf.len() as u64 {
            return Ok(None);
        }
        pos = end as usize;
    }
    Ok(Some(pos))
}

/// A big-endian length of `width` bytes at `*pos`; `None` if not all of it has arrived.
fn read_len(buf: &[u8], pos: &mut usize, width: usize) -> Result<Option<u64>, Malformed> {
    let Some(bytes) = buf.get(*pos..*pos + width) else { return Ok(None) };
    *pos += width;
    Ok(Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Sample {
        #[serde(rename = "Name")]
        name: String,
        #[serde(rename = "Vec")]
        vec: Vec<f64>,
        #[serde(rename = "Tags")]
        tags: std::collections::BTreeMap<String, String>,
        #[serde(rename = "Big")]
        big: u64,
        #[serde(rename = "Neg")]
        neg: i64,
        #[serde(rename = "Bin")]
        #[serde(serialize_with = "as_bytes")]
        bin: Vec<u8>,
        #[serde(rename = "Nil")]
        nil: Option<u8>,
    }

    fn as_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    #[test]
    fn every_prefix_is_incomplete_and_the_whole_value_is_found_in_a_longer_buffer() {
        let v = Sample {
            name: "x".repeat(300),
            vec: vec![0.1; 20],
            tags: (0..20).map(|i| (format!("k{i}"), "v".repeat(i * 20))).collect(),
            big: u64::MAX,
            neg: -100_000,
            bin: vec![7; 70_000],
            nil: None,
        };
        let bytes = rmp_serde::to_vec_named(&v).unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(value_len(&bytes[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        let mut two = bytes.clone();
        two.extend_from_slice(&rmp_serde::to_vec_named(&[1u8, 2, 3]).unwrap());
        assert_eq!(value_len(&two), Ok(Some(bytes.len())));
    }

    #[test]
    fn scalars_and_reserved_marker() {
        assert_eq!(value_len(&[0x05]), Ok(Some(1)));
        assert_eq!(value_len(&[0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]), Ok(Some(9)));
        assert_eq!(value_len(&[0x92, 0xc0, 0xc3]), Ok(Some(3)));
        assert!(value_len(&[0x91, 0xc1]).is_err());
    }
}
