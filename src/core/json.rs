//! JSON in the core: string literals written by hand, and a value type for host code. The wasm
//! writes event properties straight from JavaScript values (`event::PropsWriter`) and lets the
//! browser parse what it reads (`JSON.parse`), so no JSON library, float formatting or parser is
//! in it: numbers stay text, exactly as JavaScript's `String(n)` wrote them.

/// FNV-1a (64-bit) of `parts` joined by a 0 byte, from `offset` (the standard one:
/// [`FNV_OFFSET`]). The SDK's stable hash: ids and keys that are stored or sent must not change
/// with the Rust version, as std's hasher may.
pub fn fnv1a(parts: &[&str], offset: u64) -> u64 {
    let mut h = offset;
    for (i, part) in parts.iter().enumerate() {
        let separator = (i > 0).then_some(0u8);
        for b in separator.into_iter().chain(part.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// FNV-1a's standard offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// A JSON value, as host code (and tests) hand properties to `event::Props::from_json`. Objects
/// keep their keys in insertion order, as JavaScript does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number, as its JSON text (`1`, `-0.5`, `1e+21`).
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Appends `s` as a JSON string literal. Control characters are escaped, so the output never
/// holds a raw newline or tab (the stored-queue format relies on it).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    // Copies the runs that need no escape whole: escapes are rare, and pushing char by char
    // costs a UTF-8 decode and encode per character. Every escaped byte is ASCII, so `start`
    // and `i` always fall on character boundaries (`get`, not indexing: no panic path, whose
    // message formatting would pull Unicode tables into the wasm).
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        start = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// `s` as a JSON string literal: how error messages quote user input. (Rust's `{:?}` would do
/// as well, but pulls Unicode tables into the wasm.)
pub fn quoted(s: &str) -> String {
    let mut out = String::new();
    write_str(&mut out, s);
    out
}
