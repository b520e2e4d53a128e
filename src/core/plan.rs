//! The tracking plan: the events an extension sends, their properties and the properties' types,
//! declared once (`init({ plan })`) and checked at every `track()`, here in the core, so that the
//! background, `/client` calls relayed to it and the `/testing` entry all check alike.
//!
//! The plan is given as a plain object:
//!
//! ```js
//! {
//!   signup: { properties: { plan: { enum: ['free', 'pro'] }, seats: 'number', ref: { type: 'string', required: false } } },
//!   button_clicked: { properties: { id: 'string' }, additionalProperties: true },
//!   app_opened: {},
//! }
//! ```
//!
//! A property is a type name (`'string'`, `'number'`, `'boolean'`, `'array'`, `'object'`),
//! required; or `{ type, required }`; or `{ enum: [...strings], required }`. An event allows no
//! property the plan does not name unless `additionalProperties: true`.
//!
//! The check costs one binary search for the event and one per property, on the JSON text the
//! properties already are ([`Props::members`]): nothing is parsed or built.

use super::error::{Error, ErrorCode, Result};
use super::event::normalize_event_name;
use super::json::{quoted, Json};
use super::props::Props;

/// The most events a plan may declare.
pub const MAX_PLAN_EVENTS: usize = 2000;
/// The most properties one event of a plan may declare.
pub const MAX_PLAN_PROPERTIES: usize = 200;

/// What happens to an event that does not match the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PlanMode {
    /// `track()` rejects with `UNKNOWN_EVENT` or `INVALID_PROPERTY`; nothing is stored.
    Reject,
    /// Stored and sent as it is; `onError` hears `PLAN_VIOLATION` (once per event and field a
    /// minute) and `stats().planViolations` counts it.
    #[default]
    Report,
}

impl PlanMode {
    /// `planMode`'s value.
    pub fn parse(text: &str) -> Result<PlanMode> {
        match text {
            "reject" => Ok(PlanMode::Reject),
            "report" => Ok(PlanMode::Report),
            other => Err(Error::at(ErrorCode::InvalidOption, "planMode", format!("planMode must be 'reject' or 'report', got {}", quoted(other)))),
        }
    }
}

/// What kind of JSON value `v` is, for messages.
fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A property's type in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Array,
    Object,
    /// One of these strings, each kept as its JSON text (compared with the value's text).
    Enum(Vec<String>),
}

const TYPE_NAMES: [&str; 5] = ["string", "number", "boolean", "array", "object"];

impl Kind {
    fn named(name: &str) -> Option<Kind> {
        Some(match name {
            "string" => Kind::String,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "array" => Kind::Array,
            "object" => Kind::Object,
            _ => return None,
        })
    }

    /// Whether the JSON text `value` is of this kind.
    fn admits(&self, value: &str) -> bool {
        let first = value.as_bytes().first().copied().unwrap_or(b'n');
        match self {
            Kind::String => first == b'"',
            Kind::Number => first == b'-' || first.is_ascii_digit(),
            Kind::Boolean => first == b't' || first == b'f',
            Kind::Array => first == b'[',
            Kind::Object => first == b'{',
            Kind::Enum(values) => values.iter().any(|v| v == value),
        }
    }

    /// What the plan expects, for messages (`a number`, `one of "free", "pro"`).
    fn expected(&self) -> String {
        match self {
            Kind::String => "a string".into(),
            Kind::Number => "a number".into(),
            Kind::Boolean => "a boolean".into(),
            Kind::Array => "an array".into(),
            Kind::Object => "an object".into(),
            Kind::Enum(values) => format!("one of {}", values.join(", ")),
        }
    }
}

