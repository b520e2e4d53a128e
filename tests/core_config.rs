#![cfg(not(target_arch = "wasm32"))]
//! Host tests of `core::config`: option validation into a `Config`.

use inhouse_tracker::core::config::{
    self, is_extension_id, validate, validate_base_url, validate_credentials, Config, Credentials, Limits, Options, RetryPolicy, Scope, Taken,
    Value as Given, AUTO_EVENT_NAMES, DEFAULT_BASE_URL, OPTION_NAMES, RETRY_OPTION_NAMES, TRACK_PATH,
};
use inhouse_tracker::core::error::{Error, ErrorCode};
use serde_json::{json, Value};

mod host_json;

const EXT: &str = "abcdefghijklmnopabcdefghijklmnop";
const OTHER_EXT: &str = "ponmlkjihgfedcbaponmlkjihgfedcba";
const SECRET: &str = "s3cr3t-Value_xyz";

/// A JSON value as the edge reads a JavaScript one.
fn given(v: &Value) -> Given {
    match v {
        Value::String(s) => Given::Text(s.clone()),
        Value::Number(n) => Given::Number(n.as_f64().unwrap()),
        Value::Bool(b) => Given::Bool(*b),
        Value::Null => Given::Other("null"),
        Value::Array(_) => Given::Array,
        Value::Object(_) => Given::Object,
    }
}

/// Reads an options object key by key, as `web::options::read` does.
fn read(v: &Value) -> Result<Options, Error> {
    fn keys(o: &mut Options, v: &Value, scope: Scope) -> Result<(), Error> {
        for (k, x) in v.as_object().into_iter().flatten() {
            match o.set(scope, k, given(x))? {
                Taken::ReadRetry => keys(o, x, Scope::Retry)?,
                Taken::ReadAutoEvents => keys(o, x, Scope::AutoEvents)?,
                Taken::ReadPlan => o.plan = Some(host_json::to_json(x)),
                _ => {}
            }
        }
        Ok(())
    }
    let mut o = Options::default();
    keys(&mut o, v, Scope::Top)?;
    Ok(o)
}

fn opts(v: Value) -> Options {
    read(&v).expect("options read")
}

/// Valid credentials plus the given extra keys.
fn with(extra: Value) -> Options {
    let mut base = json!({ "tokenId": "tid_123", "tokenSecret": SECRET });
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    opts(base)
}

fn ok(extra: Value) -> (Config, Vec<String>) {
    validate(with(extra), Some(EXT)).expect("valid options")
}

fn err(extra: Value) -> Error {
    validate(with(extra), Some(EXT)).expect_err("invalid options")
}

fn assert_invalid(e: &Error, field: &str) {
    assert_eq!(e.code, ErrorCode::InvalidOption, "{e:?}");
    assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
    assert!(e.message.contains(field), "message should name {field}: {}", e.message);
}

#[test]
fn defaults() {
    let (c, warnings) = ok(json!({}));
    assert!(warnings.is_empty());
    assert_eq!(c.base_url, DEFAULT_BASE_URL);
    assert_eq!(c.base_url, "https://api.tryinhouse.co/v1/api");
    assert_eq!(c.track_url(), "https://api.tryinhouse.co/v1/api/chrome/events/track");
    assert_eq!(TRACK_PATH, "/chrome/events/track");
    assert_eq!(c.app_id, EXT);
    assert_eq!(c.credentials, Credentials { token_id: "tid_123".into(), token_secret: SECRET.into() });
    assert_eq!(c.limits, Limits { max_queue_events: 20_000, max_queue_bytes: 4 * 1024 * 1024, max_event_bytes: 32 * 1024 });
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.retry, RetryPolicy { base_delay_ms: 1_000, max_delay_ms: 300_000, max_attempts: 25, max_retry_after_ms: 86_400_000 });
    assert_eq!(c.retry, RetryPolicy::default());
    assert_eq!(c.request_timeout_ms, 10_000);
    assert_eq!(c.concurrency, 6);
    assert!(!c.debug);
}

