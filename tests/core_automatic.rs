#![cfg(not(target_arch = "wasm32"))]
//! Host tests of the automatic events: lifecycle decisions from stored state with the clock
//! moved, the uninstall URL, errors reduced to this extension's frames and throttled, sampling by
//! install, and the options that switch them.

use inhouse_tracker::core::config::{validate, Options, Scope, Value as Given};
use inhouse_tracker::core::error::ErrorCode;
use inhouse_tracker::core::event::{new_install_id, Props, Rng};
use inhouse_tracker::core::exception::{Throttle, Thrown, MAX_DISTINCT_PER_MINUTE};
use inhouse_tracker::core::lifecycle::{at_start, daily_due, sample_point, uninstall_url, utc_day, AutoEvents, Lifecycle, Seen, Start};
use inhouse_tracker::core::origin::Extension;

const EXT: &str = "abcdefghijklmnopabcdefghijklmnop";

fn ext() -> Extension {
    Extension::chrome(EXT)
}
const DAY: u64 = 20_418; // 2025-11-26
const ALL: AutoEvents = AutoEvents { install: true, update: true, startup: true, daily: true };

fn start(version: &str, browser: &str, day: u64, browser_started: bool, new_install: bool) -> Start<'static> {
    let version: &'static str = Box::leak(version.to_string().into_boxed_str());
    let browser: &'static str = Box::leak(browser.to_string().into_boxed_str());
    Start { version: Some(version), browser_version: Some(browser), day, browser_started, new_install }
}

fn names(events: &[Lifecycle]) -> Vec<&'static str> {
    events.iter().map(Lifecycle::name).collect()
}

#[test]
fn an_install_then_restarts_updates_and_days() {
    // The first start of a new install.
    let (events, seen) = at_start(None, &start("1.0.0", "156", DAY, true, true), ALL);
    assert_eq!(names(&events), ["$extension_installed", "$daily_active"]);
    assert_eq!(seen, Seen { version: Some("1.0.0".into()), browser_version: Some("156".into()), daily: Some(DAY), installed: Some(DAY) });
    // The worker restarts the same day: nothing. (Had the install's write not committed, the
    // record would not be stored and the next start would decide the install again.)
    let (events, again) = at_start(Some(&seen), &start("1.0.0", "156", DAY, false, false), ALL);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(again, seen);
    // The browser restarts the next day.
    let (events, seen) = at_start(Some(&seen), &start("1.0.0", "156", DAY + 1, true, false), ALL);
    assert_eq!(names(&events), ["$browser_startup", "$daily_active"]);
    // An update, and the browser updated too.
    let (events, seen) = at_start(Some(&seen), &start("1.1.0", "157", DAY + 1, true, false), ALL);
    assert_eq!(events, [Lifecycle::Updated { previous_version: "1.0.0".into() }, Lifecycle::BrowserUpdated { previous_version: "156".into() }]);
    assert_eq!(events[0].props().as_str(), r#"{"previous_version":"1.0.0"}"#);
    assert_eq!(seen.installed, Some(DAY), "the install day is kept");
    // The record reads back as written.
    assert_eq!(Seen::decode(&seen.encode()), Some(seen.clone()));
    for bad in ["x1", "dtoday", "v"] {
        assert!(Seen::decode(bad).is_none_or(|s| s.version.as_deref() == Some("")), "{bad:?}");
    }
}

#[test]
fn an_install_from_before_the_record_and_switched_off_events() {
    // An install id was stored, but no lifecycle record: no install or update event.
    let (events, seen) = at_start(None, &start("2.0.0", "156", DAY, false, false), ALL);
    assert_eq!(names(&events), ["$daily_active"]);
    assert_eq!(seen.installed, None);
    let off = AutoEvents { install: false, update: false, startup: false, daily: false };
    let (events, seen) = at_start(None, &start("1.0.0", "156", DAY, true, true), off);
    assert!(events.is_empty());
    assert_eq!(seen.version.as_deref(), Some("1.0.0"), "what was seen is recorded anyway");
    let (events, _) = at_start(Some(&seen), &start("1.0.1", "157", DAY + 3, true, false), off);
    assert!(events.is_empty());
}

#[test]
fn daily_active_once_per_utc_day() {
    let ms = |day: u64, hour: u64| day * 86_400_000 + hour * 3_600_000;
    assert_eq!(utc_day(ms(DAY, 0)), DAY);
    assert_eq!(utc_day(ms(DAY, 23) + 3_599_999), DAY);
    assert_eq!(utc_day(ms(DAY + 1, 0)), DAY + 1);
    let mut last = None;
    let mut fired = Vec::new();
    // A worker alive for three days, checked every hour (the clock moved).
    for hour in 0..72 {
        let day = utc_day(ms(DAY, hour));
        if let Some(d) = daily_due(last, day, ALL) {
            fired.push(d);
            last = Some(d);
        }
    }
    assert_eq!(fired, [DAY, DAY + 1, DAY + 2]);
    // A clock set back does not fire again.
    assert_eq!(daily_due(Some(DAY + 2), DAY + 1, ALL), None);
    assert_eq!(daily_due(None, DAY, AutoEvents { daily: false, ..ALL }), None);
}

#[test]
fn the_uninstall_url_carries_the_install_and_fits_chromes_limit() {
    let id = "0d4c5e7a-3b2f-4c1d-9e8f-7a6b5c4d3e2f";
    assert_eq!(
        uninstall_url("https://example.com/bye", Some(id), Some("1.2.3"), Some(DAY - 10), DAY),
        format!("https://example.com/bye?install_id={id}&version=1.2.3&days_installed=10")
    );
    assert_eq!(
        uninstall_url("https://example.com/bye?src=ext", Some(id), None, None, DAY),
        format!("https://example.com/bye?src=ext&install_id={id}")
    );
    // The longest version Chrome allows and the longest base accepted stay within 1,023.
    let base = format!("https://example.com/{}", "a".repeat(913 - 20));
    let url = uninstall_url(&base, Some(id), Some("65535.65535.65535.65535"), Some(0), 999_999);
    assert!(url.len() <= 1023, "{}", url.len());
    let option = |url: &str| {
        let mut o = Options { token_id: Some("t".into()), token_secret: Some("s".into()), ..Options::default() };
        o.set(Scope::Top, "uninstallUrl", Given::Text(url.into())).unwrap();
        validate(o, Some(EXT))
    };
    assert!(option(&base).is_ok());
    let e = option(&format!("{base}x")).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidOption, Some("uninstallUrl")));
    assert!(e.message.contains("at most 913"), "{}", e.message);
    for bad in ["ftp://x.y", "example.com", "https://x.y/#f", "https://x y"] {
        assert!(option(bad).is_err(), "{bad}");
    }
}