/// What a property's JSON text is, for messages.
fn got(value: &str) -> String {
    match value.as_bytes().first() {
        Some(b'"') if value.len() <= 40 => format!("the string {value}"),
        Some(b'"') => "a string".into(),
        Some(b't' | b'f') => format!("the boolean {value}"),
        Some(b'[') => "an array".into(),
        Some(b'{') => "an object".into(),
        Some(b'n') | None => "null".into(),
        _ => format!("the number {value}"),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PropertyPlan {
    /// The key as JSON text (`"plan"`), as [`Props::members`] gives keys.
    key_json: String,
    kind: Kind,
    required: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct EventPlan {
    name: String,
    /// Sorted by `key_json`.
    properties: Vec<PropertyPlan>,
    required: usize,
    additional: bool,
}

/// A checked tracking plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by name (names normalised as `track()` normalises them).
    events: Vec<EventPlan>,
}

/// How an event breaks the plan: `UNKNOWN_EVENT` or `INVALID_PROPERTY`, with the field
/// (`eventName`, `properties.seats`) and a message naming what was expected.
pub type Violation = Error;

fn invalid(field: String, message: String) -> Error {
    Error::at(ErrorCode::InvalidOption, field, message)
}

impl Plan {
    /// Checks the plan JavaScript gave (`plan`, read from the loader's plain JSON copy of the
    /// object at the edge), naming the spot of what is wrong (`plan.signup.properties.seats: ...`).
    pub fn from_spec(spec: &Json) -> Result<Plan> {
        let Json::Object(events) = spec else {
            return Err(invalid("plan".into(), format!("plan must be an object of event names, got {}", kind_of(spec))));
        };
        if events.len() > MAX_PLAN_EVENTS {
            return Err(invalid("plan".into(), format!("plan may declare at most {MAX_PLAN_EVENTS} events, got {}", events.len())));
        }
        let mut out: Vec<EventPlan> = Vec::with_capacity(events.len());
        for (name, event) in events {
            let field = format!("plan.{name}");
            let normal = normalize_event_name(name).map_err(|e| invalid(field.clone(), format!("{field}: {}", e.message)))?;
            // Kept sorted as it is built: an insertion where a sort would be (the standard sorts
            // cost kilobytes of wasm per element type; a plan has at most 2,000 events).
            match out.binary_search_by(|e| e.name.cmp(&normal)) {
                Ok(_) => {
                    return Err(invalid(
                        field.clone(),
                        format!("{field}: the event {} is declared twice (names are compared in lower case)", quoted(&normal)),
                    ))
                }
                Err(at) => out.insert(at, event_plan(normal, event, &field)?),
            }
        }
        Ok(Plan { events: out })
    }

    /// How many events the plan declares.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the plan declares no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Checks `track(name, props)`; `name` normalised as `track()` normalises it
    /// ([`normalize_event_name`]).
    pub fn check(&self, name: &str, props: &Props) -> std::result::Result<(), Violation> {
        let Ok(at) = self.events.binary_search_by(|e| e.name.as_str().cmp(name)) else {
            return Err(self.unknown(name));
        };
        let event = &self.events[at];
        let mut required = 0;
        for (key, value) in props.members() {
            match event.properties.binary_search_by(|p| p.key_json.as_str().cmp(key)) {
                Ok(i) => {
                    let p = &event.properties[i];
                    if !p.kind.admits(value) {
                        return Err(property(name, key, format!("must be {} by the tracking plan, got {}", p.kind.expected(), got(value))));
                    }
                    required += usize::from(p.required);
                }
                Err(_) if event.additional => {}
                Err(_) => {
                    let known: Vec<&str> = event.properties.iter().map(|p| p.key_json.as_str()).collect();
                    let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                    return Err(property(name, key, format!("is not in the tracking plan for {} (its properties: {known})", quoted(name))));
                }
            }
        }
        if required < event.required {
            let missing = event.properties.iter().find(|p| p.required && !props.has_key(&p.key_json));
            if let Some(p) = missing {
                return Err(property(name, &p.key_json, format!("is required by the tracking plan for {}: {}", quoted(name), p.kind.expected())));
            }
        }
        Ok(())
    }

    fn unknown(&self, name: &str) -> Violation {
        let near = self
            .events
            .iter()
            .map(|e| e.name.as_str())
            .min_by_key(|known| distance(known, name))
            .filter(|known| distance(known, name) <= 2 + name.len() / 4);
        let hint = near.map(|n| format!(" (did you mean {}?)", quoted(n))).unwrap_or_default();
        Error::at(ErrorCode::UnknownEvent, "eventName", format!("the event {} is not in the tracking plan{hint}", quoted(name)))
    }
}

/// `INVALID_PROPERTY` at `properties.<key>` (`key_json`: the key as JSON text).
fn property(event: &str, key_json: &str, rest: String) -> Violation {
    let key = key_json.strip_prefix('"').and_then(|k| k.strip_suffix('"')).unwrap_or(key_json);
    let field = format!("properties.{key}");
    Error::at(ErrorCode::InvalidProperty, field.clone(), format!("{}: {field} {rest}", quoted(event)))
}

fn event_plan(name: String, spec: &Json, field: &str) -> Result<EventPlan> {
    let Json::Object(members) = spec else {
        return Err(invalid(field.into(), format!("{field} must be an object ({{ properties, additionalProperties }}), got {}", kind_of(spec))));
    };
    let mut properties = Vec::new();
    let mut additional = false;
    for (key, value) in members {
        let at = format!("{field}.{key}");
        match (key.as_str(), value) {
            ("properties", Json::Object(props)) => {
                if props.len() > MAX_PLAN_PROPERTIES {
                    return Err(invalid(at.clone(), format!("{at} may declare at most {MAX_PLAN_PROPERTIES} properties, got {}", props.len())));
                }
                for (prop, spec) in props {
                    let at = format!("{at}.{prop}");
                    if prop.starts_with('$') || prop.is_empty() {
                        return Err(invalid(at.clone(), format!("{at}: a property name must not be empty or start with '$' (those are the SDK's)")));
                    }
                    let plan = property_plan(prop, spec, &at)?;
                    let at = properties.binary_search_by(|p: &PropertyPlan| p.key_json.cmp(&plan.key_json)).unwrap_or_else(|i| i);
                    properties.insert(at, plan);
                }
            }
            ("additionalProperties", Json::Bool(b)) => additional = *b,
            ("properties", other) => return Err(invalid(at.clone(), format!("{at} must be an object of property names, got {}", kind_of(other)))),
            ("additionalProperties", other) => return Err(invalid(at.clone(), format!("{at} must be a boolean, got {}", kind_of(other)))),
            (other, _) => return Err(invalid(at.clone(), format!("{at}: unknown key {} (known: properties, additionalProperties)", quoted(other)))),
        }
    }
    let required = properties.iter().filter(|p| p.required).count();
    Ok(EventPlan { name, properties, required, additional })
}

fn property_plan(key: &str, spec: &Json, at: &str) -> Result<PropertyPlan> {
    let type_names = TYPE_NAMES.join(", ");
    let named = |name: &str| {
        Kind::named(name)
            .ok_or_else(|| invalid(at.into(), format!("{at}: unknown type {} (known: {type_names}, or {{ enum: [...] }})", quoted(name))))
    };
    let (kind, required) = match spec {
        Json::String(name) => (named(name)?, true),
        Json::Object(members) => {
            let mut kind = None;
            let mut required = true;
            for (k, v) in members {
                match (k.as_str(), v) {
                    ("type", Json::String(name)) => kind = Some(named(name)?),
                    ("enum", Json::Array(values)) => {
                        let texts = values
                            .iter()
                            .map(|v| match v {
                                Json::String(s) => Ok(quoted(s)),
                                other => Err(invalid(format!("{at}.enum"), format!("{at}.enum must hold strings, got {}", kind_of(other)))),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        if texts.is_empty() {
                            return Err(invalid(format!("{at}.enum"), format!("{at}.enum must not be empty")));
                        }
                        kind = Some(Kind::Enum(texts));
                    }
                    ("required", Json::Bool(b)) => required = *b,
                    ("type", other) | ("enum", other) | ("required", other) => {
                        return Err(invalid(format!("{at}.{k}"), format!("{at}.{k} has the wrong type: {}", kind_of(other))))
                    }
                    (other, _) => {
                        return Err(invalid(format!("{at}.{other}"), format!("{at}: unknown key {} (known: type, enum, required)", quoted(other))))
                    }
                }
            }
            let kind = kind.ok_or_else(|| invalid(at.into(), format!("{at} needs a type ({type_names}) or an enum")))?;
            (kind, required)
        }
        other => {
            return Err(invalid(at.into(), format!("{at} must be a type name ({type_names}) or {{ type, enum, required }}, got {}", kind_of(other))))
        }
    };
    Ok(PropertyPlan { key_json: quoted(key), kind, required })
}

/// The edit distance of two short names (for "did you mean"): only on the error path.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