#[test]
fn every_option_is_read() {
    let (c, _) = ok(json!({
        "maxQueueEvents": 7, "maxQueueBytes": 2048, "maxEventBytes": 512, "requestTimeoutMs": 2500,
        "concurrency": 2, "debug": true, "wasmUrl": "chrome-extension://x/tracker.wasm",
        "retry": { "baseDelayMs": 200, "maxDelayMs": 5000, "maxAttempts": 3, "maxRetryAfterMs": 60000 },
        "baseUrl": "https://example.com/v1/api/"
    }));
    assert_eq!(c.limits, Limits { max_queue_events: 7, max_queue_bytes: 2048, max_event_bytes: 512 });
    assert_eq!(c.retry, RetryPolicy { base_delay_ms: 200, max_delay_ms: 5000, max_attempts: 3, max_retry_after_ms: 60000 });
    assert_eq!(c.request_timeout_ms, 2500);
    assert_eq!(c.concurrency, 2);
    assert!(c.debug);
    assert_eq!(c.base_url, "https://example.com/v1/api");
}

/// (option as JSON, a value below its range, a value above it, the field named in the error)
fn ranges() -> Vec<(Value, Value, &'static str)> {
    vec![
        (json!({"maxQueueEvents": 0}), json!({"maxQueueEvents": 1_000_001}), "maxQueueEvents"),
        (json!({"maxQueueBytes": 1023}), json!({"maxQueueBytes": 64 * 1024 * 1024 + 1}), "maxQueueBytes"),
        (json!({"maxEventBytes": 255}), json!({"maxEventBytes": 1024 * 1024 + 1}), "maxEventBytes"),
        (json!({"requestTimeoutMs": 99}), json!({"requestTimeoutMs": 25_001}), "requestTimeoutMs"),
        (json!({"concurrency": 0}), json!({"concurrency": 17}), "concurrency"),
        (json!({"retry": {"baseDelayMs": 99}}), json!({"retry": {"baseDelayMs": 600_001}}), "retry.baseDelayMs"),
        (json!({"retry": {"maxDelayMs": 999}}), json!({"retry": {"maxDelayMs": 86_400_001}}), "retry.maxDelayMs"),
        (json!({"retry": {"maxAttempts": 0}}), json!({"retry": {"maxAttempts": 1001}}), "retry.maxAttempts"),
        (json!({"retry": {"maxRetryAfterMs": 999}}), json!({"retry": {"maxRetryAfterMs": 7 * 86_400_000u64 + 1}}), "retry.maxRetryAfterMs"),
    ]
}

#[test]
fn each_option_out_of_range_is_invalid_option_naming_the_field() {
    for (low, high, field) in ranges() {
        for bad in [low, high] {
            let e = err(bad.clone());
            assert_invalid(&e, field);
            assert!(e.message.contains("between"), "{bad}: {}", e.message);
        }
    }
}

#[test]
fn range_boundaries_are_accepted() {
    let (c, _) = ok(json!({"maxQueueEvents": 1, "maxEventBytes": 256, "maxQueueBytes": 1024,
        "requestTimeoutMs": 100, "concurrency": 1,
        "retry": {"baseDelayMs": 100, "maxDelayMs": 1000, "maxAttempts": 1, "maxRetryAfterMs": 1000}}));
    assert_eq!(c.limits, Limits { max_queue_events: 1, max_queue_bytes: 1024, max_event_bytes: 256 });
    assert_eq!(c.retry, RetryPolicy { base_delay_ms: 100, max_delay_ms: 1000, max_attempts: 1, max_retry_after_ms: 1000 });
    assert_eq!((c.request_timeout_ms, c.concurrency), (100, 1));

    let (c, _) = ok(json!({"maxQueueEvents": 1_000_000, "maxEventBytes": 1024 * 1024, "maxQueueBytes": 64 * 1024 * 1024,
        "requestTimeoutMs": 25_000, "concurrency": 16,
        "retry": {"baseDelayMs": 600_000, "maxDelayMs": 86_400_000, "maxAttempts": 1000, "maxRetryAfterMs": 7 * 86_400_000u64}}));
    assert_eq!(c.limits.max_queue_events, 1_000_000);
    assert_eq!(c.limits.max_queue_bytes, 64 * 1024 * 1024);
    assert_eq!(c.limits.max_event_bytes, 1024 * 1024);
    assert_eq!(c.retry.max_retry_after_ms, 7 * 86_400_000);
    assert_eq!((c.request_timeout_ms, c.concurrency, c.retry.max_attempts), (25_000, 16, 1000));
}

