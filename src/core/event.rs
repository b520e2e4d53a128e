//! Events: the naming rule, property limits, stable event ids, and the exact bytes sent.

use super::error::{Error, ErrorCode, Result};
use super::json::{fnv1a, quoted, write_str, FNV_OFFSET};
use super::origin::Origin;
use super::profile::Profile;
pub(crate) use super::props::field;
pub use super::props::{check_properties, Path, Props, PropsWriter, MAX_PROPERTY_DEPTH, MAX_STRING_BYTES};
use std::fmt::Write as _;
use uuid::{Builder, Uuid};

/// Longest event name (seed 003's rule).
pub const MAX_EVENT_NAME_LEN: usize = 128;
/// Longest per-event dedup key.
pub const MAX_DEDUP_KEY_LEN: usize = 256;
/// The SDK's name and version, sent with every event as `$sdk`.
pub const SDK: &str = concat!("inhouse-chrome/", env!("CARGO_PKG_VERSION"));

/// Validates an event name and returns it normalised to lowercase.
///
/// The rule (seed 003, snake_case): 1–128 characters, a letter first, then letters, digits and
/// `_`. Upper-case letters are accepted and lowered, so `Button_Click` is sent as `button_click`.
pub fn normalize_event_name(name: &str) -> Result<String> {
    let bad = |why: String| Error::at(ErrorCode::InvalidEventName, "eventName", why);
    if name.is_empty() {
        return Err(bad("event name must not be empty".into()));
    }
    let chars = name.chars().count();
    if chars > MAX_EVENT_NAME_LEN {
        return Err(bad(format!("event name must be at most 128 characters, got {chars}")));
    }
    let bytes = name.as_bytes();
    let valid = bytes.first().is_some_and(u8::is_ascii_alphabetic) && bytes.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    if !valid {
        let hint = suggest_snake_case(name);
        let hint = if hint.is_empty() || hint == name { String::new() } else { format!(" (did you mean {}?)", quoted(&hint)) };
        return Err(bad(format!("event name {} must start with a letter and contain only letters, digits and '_'{hint}", quoted(name))));
    }
    Ok(name.to_ascii_lowercase())
}

/// The valid name closest to `name`: its letters and digits, lowered, each run of anything else
/// (spaces, dashes, underscores, non-ASCII) one `_`, starting at the first letter, at most 128.
fn suggest_snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for &c in name.as_bytes() {
        if !c.is_ascii_alphanumeric() {
            gap = true;
            continue;
        }
        // A name starts with a letter: digits before the first one are left out.
        if out.is_empty() && !c.is_ascii_alphabetic() {
            continue;
        }
        let sep = gap && !out.is_empty();
        gap = false;
        if out.len() + usize::from(sep) + 1 > MAX_EVENT_NAME_LEN {
            break;
        }
        if sep {
            out.push('_');
        }
        out.push(char::from(c.to_ascii_lowercase()));
    }
    out
}

/// Validates a per-event dedup key.
pub fn check_dedup_key(key: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > MAX_DEDUP_KEY_LEN {
        return Err(Error::at(ErrorCode::InvalidTrackOption, "dedupKey", "dedupKey must be 1 to 256 characters"));
    }
    Ok(())
}

/// A small, fast generator (splitmix64) for event ids, seeded from `crypto.getRandomValues` at
/// the edge and from a constant in tests. Ids need uniqueness, not secrecy.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random UUID (version 4): an install's id.
pub fn new_install_id(rng: &mut Rng) -> String {
    let bits = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    uuid_text(Builder::from_random_bytes(bits.to_be_bytes()).into_uuid())
}

/// Whether `s` reads as a UUID in its usual form (36 characters: lowercase hex digits and four
/// `-`): what a stored install id must be. A shape check like [`is_event_id`]: the uuid crate's
/// parser cost the wasm about 1 KB for a check that runs once per start.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && is_event_id(s)
}

/// Whether `s` is an event id the SDK makes: a UUID in its usual form ([`new_event_id`]) or
/// `d-` and 32 lowercase hex digits ([`dedup_event_id`]). A shape check, not a parse: it runs
/// on every stored event at a start. Anything else came from damaged storage, and could not
/// even be sent (the browser refuses a header value with characters beyond Latin-1).
pub fn is_event_id(s: &str) -> bool {
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    match s.as_bytes() {
        [b'd', b'-', rest @ ..] => rest.len() == 32 && rest.iter().all(hex),
        b if b.len() == 36 => b.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { hex(c) }),
        _ => false,
    }
}

