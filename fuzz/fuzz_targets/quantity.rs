//! Kubernetes quantities: any text either parses or is refused, never a panic or an
//! overflow; and what parses survives a round trip through its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mck8s_capacity::{parse_bytes, parse_cpu_millis};

fuzz_target!(|text: &str| {
    if let Ok(m) = parse_cpu_millis(text) {
        assert_eq!(parse_cpu_millis(&format!("{m}m")), Ok(m), "{text:?}");
    }
    if let Ok(b) = parse_bytes(text) {
        assert_eq!(parse_bytes(&b.to_string()), Ok(b), "{text:?}");
        // A whole number of bytes is its own quantity.
        if text.bytes().all(|c| c.is_ascii_digit()) && !text.is_empty() && text.len() < 19 {
            assert_eq!(b, text.parse::<u64>().unwrap(), "{text:?}");
        }
    }
});
