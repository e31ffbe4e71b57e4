//! Kubernetes resource quantities (`500m`, `1.5`, `1Gi`, `2e3`, `128974848`), parsed exactly
//! as the API server rounds them: CPU up to whole millicores, everything else up to whole
//! units. mck8s only read `<int>m` and `<int>Mi` and misread `1Gi` as 1 MiB (§9.1).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum QuantityError {
    #[error("{0:?} is not a Kubernetes quantity")]
    Malformed(String),
    #[error("{0:?} is negative; requests and capacities must not be")]
    Negative(String),
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// The value of `text` times `scale`, rounded up to an integer.
pub fn parse_quantity(text: &str, scale: u64) -> Result<u64, QuantityError> {
    let t = text.trim();
    let malformed = || QuantityError::Malformed(text.to_string());
    if t.starts_with('-') {
        return Err(QuantityError::Negative(text.to_string()));
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(malformed());
    }
    // Binary suffixes multiply by 2^(10k); decimal ones shift the exponent.
    let (mult, exp10): (u128, i32) = match suffix {
        "" => (1, 0),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        s if s.starts_with(['e', 'E']) => (1, s[1..].parse::<i32>().map_err(|_| malformed())?),
        _ => return Err(malformed()),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits: String = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let mantissa: u128 = if digits.is_empty() {
        0
    } else if digits.len() > 30 {
        return Err(QuantityError::TooLarge(text.to_string()));
    } else {
        digits.parse().map_err(|_| malformed())?
    };
    // value = mantissa × 10^(exp10 − frac.len()) × mult × scale, rounded up.
    let exp = exp10 - frac.len() as i32;
    let too_large = || QuantityError::TooLarge(text.to_string());
    let mut num = mantissa.checked_mul(mult).and_then(|v| v.checked_mul(u128::from(scale))).ok_or_else(too_large)?;
    let mut den: u128 = 1;
    if exp >= 0 {
        num = num.checked_mul(10u128.checked_pow(exp as u32).ok_or_else(too_large)?).ok_or_else(too_large)?;
    } else {
        den = 10u128.checked_pow((-exp) as u32).ok_or_else(too_large)?;
    }
    let value = num.div_ceil(den);
    u64::try_from(value).map_err(|_| too_large())
}

/// CPU in millicores (`"1"` → 1000, `"250m"` → 250, `"0.1"` → 100).
pub fn parse_cpu_millis(text: &str) -> Result<u64, QuantityError> {
    parse_quantity(text, 1000)
}

/// Memory (or any countable resource) in bytes/units (`"1Gi"`, `"512M"`, `"1e9"`).
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    parse_quantity(text, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        for (text, millis) in [("1", 1000), ("250m", 250), ("0.5", 500), ("1.5", 1500), ("2k", 2_000_000), ("100u", 1), ("1e3", 1_000_000), (" 3 ", 3000)] {
            assert_eq!(parse_cpu_millis(text), Ok(millis), "{text}");
        }
    }

    #[test]
    fn memory_forms() {
        for (text, bytes) in
            [("1Gi", 1 << 30), ("1024Mi", 1 << 30), ("512M", 512_000_000), ("128974848", 128_974_848), ("1.5Gi", 3 << 29), ("0.5Ki", 512), ("1E", 1_000_000_000_000_000_000)]
        {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for text in ["", "abc", "1..2", "1Gb", "1 Gi", "-1", "."] {
            assert!(parse_bytes(text).is_err(), "{text}");
        }
        assert!(matches!(parse_bytes("-5"), Err(QuantityError::Negative(_))));
        assert!(matches!(parse_bytes("100E"), Err(QuantityError::TooLarge(_))));
    }
}
