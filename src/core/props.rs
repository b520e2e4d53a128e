//! The user's `properties`: checked and written as JSON text as they are read, never built as a
//! tree (the limits: depth, sizes, the reserved `$` keys at the top).

use super::error::{Error, ErrorCode, Result};
use super::json::{quoted, write_str, Json};
use std::fmt::Write as _;

/// Deepest nesting of objects and arrays inside `properties` (the top-level object is depth 1).
pub const MAX_PROPERTY_DEPTH: usize = 10;
/// Longest string value or key inside `properties`, in UTF-8 bytes.
pub const MAX_STRING_BYTES: usize = 8 * 1024;

/// The user's `properties`: the text of a JSON object that passed the checks of
/// [`PropsWriter`]. The edge writes it straight from JavaScript values; no tree is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Props {
    pub(crate) text: String,
    /// Per top-level member: where its key starts and where its value starts.
    members: Vec<(u32, u32)>,
}

impl Props {
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The top-level members: (the key as JSON text, the value as JSON text).
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        let end = self.text.len().saturating_sub(1); // the closing '}'
        self.members.iter().enumerate().map(move |(i, &(key_at, value_at))| {
            // A member ends where the next one's comma is, or at the closing brace.
            let value_end = self.members.get(i + 1).map_or(end, |&(next, _)| next as usize - 1);
            (field(&self.text, key_at as usize, value_at as usize - 1), field(&self.text, value_at as usize, value_end))
        })
    }

    /// An object of string members, as the SDK builds for its own events. A member the rules
    /// refuse (a key starting with `$`, a key or string over 8 KiB) is left out.
    pub fn of_strings(members: &[(&str, &str)]) -> Props {
        let mut w = PropsWriter::new();
        let _ = w.open(b'{', Path::Root);
        for &(key, value) in members.iter().filter(|(_, value)| value.len() <= MAX_STRING_BYTES) {
            let at = Path::Key(&Path::Root, key);
            // The key is checked before anything is written; the value's length was above.
            if w.key(key, at).is_ok() {
                let _ = w.string(value, at);
            }
        }
        w.close(b'}');
        w.finish()
    }

    /// These properties with `other`'s members added, where these do not have the key.
    pub fn merged(self, other: &Props) -> Props {
        let Props { mut text, mut members } = self;
        text.pop(); // the closing '}'
        for (key, value) in other.members() {
            if members.iter().any(|&(k, v)| field(&text, k as usize, v as usize - 1) == key) {
                continue;
            }
            if !text.ends_with('{') {
                text.push(',');
            }
            let key_at = text.len();
            text.push_str(key);
            text.push(':');
            members.push((key_at as u32, text.len() as u32));
            text.push_str(value);
        }
        text.push('}');
        Props { text, members }
    }

    /// Whether a top-level member has this key (as JSON text).
    pub(crate) fn has_key(&self, key_json: &str) -> bool {
        self.members().any(|(k, _)| k == key_json)
    }

    /// Checked properties from a parsed JSON value, which must be an object (host code and
    /// tests; the wasm writes from JavaScript values instead).
    pub fn from_json(v: &Json) -> Result<Props> {
        let Json::Object(members) = v else { return Err(not_an_object()) };
        let mut w = PropsWriter::new();
        write_object(&mut w, members, Path::Root)?;
        Ok(w.finish())
    }
}

fn write_object(w: &mut PropsWriter, members: &[(String, Json)], at: Path) -> Result<()> {
    w.open(b'{', at)?;
    for (k, v) in members {
        let here = Path::Key(&at, k);
        w.key(k, here)?;
        write_value(w, v, here)?;
    }
    w.close(b'}');
    Ok(())
}

fn write_value(w: &mut PropsWriter, v: &Json, at: Path) -> Result<()> {
    match v {
        Json::Null => w.literal("null"),
        Json::Bool(b) => w.literal(if *b { "true" } else { "false" }),
        Json::Number(n) => w.literal(n),
        Json::String(s) => return w.string(s, at),
        Json::Object(members) => return write_object(w, members, at),
        Json::Array(items) => {
            w.open(b'[', at)?;
            for (i, x) in items.iter().enumerate() {
                write_value(w, x, Path::Index(&at, i))?;
            }
            w.close(b']');
        }
    }
    Ok(())
}

/// Checks `props` (an object) the way [`Props::from_json`] does.
pub fn check_properties(props: &Json) -> Result<()> {
    Props::from_json(props).map(drop)
}

fn not_an_object() -> Error {
    Error::at(ErrorCode::InvalidProperties, "properties", "properties must be an object")
}

