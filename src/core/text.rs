//! Numbers as text, by hand. `format!` and `str::parse` are generic machinery (the formatter,
//! padding, every integer width's parser) that costs the wasm kilobytes; the SDK only ever
//! writes and reads plain unsigned decimals.

/// Appends `v` in decimal.
pub fn push_u64(out: &mut String, v: u64) {
    push_padded(out, v, 1);
}

/// Appends `v` in decimal, zero-padded to at least `width` digits (at most 20).
pub fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut digits = [0u8; 20];
    let (mut n, mut at) = (v, digits.len());
    while n > 0 || digits.len() - at < width.clamp(1, 20) {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// `v` in decimal.
pub fn u64_text(v: u64) -> String {
    let mut out = String::new();
    push_u64(&mut out, v);
    out
}

/// The parts joined: what `[a, b].concat()` gives, without the generic joiner behind it, which
/// costs the wasm a kilobyte.
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// The number of characters (Unicode scalar values) in `s`: its bytes that do not continue a
/// UTF-8 sequence. (`chars().count()` brings a vectorised counter several times the size.)
pub fn char_count(s: &str) -> usize {
    s.bytes().filter(|b| b & 0xC0 != 0x80).count()
}

/// A non-empty run of ASCII digits as a number; `None` for anything else or on overflow.
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for v in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            assert_eq!(u64_text(v), v.to_string());
            assert_eq!(parse_u64(&v.to_string()), Some(v));
        }
    }

    #[test]
    fn pads_with_zeros() {
        let padded = |v, w| {
            let mut s = String::new();
            push_padded(&mut s, v, w);
            s
        };
        assert_eq!(padded(7, 3), "007");
        assert_eq!(padded(1234, 2), "1234");
        assert_eq!(padded(0, 0), "0");
        assert_eq!(padded(u64::MAX, 20), u64::MAX.to_string());
    }

    #[test]
    fn counts_characters() {
        for s in ["", "a", "é", "日本語", "a😀b", "\u{10FFFF}x"] {
            assert_eq!(char_count(s), s.chars().count(), "{s:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_plain_digits() {
        for s in ["", "-1", "+1", "1.5", " 1", "1 ", "x", "18446744073709551616"] {
            assert_eq!(parse_u64(s), None, "{s:?}");
        }
    }
}