/// A UUIDv7 (time-ordered) event id: sortable, unique, and a valid `Idempotency-Key` and
/// `X-Request-ID` (36 characters of hex digits and `-`).
pub fn new_event_id(now_ms: u64, rng: &mut Rng) -> String {
    let bits = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    let random: [u8; 10] = bits.to_be_bytes()[..10].try_into().unwrap_or_default();
    uuid_text(Builder::from_unix_timestamp_millis(now_ms, &random).into_uuid())
}

/// A UUID's usual text: the crate's encoder, not `Display` (formatting machinery, on a path
/// that runs once per `track` call).
fn uuid_text(id: Uuid) -> String {
    id.hyphenated().encode_lower(&mut Uuid::encode_buffer()).to_string()
}

/// The id of an event tracked with a dedup key: the same (name, key) always gives the same id,
/// so the queue and the server's `Idempotency-Key` check both deliver it once.
pub fn dedup_event_id(name: &str, key: &str) -> String {
    // FNV-1a twice with different offsets: 128 bits.
    format!("d-{:016x}{:016x}", fnv1a(&[name, key], FNV_OFFSET), fnv1a(&[name, key], 0x84222325_cbf29ce4))
}

/// The context the SDK adds to every event's properties, all under reserved `$` keys (the
/// README's table lists them): what is the same for every event of this tracker, the install,
/// the user and the super properties, the browser, and the current session.
#[derive(Clone, Debug, Default)]
pub struct EventContext {
    pub extension_version: Option<String>,
    pub install_id: Option<String>,
    pub session_id: Option<String>,
    pub profile: Profile,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub locale: Option<String>,
}

/// The SDK's own events: the only names with the reserved `$` prefix (a user's event name must
/// start with a letter). The local server accepts exactly these.
pub const SDK_EVENTS: [&str; 8] =
    ["$identify", "$extension_installed", "$extension_updated", "$browser_updated", "$browser_startup", "$daily_active", "$pageview", "$exception"];

/// An accepted event, ready to persist: its stored line `id<TAB>name<TAB>properties`, the
/// properties serialized once, context included, so every retry sends byte-identical bodies
/// (what `Idempotency-Key` requires). One string; the engine copies the line into the text of
/// the segment it will be written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    line: String,
    /// Where the name starts (after the id and a tab).
    name_at: usize,
    /// Where the properties start (after the name and a tab).
    props_at: usize,
}

impl NewEvent {
    /// The event id (the `Idempotency-Key`).
    pub fn id(&self) -> &str {
        field(&self.line, 0, self.name_at - 1)
    }

    /// The normalised event name.
    pub fn name(&self) -> &str {
        field(&self.line, self.name_at, self.props_at - 1)
    }

    /// The properties' JSON text, context included.
    pub fn props_json(&self) -> &str {
        field(&self.line, self.props_at, self.line.len())
    }

    /// The stored line: `id<TAB>name<TAB>properties`.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Where the name and the properties start in [`NewEvent::line`].
    pub fn fields_at(&self) -> (usize, usize) {
        (self.name_at, self.props_at)
    }

    /// Bytes this event occupies in storage (approximately: what the quota counts).
    pub fn stored_bytes(&self) -> usize {
        line_stored_bytes(self.line.len())
    }
}

/// [`NewEvent::stored_bytes`] of a stored line of `len` bytes: its three fields (all but its
/// two tabs) and 24.
pub(crate) fn line_stored_bytes(len: usize) -> usize {
    len + 22
}

/// An event's name: the user's (checked by [`normalize_event_name`]) or one of the SDK's own
/// ([`SDK_EVENTS`], the only names with the reserved `$` prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventName {
    User(String),
    Sdk(&'static str),
}

/// Builds the event `track` accepts: validates the name and the dedup key, adds the context to
/// the checked properties, checks the size.
#[allow(clippy::too_many_arguments)]
pub fn build_event(
    name: &str,
    props: Props,
    dedup_key: Option<&str>,
    ctx: &EventContext,
    origin: &Origin,
    now_ms: u64,
    max_event_bytes: usize,
    rng: &mut Rng,
) -> Result<NewEvent> {
    build_named_event(&EventName::User(name.into()), props, dedup_key, ctx, origin, now_ms, max_event_bytes, rng)
}

