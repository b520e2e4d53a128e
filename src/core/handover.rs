//! `track` calls as the package's loader hands them over: all the calls of one turn of the
//! event loop in one crossing into the wasm (`Tracker.trackBatch`), rather than one crossing
//! per call and one more per property read. Measured in the benchmark's 10,000-call burst (one
//! run, 2026-11-26): 13.5 µs per call (fresh worker) and 6.4 µs (warm) with a crossing per
//! call, against the figures in `bench/README.md` with the hand-over.
//!
//! One line per call, `at<TAB>name<TAB>dedupKey<TAB>properties`: `at` in ms since the epoch;
//! `name`, `dedupKey` (empty when there is none) and `properties` as `JSON.stringify` wrote
//! them, so no field holds a raw tab or newline. The loader hands over only properties that
//! `JSON.stringify` writes exactly as `web::props` would (a plain object of strings, finite
//! numbers, booleans and null; `undefined` members left out); anything else goes to `track`
//! itself, which names what is wrong. Reading them back needs JSON string literals only:
//! numbers stay the text JavaScript wrote (`String(n)`, as `web::props` writes them).

use super::error::{Error, ErrorCode, Result};
use super::event::{Path, Props, PropsWriter};

/// One handed-over call, read back.
#[derive(Debug)]
pub struct HandedCall {
    pub at: u64,
    pub name: String,
    pub dedup_key: Option<String>,
    pub props: Props,
}

/// Reads one line. Property errors are those `track` gives for the same object (the same
/// `PropsWriter` checks them); a line the loader cannot have written is `INTERNAL`.
pub fn read_call(line: &str) -> Result<HandedCall> {
    let malformed = || Error::new(ErrorCode::Internal, "a track call handed over by the loader could not be read");
    let mut fields = line.split('\t');
    let (Some(at), Some(name), Some(dedup), Some(props), None) = (fields.next(), fields.next(), fields.next(), fields.next(), fields.next()) else {
        return Err(malformed());
    };
    let at = at.parse().map_err(|_| malformed())?;
    let name = whole_string(name).ok_or_else(malformed)?;
    let dedup_key = if dedup.is_empty() { None } else { Some(whole_string(dedup).ok_or_else(malformed)?) };
    let props = read_flat_object(props)?.ok_or_else(malformed)?;
    Ok(HandedCall { at, name, dedup_key, props })
}

/// A field that is exactly one JSON string literal.
fn whole_string(text: &str) -> Option<String> {
    let mut at = 0;
    let s = string_literal(text.as_bytes(), &mut at)?;
    (at == text.len()).then_some(s)
}

/// `{"key":value,...}` with string, number, `true`, `false` and `null` values, written through
/// `PropsWriter`: `Ok(None)` when it is not such an object.
fn read_flat_object(text: &str) -> Result<Option<Props>> {
    let b = text.as_bytes();
    let mut w = PropsWriter::new();
    w.open(b'{', Path::Root)?;
    if b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return Ok(None);
    }
    let mut at = 1;
    while at < b.len() - 1 {
        if at > 1 {
            if b[at] != b',' {
                return Ok(None);
            }
            at += 1;
        }
        let Some(key) = string_literal(b, &mut at) else { return Ok(None) };
        if b.get(at) != Some(&b':') {
            return Ok(None);
        }
        at += 1;
        let here = Path::Key(&Path::Root, &key);
        w.key(&key, here)?;
        if b.get(at) == Some(&b'"') {
            let Some(value) = string_literal(b, &mut at) else { return Ok(None) };
            w.string(&value, here)?;
        } else {
            let end = b[at..].iter().position(|&c| c == b',' || c == b'}').map_or(b.len(), |k| at + k);
            let Some(literal) = std::str::from_utf8(&b[at..end]).ok().filter(|t| is_literal(t)) else { return Ok(None) };
            w.literal(literal);
            at = end;
        }
    }
    w.close(b'}');
    Ok(Some(w.finish()))
}

/// `true`, `false`, `null` or a JSON number.
fn is_literal(t: &str) -> bool {
    matches!(t, "true" | "false" | "null")
        || (t.bytes().next().is_some_and(|c| c == b'-' || c.is_ascii_digit())
            && t.bytes().all(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')))
}

/// The JSON string literal starting at `b[*at]` (its opening quote), unescaped; `at` moves
/// past its closing quote. A lone surrogate (`JSON.stringify` escapes it) becomes U+FFFD, as
/// the text wasm-bindgen copies from a JavaScript string holds it.
fn string_literal(b: &[u8], at: &mut usize) -> Option<String> {
    if b.get(*at) != Some(&b'"') {
        return None;
    }
    let mut i = *at + 1;
    let mut out = String::new();
    loop {
        let run = b[i..].iter().position(|&c| c == b'"' || c == b'\\')?;
        out.push_str(std::str::from_utf8(&b[i..i + run]).ok()?);
        i += run;
        if b[i] == b'"' {
            *at = i + 1;
            return Some(out);
        }
        let escaped = *b.get(i + 1)?;
        i += 2;
        out.push(match escaped {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = hex4(b, i)?;
                i += 4;
                match unit {
                    0xD800..=0xDBFF if b.get(i..i + 2) == Some(b"\\u") => match hex4(b, i + 2) {
                        Some(low @ 0xDC00..=0xDFFF) => {
                            i += 6;
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?
                        }
                        _ => char::REPLACEMENT_CHARACTER,
                    },
                    _ => char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                }
            }
            _ => return None,
        });
    }
}

/// The 4 hex digits at `b[i..]`.
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}