#[test]
fn cross_field_rules() {
    // A per-event limit larger than the whole queue.
    let e = err(json!({"maxQueueBytes": 1024}));
    assert_invalid(&e, "maxEventBytes");
    let e = err(json!({"maxQueueBytes": 2048, "maxEventBytes": 2049}));
    assert_invalid(&e, "maxEventBytes");
    ok(json!({"maxQueueBytes": 2048, "maxEventBytes": 2048}));
    // A backoff cap below its base.
    let e = err(json!({"retry": {"baseDelayMs": 5000, "maxDelayMs": 4999}}));
    assert_invalid(&e, "retry.maxDelayMs");
    let e = err(json!({"retry": {"baseDelayMs": 600_000}})); // default cap 300 s < base
    assert_invalid(&e, "retry.maxDelayMs");
    ok(json!({"retry": {"baseDelayMs": 5000, "maxDelayMs": 5000}}));
}

fn cred_err(id: Option<&str>, secret: Option<&str>) -> Error {
    validate_credentials(id.map(String::from), secret.map(String::from)).expect_err("invalid credentials")
}

#[test]
fn token_id_missing_empty_or_whitespace() {
    assert_invalid(&cred_err(None, Some(SECRET)), "tokenId");
    let e = cred_err(Some(""), Some(SECRET));
    assert_invalid(&e, "tokenId");
    assert!(e.message.contains("empty"));
    for bad in [" ", "   ", "\t", "tid 123", " tid", "tid\n", "tïd"] {
        assert_invalid(&cred_err(Some(bad), Some(SECRET)), "tokenId");
    }
    assert_invalid(&cred_err(Some(&"a".repeat(257)), Some(SECRET)), "tokenId");
    assert!(validate_credentials(Some("a".repeat(256)), Some(SECRET.into())).is_ok());
    // Through validate as well, and missing from the JSON options entirely.
    let e = validate(opts(json!({"tokenSecret": SECRET})), Some(EXT)).unwrap_err();
    assert_invalid(&e, "tokenId");
}

#[test]
fn token_secret_missing_empty_or_whitespace_and_never_echoed() {
    assert_invalid(&cred_err(Some("tid"), None), "tokenSecret");
    assert_invalid(&cred_err(Some("tid"), Some("")), "tokenSecret");
    for s in [" ", "  \t ", "\n"] {
        assert_invalid(&cred_err(Some("tid"), Some(s)), "tokenSecret");
    }
    // Distinctive fragments, so a leak cannot hide behind ordinary words of the message.
    let secrets = ["Qx7zK9 Wv2pR4", " Qx7zK9Wv2pR4", "Qx7zK9Wv2pR4\n", "Qx7zK9-ü-Wv2pR4", "Qx7zK9\tWv2pR4"];
    for s in secrets {
        let e = cred_err(Some("tid"), Some(s));
        assert_invalid(&e, "tokenSecret");
        for shown in [e.message.clone(), e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("Qx7zK9") && !shown.contains("Wv2pR4"), "secret leaked: {shown}");
        }
    }
    // The token id, by contrast, is echoed to help find the stray character.
    let e = cred_err(Some("tid Qx7zK9"), Some(SECRET));
    assert!(e.message.contains("tid Qx7zK9"), "{}", e.message);
    let long = format!("{}{}", SECRET, "x".repeat(300));
    let e = cred_err(Some("tid"), Some(&long));
    assert_invalid(&e, "tokenSecret");
    assert!(!e.message.contains(SECRET));
    let e = validate(opts(json!({"tokenId": "tid"})), Some(EXT)).unwrap_err();
    assert_invalid(&e, "tokenSecret");
}