/// Writes `properties` as JSON text, checking as it goes what the core decides: `$` keys at
/// the top are reserved for the SDK's context, nesting is at most [`MAX_PROPERTY_DEPTH`] levels,
/// keys and strings at most [`MAX_STRING_BYTES`]. Errors name the spot the way a user writes
/// it (`properties.user.tags[2]`). The caller writes values in order: `open`, then `key` and a
/// value per member (or values per element), then `close`.
#[derive(Debug)]
pub struct PropsWriter {
    out: String,
    /// Objects and arrays open, the top-level object included.
    depth: usize,
    /// See [`Props::members`].
    members: Vec<(u32, u32)>,
}

impl Default for PropsWriter {
    fn default() -> Self {
        PropsWriter::new()
    }
}

impl PropsWriter {
    /// An empty writer; the first call is `open(b'{', Path::Root)`.
    pub fn new() -> PropsWriter {
        PropsWriter { out: String::with_capacity(128), depth: 0, members: Vec::new() }
    }

    /// Opens an object (`b'{'`) or an array (`b'['`) at `at`.
    pub fn open(&mut self, bracket: u8, at: Path) -> Result<()> {
        // The top-level object is level 1: a container directly inside it is level 2.
        if self.depth >= MAX_PROPERTY_DEPTH {
            let path = at.text();
            let message = format!("{path}: properties may nest at most 10 levels deep");
            return Err(Error::at(ErrorCode::InvalidProperties, path, message));
        }
        self.comma();
        self.out.push(char::from(bracket));
        self.depth += 1;
        Ok(())
    }

    /// Closes what `open` opened (`b'}'` or `b']'`).
    pub fn close(&mut self, bracket: u8) {
        self.out.push(char::from(bracket));
        self.depth -= 1;
    }

    /// A member's key; `at` is the member's path.
    pub fn key(&mut self, key: &str, at: Path) -> Result<()> {
        if self.depth == 1 && key.starts_with('$') {
            let message = format!("property {}: keys starting with '$' are reserved for the SDK's own context", quoted(key));
            return Err(Error::at(ErrorCode::InvalidProperties, format!("properties.{key}"), message));
        }
        if key.len() > MAX_STRING_BYTES {
            return Err(too_long(at, "key"));
        }
        self.comma();
        let key_at = self.out.len();
        write_str(&mut self.out, key);
        self.out.push(':');
        if self.depth == 1 {
            // Properties are far below 4 GiB (the largest event is 1 MiB).
            self.members.push((key_at as u32, self.out.len() as u32));
        }
        Ok(())
    }

    /// A string value.
    /// Refuses, before it is copied out of JavaScript, a string of `utf16_units` code units that
    /// is certainly too long (each unit is one UTF-8 byte at least): a rejected 9 MB string
    /// never grows the wasm's memory.
    pub fn refuse_long(&self, utf16_units: usize, at: Path) -> Result<()> {
        if utf16_units > MAX_STRING_BYTES {
            return Err(too_long(at, "string"));
        }
        Ok(())
    }

    pub fn string(&mut self, s: &str, at: Path) -> Result<()> {
        if s.len() > MAX_STRING_BYTES {
            return Err(too_long(at, "string"));
        }
        self.comma();
        write_str(&mut self.out, s);
        Ok(())
    }

    /// A value written as it is: a number's JSON text, `true`, `false` or `null`.
    pub fn literal(&mut self, text: &str) {
        self.comma();
        self.out.push_str(text);
    }

    /// A whole number, as JSON (and JavaScript's `String(n)`) writes one below 2^53.
    pub fn integer(&mut self, n: i64) {
        self.comma();
        let _ = write!(self.out, "{n}");
    }

    /// The properties written.
    pub fn finish(self) -> Props {
        Props { text: self.out, members: self.members }
    }

    fn comma(&mut self) {
        if !matches!(self.out.as_bytes().last(), None | Some(b'{' | b'[' | b':')) {
            self.out.push(',');
        }
    }
}

/// Where a value sits inside `properties`, spelled out (`properties.user.tags[2]`) only for an
/// error message: a valid event never pays for formatting it.
#[derive(Clone, Copy, Debug)]
pub enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The path as a user writes it.
    pub fn text(&self) -> String {
        match self {
            Path::Root => "properties".into(),
            Path::Key(parent, key) => format!("{}.{key}", parent.text()),
            Path::Index(parent, i) => format!("{}[{i}]", parent.text()),
        }
    }
}

fn too_long(at: Path, what: &str) -> Error {
    let path = at.text();
    let message = format!("{path}: {what} longer than 8192 bytes");
    Error::at(ErrorCode::InvalidProperties, path, message)
}

/// `text[a..b]`, or empty if that is not a slice of it. Never inlined: one copy of the checks
/// serves every field of every line.
#[inline(never)]
pub(crate) fn field(text: &str, a: usize, b: usize) -> &str {
    text.get(a..b).unwrap_or_default()
}