#[test]
fn firefox_frames_are_kept_with_the_extensions_id_for_the_installs_uuid() {
    let firefox = Extension { id: "name@example.com".into(), origin: "moz-extension://3c2d8a7e-1b4f-4e6a-9c5d-0f1e2a3b4c5d".into() };
    let stack = "handler@moz-extension://3c2d8a7e-1b4f-4e6a-9c5d-0f1e2a3b4c5d/background.js?v=1:12:7\n\
                 @https://example.com/app.js:1:2\n\
                 other@moz-extension://00000000-1111-4222-8333-444444444444/x.js:1:1\n\
                 @moz-extension://3c2d8a7e-1b4f-4e6a-9c5d-0f1e2a3b4c5d/lib/a.js:3:4";
    let thrown = Thrown { kind: "TypeError".into(), message: "x is undefined".into(), stack: Some(stack.into()) };
    assert_eq!(
        thrown.own_frames(&firefox),
        ["handler@moz-extension://name@example.com/background.js:12:7", "@moz-extension://name@example.com/lib/a.js:3:4"]
    );
    assert!(!thrown.props(&firefox).as_str().contains("3c2d8a7e"), "the install's uuid never reaches the event");
}

#[test]
fn exceptions_keep_this_extensions_frames_without_queries() {
    let stack = format!(
        "TypeError: x is undefined\n    at f (chrome-extension://{EXT}/popup.js?v=3:10:5)\n    at https://example.com/app.js:1:2\n    at \
         chrome-extension://{EXT}/lib/a.js:3:4\n    at g (chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba/other.js?x:1:1)"
    );
    let thrown = Thrown { kind: "TypeError".into(), message: "x is undefined".into(), stack: Some(stack) };
    assert_eq!(
        thrown.own_frames(&ext()),
        [format!("at f (chrome-extension://{EXT}/popup.js:10:5)"), format!("at chrome-extension://{EXT}/lib/a.js:3:4")]
    );
    let props: serde_json::Value = serde_json::from_str(thrown.props(&ext()).as_str()).unwrap();
    assert_eq!(props["type"], "TypeError");
    assert_eq!(props["message"], "x is undefined");
    assert!(!props["stack"].as_str().unwrap().contains("example.com"));
    // A host page's error has no frame of ours.
    let page = Thrown { kind: "Error".into(), message: "page".into(), stack: Some("Error: page\n    at https://example.com/a.js:1:1".into()) };
    assert!(page.own_frames(&ext()).is_empty());
    // The same error is one fingerprint; another message another.
    let again = Thrown { stack: Some(format!("TypeError: x\n    at f (chrome-extension://{EXT}/popup.js?v=4:10:5)")), ..thrown.clone() };
    assert_eq!(thrown.fingerprint(&ext()), again.fingerprint(&ext()), "the query string does not make it another error");
    assert_ne!(thrown.fingerprint(&ext()), Thrown { message: "y".into(), ..thrown.clone() }.fingerprint(&ext()));
}