#[test]
fn credentials_debug_redacts_the_secret() {
    let c = Credentials { token_id: "tid_visible".into(), token_secret: SECRET.into() };
    let shown = format!("{c:?}");
    assert!(shown.contains("tid_visible"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    let (config, _) = ok(json!({}));
    let shown = format!("{config:?} {config:#?}");
    assert!(!shown.contains(SECRET), "Config's Debug leaks the secret: {shown}");
    assert!(shown.contains("tid_123"));
}

#[test]
fn app_id_must_match_the_runtime_id() {
    let e = validate(with(json!({"appId": OTHER_EXT})), Some(EXT)).unwrap_err();
    assert_eq!(e.code, ErrorCode::AppIdMismatch);
    assert_eq!(e.code.as_str(), "APP_ID_MISMATCH");
    assert_eq!(e.field.as_deref(), Some("appId"));
    assert!(e.message.contains(OTHER_EXT) && e.message.contains(EXT), "{}", e.message);
    // allowAnyAppId does not override a real runtime id.
    let e = validate(with(json!({"appId": "dev-app", "allowAnyAppId": true})), Some(EXT)).unwrap_err();
    assert_eq!(e.code, ErrorCode::AppIdMismatch);
    // Equal, or omitted: the runtime id.
    assert_eq!(validate(with(json!({"appId": EXT})), Some(EXT)).unwrap().0.app_id, EXT);
    assert_eq!(validate(with(json!({})), Some(EXT)).unwrap().0.app_id, EXT);
    assert_eq!(validate(with(json!({})), Some(OTHER_EXT)).unwrap().0.app_id, OTHER_EXT);
}

#[test]
fn app_id_outside_an_extension() {
    let e = validate(with(json!({})), None).unwrap_err();
    assert_invalid(&e, "appId");
    assert!(e.message.contains("required"));
    assert_eq!(validate(with(json!({"appId": EXT})), None).unwrap().0.app_id, EXT);
    for bad in ["dev-app", "", "ABCDEFGHIJKLMNOPABCDEFGHIJKLMNOP", "abcdefghijklmnopabcdefghijklmnoq", &EXT[..31], &format!("{EXT}a")] {
        let e = validate(with(json!({"appId": bad})), None).unwrap_err();
        assert_invalid(&e, "appId");
        assert!(e.message.contains("allowAnyAppId"), "{}", e.message);
    }
    let (c, _) = validate(with(json!({"appId": "dev-app", "allowAnyAppId": true})), None).unwrap();
    assert_eq!(c.app_id, "dev-app");
    for bad in ["", "has space", &"x".repeat(257)] {
        let e = validate(with(json!({"appId": bad, "allowAnyAppId": true})), None).unwrap_err();
        assert_invalid(&e, "appId");
    }
    let e = validate(with(json!({"appId": "dev-app", "allowAnyAppId": false})), None).unwrap_err();
    assert_invalid(&e, "appId");
}

#[test]
fn extension_id_shape() {
    assert!(is_extension_id(EXT));
    assert!(is_extension_id(&"p".repeat(32)));
    assert!(!is_extension_id(&"a".repeat(31)));
    assert!(!is_extension_id(&"a".repeat(33)));
    assert!(!is_extension_id(&"q".repeat(32)));
    assert!(!is_extension_id(&"A".repeat(32)));
    assert!(!is_extension_id(&"1".repeat(32)));
    assert!(!is_extension_id(""));
}

fn base(raw: &str) -> Result<(String, Vec<String>), Error> {
    let mut w = Vec::new();
    validate_base_url(raw, &mut w).map(|u| (u, w))
}

#[test]
fn base_url_https_and_loopback_http() {
    for (raw, want) in [
        ("https://api.tryinhouse.co/v1/api", "https://api.tryinhouse.co/v1/api"),
        ("https://api.tryinhouse.co/v1/api/", "https://api.tryinhouse.co/v1/api"),
        ("https://api.tryinhouse.co/v1/api///", "https://api.tryinhouse.co/v1/api"),
        ("https://example.com", "https://example.com"),
        ("https://example.com/", "https://example.com"),
        ("HTTPS://example.com:8443/x", "HTTPS://example.com:8443/x"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.10.20.30/v1/api/", "http://127.10.20.30/v1/api"),
        ("http://localhost:3000/v1/api", "http://localhost:3000/v1/api"),
        ("http://LocalHost", "http://LocalHost"),
        ("http://[::1]:8080/v1/api", "http://[::1]:8080/v1/api"),
    ] {
        let (got, w) = base(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(got, want, "{raw}");
        assert!(w.is_empty(), "{raw}: {w:?}");
    }
}

#[test]
fn base_url_rejections() {
    for raw in [
        "http://example.com",
        "http://api.tryinhouse.co/v1/api",
        "http://10.0.0.1",
        "http://127.0.0.1.evil.com",
        "http://localhost.evil.com",
        "http://127.0.0",
        "http://[::2]",
        "ftp://example.com",
        "example.com/v1/api",
        "/v1/api",
        "",
        "https://",
        "https:///v1/api",
        "https://example.com/v1/api?x=1",
        "https://example.com?x=1",
        "https://example.com/v1/api#frag",
        "https://user:pw@example.com/v1/api",
        "https://user@example.com",
        "https://exa mple.com",
        "https://example.com/v1 /api",
    ] {
        let e = base(raw).expect_err(raw);
        assert_invalid(&e, "baseUrl");
    }
    let e = err(json!({"baseUrl": "http://example.com"}));
    assert_invalid(&e, "baseUrl");
    assert!(e.message.contains("https"), "{}", e.message);
    // A password in the URL is never repeated back.
    let e = base("https://user:hunter2@example.com/v1/api").unwrap_err();
    assert!(!e.message.contains("hunter2"), "{}", e.message);
}

#[test]
fn legacy_api_base_is_accepted_with_a_warning() {
    for raw in ["https://api.tryinhouse.co/api", "https://api.tryinhouse.co/api/"] {
        let (got, w) = base(raw).unwrap();
        assert_eq!(got, "https://api.tryinhouse.co/api");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("deprecated"), "{}", w[0]);
        assert!(w[0].contains("https://api.tryinhouse.co/v1/api"), "{}", w[0]);
    }
    let (c, warnings) = ok(json!({"baseUrl": "https://api.tryinhouse.co/api"}));
    assert_eq!(c.base_url, "https://api.tryinhouse.co/api");
    assert_eq!(c.track_url(), "https://api.tryinhouse.co/api/chrome/events/track");
    assert_eq!(warnings.len(), 1);
    // Only the exact legacy path warns.
    assert!(base("https://api.tryinhouse.co/v1/api").unwrap().1.is_empty());
    assert!(base("https://api.tryinhouse.co/apis").unwrap().1.is_empty());
}

#[test]
fn unknown_option_keys_are_rejected() {
    for (v, field) in [
        (json!({"tokenID": "x"}), "tokenID"),
        (json!({"tokenId": "x", "token_secret": "y"}), "token_secret"),
        (json!({"tokenId": "x", "tokenSecret": "y", "maxQueue": 5}), "maxQueue"),
        (json!({"tokenId": "x", "tokenSecret": "y", "retry": {"maxAttempt": 5}}), "retry.maxAttempt"),
        (json!({"tokenId": "x", "tokenSecret": "y", "retry": {"base_delay_ms": 5}}), "retry.base_delay_ms"),
        // A key of `retry` is not a top-level option, nor the other way round.
        (json!({"maxAttempts": 5}), "maxAttempts"),
        (json!({"retry.maxAttempts": 5}), "retry.maxAttempts"),
        (json!({"retry": {"concurrency": 5}}), "retry.concurrency"),
        (json!({"retry": {"retry": {}}}), "retry.retry"),
    ] {
        let e = read(&v).expect_err(&v.to_string());
        assert_invalid(&e, field);
        assert!(e.message.starts_with("unknown option"), "{v}: {}", e.message);
    }
    // Every documented key is read.
    let o = opts(json!({
        "tokenId": "a", "tokenSecret": "b", "appId": EXT, "baseUrl": "https://x.y", "allowAnyAppId": false,
        "maxQueueEvents": 1, "maxQueueBytes": 2048, "maxEventBytes": 256, "requestTimeoutMs": 1000,
        "concurrency": 1, "debug": false, "wasmUrl": "x.wasm",
        "retry": {"baseDelayMs": 100, "maxDelayMs": 1000, "maxAttempts": 1, "maxRetryAfterMs": 1000}
    }));
    assert_eq!(o.token_id.as_deref(), Some("a"));
    assert_eq!(o.token_secret.as_deref(), Some("b"));
    assert_eq!(o.app_id.as_deref(), Some(EXT));
    assert_eq!(o.base_url.as_deref(), Some("https://x.y"));
    assert_eq!(o.retry.max_attempts, Some(1));
    assert_eq!(o.allow_any_app_id, Some(false));
    assert_eq!(o.wasm_url.as_deref(), Some("x.wasm"));
    // Undefined-free `retry: []` sets nothing, as an object without keys.
    assert!(read(&json!({"retry": []})).is_ok());
    // The hooks take functions.
    let mut o = Options::default();
    assert_eq!(o.set(Scope::Top, "onError", Given::Function), Ok(Taken::OnError));
    assert_eq!(o.set(Scope::Top, "onDrop", Given::Function), Ok(Taken::OnDrop));
    let e = o.set(Scope::Top, "onDrop", Given::Text("f".into())).unwrap_err();
    assert_eq!(e.message, "onDrop must be a function, got string");
}

#[test]
fn wrong_types_name_the_field_and_the_type_got() {
    for (v, field, message) in [
        (json!({"concurrency": -1}), "concurrency", "concurrency must be a whole number, got -1"),
        (json!({"concurrency": "4"}), "concurrency", "concurrency must be a whole number, got string"),
        (json!({"concurrency": 1.5}), "concurrency", "concurrency must be a whole number, got a fractional number"),
        (json!({"concurrency": 4_294_967_296u64}), "concurrency", "concurrency must be a whole number, got 4294967296"),
        (json!({"concurrency": null}), "concurrency", "concurrency must be a whole number, got null"),
        (json!({"tokenId": 5}), "tokenId", "tokenId must be a string, got 5"),
        (json!({"tokenId": [1]}), "tokenId", "tokenId must be a string, got an array"),
        (json!({"baseUrl": {}}), "baseUrl", "baseUrl must be a string, got object"),
        (json!({"debug": "yes"}), "debug", "debug must be true or false, got string"),
        (json!({"allowAnyAppId": 1}), "allowAnyAppId", "allowAnyAppId must be true or false, got 1"),
        (json!({"retry": 3}), "retry", "retry must be an object, got 3"),
        (json!({"retry": {"maxAttempts": 1.5}}), "retry.maxAttempts", "retry.maxAttempts must be a whole number, got a fractional number"),
        (json!({"retry": {"maxAttempts": true}}), "retry.maxAttempts", "retry.maxAttempts must be a whole number, got boolean"),
        (json!({"onError": "f"}), "onError", "onError must be a function, got string"),
    ] {
        let e = read(&v).expect_err(&v.to_string());
        assert_invalid(&e, field);
        assert_eq!(e.message, message);
    }
    let mut o = Options::default();
    for (v, got) in [
        (Given::Number(-1e300), "-9223372036854775808"),
        (Given::Number(f64::NAN), "a fractional number"),
        (Given::Number(f64::INFINITY), "a fractional number"),
        (Given::Other("symbol"), "symbol"),
        (Given::Function, "function"),
    ] {
        let e = o.set(Scope::Top, "maxQueueEvents", v).unwrap_err();
        assert_eq!(e.message, format!("maxQueueEvents must be a whole number, got {got}"));
    }
}

#[test]
fn error_display_and_codes() {
    let e = err(json!({"concurrency": 0}));
    assert_eq!(e.to_string(), format!("INVALID_OPTION: {}", e.message));
    assert_eq!(ErrorCode::InvalidOption.as_str(), "INVALID_OPTION");
    assert_eq!(ErrorCode::StorageError.as_str(), "STORAGE_ERROR");
    assert_eq!(ErrorCode::EventTooLarge.as_str(), "EVENT_TOO_LARGE");
    assert_eq!(ErrorCode::RateLimited.as_str(), "RATE_LIMITED");
}

#[test]
fn the_option_names() {
    assert_eq!(
        OPTION_NAMES,
        [
            "tokenId",
            "tokenSecret",
            "appId",
            "baseUrl",
            "allowAnyAppId",
            "maxQueueEvents",
            "maxQueueBytes",
            "maxEventBytes",
            "requestTimeoutMs",
            "concurrency",
            "sessionTimeoutMs",
            "pageUrl",
            "enabled",
            "autoEvents",
            "captureErrors",
            "sampleRate",
            "uninstallUrl",
            "retry",
            "debug",
            "wasmUrl",
            "onError",
            "onDrop",
            "beforeSend",
            "plan",
            "planMode",
        ]
    );
    assert_eq!(RETRY_OPTION_NAMES, ["baseDelayMs", "maxDelayMs", "maxAttempts", "maxRetryAfterMs"]);
    // Each listed name is known to `set` (a value of no option's type is a type error, not an
    // unknown option), and no name is known that the list leaves out.
    for (scope, names) in [(Scope::Top, &OPTION_NAMES[..]), (Scope::Retry, &RETRY_OPTION_NAMES[..]), (Scope::AutoEvents, &AUTO_EVENT_NAMES[..])] {
        for name in names {
            // The did-you-mean compare assumes names without underscores.
            assert!(!name.contains('_'), "{name}");
            let e = Options::default().set(scope, name, Given::Other("symbol")).unwrap_err();
            assert!(e.message.ends_with("got symbol"), "{name}: {}", e.message);
        }
    }
    for range in [
        config::MAX_QUEUE_EVENTS,
        config::MAX_QUEUE_BYTES,
        config::MAX_EVENT_BYTES,
        config::REQUEST_TIMEOUT_MS,
        config::CONCURRENCY,
        config::SESSION_TIMEOUT_MS,
        config::RETRY_BASE_DELAY_MS,
        config::RETRY_MAX_DELAY_MS,
        config::RETRY_MAX_ATTEMPTS,
        config::RETRY_MAX_RETRY_AFTER_MS,
    ] {
        assert!(range.min <= range.default && range.default <= range.max, "{range:?}");
    }
}

#[test]
fn unknown_option_messages() {
    let e = read(&json!({"tokenID": "typo"})).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidOption);
    assert_eq!(e.field.as_deref(), Some("tokenID"));
    assert_eq!(
        e.message,
        "unknown option \"tokenID\" (did you mean \"tokenId\"?); known options: tokenId, tokenSecret, appId, baseUrl, \
         allowAnyAppId, maxQueueEvents, maxQueueBytes, maxEventBytes, requestTimeoutMs, concurrency, sessionTimeoutMs, pageUrl, \
         enabled, autoEvents, captureErrors, sampleRate, uninstallUrl, retry, debug, wasmUrl, onError, onDrop, beforeSend, plan, planMode"
    );
    let e = read(&json!({"retry": {"max_attempts": 3}})).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("retry.max_attempts"));
    assert_eq!(
        e.message,
        "unknown option \"retry.max_attempts\" (did you mean \"maxAttempts\"?); known options: baseDelayMs, maxDelayMs, \
         maxAttempts, maxRetryAfterMs"
    );
    for (key, near) in [("TOKENID", "tokenId"), ("token_id", "tokenId"), ("Base_Url", "baseUrl"), ("on_error", "onError")] {
        let e = read(&json!({ key: 1 })).unwrap_err();
        assert!(e.message.contains(&format!("did you mean \"{near}\"")), "{key}: {}", e.message);
    }
    for key in ["flavour", "tokenIdx", "tokenI", "_", "", "maxAtempts"] {
        let e = read(&json!({ key: 1 })).unwrap_err();
        assert!(!e.message.contains("did you mean"), "{key}: {}", e.message);
        assert!(e.message.contains("tokenId") && e.message.contains("concurrency"), "lists the known options: {}", e.message);
    }
    // A name is quoted as JSON, so a strange key cannot break the message.
    let e = read(&json!({"a\"b\n": 1})).unwrap_err();
    assert!(e.message.starts_with("unknown option \"a\\\"b\\n\";"), "{}", e.message);
}

/// The messages word for word, as they were before the option table (built with `format!`).
#[test]
fn messages_word_for_word() {
    let msg = |r: Result<(Config, Vec<String>), Error>| r.unwrap_err().message;
    assert_eq!(msg(validate(with(json!({"concurrency": 0})), Some(EXT))), "concurrency must be between 1 and 16, got 0");
    assert_eq!(
        msg(validate(with(json!({"retry": {"maxRetryAfterMs": 604_800_001u64}})), Some(EXT))),
        "retry.maxRetryAfterMs must be between 1000 and 604800000, got 604800001"
    );
    assert_eq!(msg(validate(with(json!({"maxQueueBytes": 1024})), Some(EXT))), "maxEventBytes must not exceed maxQueueBytes");
    assert_eq!(
        msg(validate(with(json!({"retry": {"maxDelayMs": 1000, "baseDelayMs": 2000}})), Some(EXT))),
        "retry.maxDelayMs must be at least retry.baseDelayMs"
    );
    assert_eq!(cred_err(None, Some(SECRET)).message, "tokenId is required");
    assert_eq!(cred_err(Some(""), Some(SECRET)).message, "tokenId must not be empty");
    assert_eq!(cred_err(Some(&"a".repeat(257)), Some(SECRET)).message, "tokenId must be at most 256 characters");
    assert_eq!(cred_err(Some("tid 1"), Some(SECRET)).message, "tokenId must be visible ASCII without spaces; found \" \" (in \"tid 1\")");
    assert_eq!(cred_err(Some("tïd"), Some(SECRET)).message, "tokenId must be visible ASCII without spaces; found \"ï\" (in \"tïd\")");
    assert_eq!(cred_err(Some("t€"), Some(SECRET)).message, "tokenId must be visible ASCII without spaces; found \"€\" (in \"t€\")");
    assert_eq!(cred_err(Some("tid"), None).message, "tokenSecret is required");
    assert_eq!(cred_err(Some("tid"), Some("a\tb")).message, "tokenSecret must be visible ASCII without spaces; found \"\\t\"");
    assert_eq!(
        msg(validate(with(json!({"appId": OTHER_EXT})), Some(EXT))),
        format!(
            "appId \"{OTHER_EXT}\" does not match this extension's id chrome.runtime.id \"{EXT}\"; the Inhouse API only accepts \
             events whose x-inhouse-app equals the registered extension id (omit appId to use chrome.runtime.id)"
        )
    );
    assert_eq!(msg(validate(with(json!({})), None)), "appId is required outside a Chrome extension (chrome.runtime.id is not available)");
    assert_eq!(
        msg(validate(with(json!({"appId": "dev-app"})), None)),
        "appId \"dev-app\" is not a Chrome extension id (32 letters a-p); set allowAnyAppId: true only for development"
    );
    for (raw, why) in [
        ("http://example.com/", "must use https (plain http is accepted only for 127.0.0.1, localhost or [::1])"),
        ("ftp://example.com", "must use https"),
        ("ht\0tps://example.com", "must use https"),
        ("example.com", "is not an absolute URL"),
        ("https:/example.com", "is not an absolute URL"),
        ("https://", "is not an absolute URL"),
        ("https:///v1/api", "has no host"),
        ("https://example.com/a?b", "must not contain a query or fragment"),
        ("https://example.com#b", "must not contain a query or fragment"),
        ("https://exa mple.com", "contains whitespace"),
        ("https://example.com/\u{a0}", "contains whitespace"),
        ("https://example.com/\u{85}", "contains whitespace"),
        ("https://example.com/\u{3000}", "contains whitespace"),
    ] {
        let e = base(raw).expect_err(raw);
        assert_eq!(e.message, format!("baseUrl {} {why}", serde_json::to_string(raw).unwrap()), "{raw}");
    }
    assert_eq!(base("https://u:p@example.com").unwrap_err().message, "baseUrl must not contain user info (user:password@)");
    assert_eq!(
        base("https://api.tryinhouse.co/api//").unwrap().1,
        ["baseUrl \"https://api.tryinhouse.co/api\" is the deprecated legacy base; use \"https://api.tryinhouse.co/v1/api\" instead"]
    );
    // Loopback hosts in any case, with or without a port; IPv6 in brackets.
    for raw in ["HTTP://LOCALHOST", "http://localhost:1/x", "http://127.0.0.1", "http://[::1]", "http://[::1]:80/"] {
        assert!(base(raw).is_ok(), "{raw}");
    }
    for raw in ["http://127.0.0.1.2", "http://[::1", "http://local_host", "http://localhos"] {
        let ok = base(raw).is_ok();
        assert_eq!(ok, raw == "http://[::1", "{raw}");
    }
}

#[test]
fn a_plan_is_checked_at_init_and_plan_mode_needs_one() {
    let (config, _) = ok(json!({ "plan": { "signup": { "properties": { "seats": "number" } } }, "planMode": "reject" }));
    assert_eq!(config.plan.as_ref().map(|p| p.len()), Some(1));
    assert_eq!(config.plan_mode, inhouse_tracker::core::plan::PlanMode::Reject);
    let (config, _) = ok(json!({ "plan": { "app_opened": {} } }));
    assert_eq!(config.plan_mode, inhouse_tracker::core::plan::PlanMode::Report, "report by default");
    assert_eq!(ok(json!({})).0.plan, None);
    assert_invalid(&err(json!({ "planMode": "reject" })), "planMode");
    assert_invalid(&err(json!({ "plan": { "app_opened": {} }, "planMode": "strict" })), "planMode");
    assert_invalid(&err(json!({ "plan": { "signup": { "properties": { "seats": "int" } } } })), "plan.signup.properties.seats");
    let e = read(&json!({ "tokenId": "t", "tokenSecret": SECRET, "plan": "signup" })).unwrap_err();
    assert_invalid(&e, "plan");
}