/// [`build_event`] for a user's or an SDK event's name.
#[allow(clippy::too_many_arguments)]
pub fn build_named_event(
    name: &EventName,
    props: Props,
    dedup_key: Option<&str>,
    ctx: &EventContext,
    origin: &Origin,
    now_ms: u64,
    max_event_bytes: usize,
    rng: &mut Rng,
) -> Result<NewEvent> {
    let name = match name {
        EventName::User(name) => normalize_event_name(name)?,
        EventName::Sdk(name) => name.to_string(),
    };
    let id = match dedup_key {
        Some(key) => {
            check_dedup_key(key)?;
            dedup_event_id(&name, key)
        }
        None => new_event_id(now_ms, rng),
    };
    let props_len = props.text.len();
    let mut line = String::with_capacity(2 * id.len() + name.len() + props_len + 512);
    line.push_str(&id);
    line.push('\t');
    let name_at = line.len();
    line.push_str(&name);
    line.push('\t');
    let props_at = line.len();
    // The user's members, the super properties the event does not set itself, then the
    // context, written straight into the text (the same bytes as appending them as members).
    // No clash: the writer refused every `$` key at the top.
    line.push_str(props.text.get(..props_len.saturating_sub(1)).unwrap_or_default()); // all but the closing '}'
    let member = |line: &mut String, key: &str| {
        if !line.ends_with('{') {
            line.push(',');
        }
        line.push_str(key);
        line.push(':');
    };
    for (key, value) in ctx.profile.supers().filter(|(key, _)| !props.has_key(key)) {
        member(&mut line, key);
        line.push_str(value);
    }
    let time = rfc3339_ms(now_ms);
    let texts = [
        ("\"$time\"", Some(time.as_str())),
        ("\"$event_id\"", Some(&id)),
        ("\"$sdk\"", Some(SDK)),
        ("\"$extension_version\"", ctx.extension_version.as_deref()),
        ("\"$install_id\"", ctx.install_id.as_deref()),
        ("\"$session_id\"", ctx.session_id.as_deref()),
        ("\"$user_id\"", ctx.profile.user_id()),
        ("\"$browser\"", ctx.browser.as_deref()),
        ("\"$browser_version\"", ctx.browser_version.as_deref()),
        ("\"$os\"", ctx.os.as_deref()),
        ("\"$locale\"", ctx.locale.as_deref()),
        ("\"$source\"", Some(origin.source.as_str())),
    ];
    for (key, value) in texts.into_iter().filter_map(|(k, v)| Some((k, v?))) {
        member(&mut line, key);
        write_str(&mut line, value);
    }
    for (key, value) in [("\"$tab_id\"", origin.tab_id), ("\"$frame_id\"", origin.frame_id)].into_iter().filter_map(|(k, v)| Some((k, v?))) {
        member(&mut line, key);
        let _ = write!(line, "{value}");
    }
    if let Some(incognito) = origin.incognito {
        member(&mut line, "\"$incognito\"");
        line.push_str(if incognito { "true" } else { "false" });
    }
    for (key, value) in &origin.location {
        let mut key_json = String::with_capacity(key.len() + 2);
        write_str(&mut key_json, key);
        member(&mut line, &key_json);
        write_str(&mut line, value);
    }
    line.push('}');
    let size = request_body_len(&name, field(&line, props_at, line.len()));
    if size > max_event_bytes {
        return Err(Error::at(
            ErrorCode::EventTooLarge,
            "properties",
            format!("event {} is {size} bytes serialized; the limit is {max_event_bytes} bytes", quoted(&name)),
        ));
    }
    Ok(NewEvent { line, name_at, props_at })
}

/// The exact request body: `{"event_name": ..., "properties": {...}}`.
pub fn request_body(name: &str, props_json: &str) -> String {
    // Names are validated ASCII letters, digits and '_', so they need no escaping.
    let mut body = String::with_capacity(request_body_len(name, props_json));
    for part in [BODY_START, name, BODY_MIDDLE, props_json, BODY_END] {
        body.push_str(part);
    }
    body
}

const BODY_START: &str = "{\"event_name\":\"";
const BODY_MIDDLE: &str = "\",\"properties\":";
const BODY_END: &str = "}";

/// `request_body(name, props_json).len()`, without building it.
pub fn request_body_len(name: &str, props_json: &str) -> usize {
    BODY_START.len() + name.len() + BODY_MIDDLE.len() + props_json.len() + BODY_END.len()
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (h, min, sec) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{sec:02}.{:03}Z", ms % 1000)
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