#[test]
fn a_thousand_identical_errors_are_stored_once_a_minute_and_counted() {
    let mut t = Throttle::default();
    let now = 1_000_000;
    let stored = (0..1000).filter(|i| t.admit(42, now + i)).count();
    assert_eq!(stored, 1);
    assert_eq!(t.throttled, 999);
    // At most 10 distinct errors a minute.
    let distinct = (0..100u64).filter(|i| t.admit(1000 + i, now + 2000)).count();
    assert_eq!(distinct, MAX_DISTINCT_PER_MINUTE - 1);
    // A minute later, stored again.
    assert!(t.admit(42, now + 60_000));
}

#[test]
fn sampling_keeps_whole_installs_about_at_the_rate() {
    let mut rng = Rng::new(99);
    let ids: Vec<String> = (0..200).map(|_| new_install_id(&mut rng)).collect();
    let kept = ids.iter().filter(|id| sample_point(id) < 0.5).count();
    assert!((80..=120).contains(&kept), "{kept} of 200 kept at 0.5");
    // The same install is decided the same way every time: never split.
    for id in &ids {
        assert_eq!(sample_point(id) < 0.5, sample_point(&id.clone()) < 0.5);
        assert!((0.0..1.0).contains(&sample_point(id)));
    }
}

#[test]
fn the_automatic_event_options() {
    let read = |pairs: &[(Scope, &str, Given)]| {
        let mut o = Options { token_id: Some("t".into()), token_secret: Some("s".into()), ..Options::default() };
        for (scope, key, value) in pairs {
            o.set(*scope, key, value.clone())?;
        }
        validate(o, Some(EXT)).map(|(c, _)| c)
    };
    let c = read(&[]).unwrap();
    assert_eq!((c.enabled, c.capture_errors, c.sample_rate, c.auto_events), (true, false, 1.0, ALL));
    let c = read(&[
        (Scope::Top, "enabled", Given::Bool(false)),
        (Scope::Top, "captureErrors", Given::Bool(true)),
        (Scope::Top, "sampleRate", Given::Number(0.25)),
        (Scope::AutoEvents, "daily", Given::Bool(false)),
    ])
    .unwrap();
    assert_eq!((c.enabled, c.capture_errors, c.sample_rate, c.auto_events.daily, c.auto_events.install), (false, true, 0.25, false, true));
    let e = read(&[(Scope::Top, "sampleRate", Given::Number(1.5))]).unwrap_err();
    assert_eq!((e.field.as_deref(), e.message.as_str()), (Some("sampleRate"), "sampleRate must be between 0 and 1, got 1.5"));
    for (n, shown) in
        [(-0.5, "-0.5"), (2.0, "2"), (1.000001, "1.000001"), (f64::INFINITY, "Infinity"), (f64::NAN, "NaN"), (1e300, "9223372036854775807")]
    {
        let e = read(&[(Scope::Top, "sampleRate", Given::Number(n))]).unwrap_err();
        assert_eq!(e.message, format!("sampleRate must be between 0 and 1, got {shown}"), "{n}");
    }
    let e = read(&[(Scope::AutoEvents, "dayly", Given::Bool(true))]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("autoEvents.dayly"));
    assert!(e.message.contains("known options: install, update, startup, daily"), "{}", e.message);
    let e = read(&[(Scope::AutoEvents, "daily", Given::Text("no".into()))]).unwrap_err();
    assert_eq!(e.message, "autoEvents.daily must be true or false, got string");
}

#[test]
fn sdk_built_properties_merge_under_the_users() {
    let user = Props::of_strings(&[("where", "popup"), ("type", "mine")]);
    let merged = user.merged(&Props::of_strings(&[("type", "TypeError"), ("message", "m")]));
    assert_eq!(merged.as_str(), r#"{"where":"popup","type":"mine","message":"m"}"#);
    assert_eq!(merged.members().count(), 3);
    assert_eq!(Props::of_strings(&[]).merged(&Props::of_strings(&[("a", "1")])).as_str(), r#"{"a":"1"}"#);
    // A member the rules refuse is left out.
    let long = "x".repeat(9000);
    assert_eq!(Props::of_strings(&[("$reserved", "v"), ("long", &long), ("ok", "1")]).as_str(), r#"{"ok":"1"}"#);
}
