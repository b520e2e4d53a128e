#![cfg(not(target_arch = "wasm32"))]
//! The error codes are one set: Rust's `ErrorCode`, the `InhouseErrorCode` union of the package's
//! `index.d.ts`, and every code the package's JavaScript creates (`new InhouseError('CODE', ...)`)
//! must agree, so that a code added on one side fails here until the others say it too.

use inhouse_tracker::core::error::ErrorCode::{self, *};
use std::collections::BTreeSet;
use std::path::Path;

/// Every code. `position` matches every variant: a new one does not compile until it is here.
const ALL: [ErrorCode; 23] = [
    InvalidOption,
    AppIdMismatch,
    InvalidEventName,
    InvalidProperties,
    EventTooLarge,
    InvalidTrackOption,
    InvalidUserId,
    StorageError,
    ShutDown,
    AuthFailed,
    PermissionDenied,
    EndpointNotFound,
    Redirected,
    RateLimited,
    ServerError,
    NetworkError,
    Timeout,
    EventRejected,
    BeforeSendFailed,
    UnknownEvent,
    InvalidProperty,
    PlanViolation,
    Internal,
];

fn position(code: ErrorCode) -> usize {
    match code {
        InvalidOption => 0,
        AppIdMismatch => 1,
        InvalidEventName => 2,
        InvalidProperties => 3,
        EventTooLarge => 4,
        InvalidTrackOption => 5,
        InvalidUserId => 6,
        StorageError => 7,
        ShutDown => 8,
        AuthFailed => 9,
        PermissionDenied => 10,
        EndpointNotFound => 11,
        Redirected => 12,
        RateLimited => 13,
        ServerError => 14,
        NetworkError => 15,
        Timeout => 16,
        EventRejected => 17,
        BeforeSendFailed => 18,
        UnknownEvent => 19,
        InvalidProperty => 20,
        PlanViolation => 21,
        Internal => 22,
    }
}

/// Codes only the JavaScript loader creates (the wasm is not there yet to create them).
const LOADER_ONLY: [&str; 1] = ["WASM_LOAD_FAILED"];

fn pkg_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg-template").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The string literals of `index.d.ts`'s `InhouseErrorCode` union.
fn declared_codes() -> BTreeSet<String> {
    let dts = pkg_file("index.d.ts");
    let start = dts.find("export type InhouseErrorCode =").expect("index.d.ts declares InhouseErrorCode");
    let mut codes = BTreeSet::new();
    // One `| 'CODE'` a line (doc comments between them), up to the line that ends with `;`.
    for line in dts[start..].lines().skip(1).map(str::trim) {
        if let Some(code) = line.strip_prefix("| '").and_then(|rest| rest.split('\'').next()) {
            codes.insert(code.to_string());
        }
        if line.ends_with(';') {
            break;
        }
    }
    codes
}

#[test]
fn the_list_is_every_code_once() {
    for (i, code) in ALL.iter().enumerate() {
        assert_eq!(position(*code), i, "{code:?}");
    }
    let strings: BTreeSet<&str> = ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(strings.len(), ALL.len(), "two codes share a string");
}

#[test]
fn index_d_ts_declares_exactly_the_codes_of_the_wasm_and_the_loader() {
    let mut expected: BTreeSet<String> = ALL.iter().map(|c| c.as_str().to_string()).collect();
    expected.extend(LOADER_ONLY.map(String::from));
    let declared = declared_codes();
    let missing: Vec<_> = expected.difference(&declared).collect();
    let extra: Vec<_> = declared.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "index.d.ts's InhouseErrorCode lacks {missing:?} and has {extra:?} that Rust's ErrorCode does not"
    );
}

#[test]
fn every_code_the_package_javascript_creates_is_declared() {
    let declared = declared_codes();
    let mut seen = 0;
    for file in ["index.js", "client.js", "testing.js", "wxt-analytics.js"] {
        let text = pkg_file(file);
        for (at, _) in text.match_indices("InhouseError('") {
            let rest = &text[at + "InhouseError('".len()..];
            let code = &rest[..rest.find('\'').expect("a closing quote")];
            assert!(declared.contains(code), "{file} creates InhouseError('{code}'), which index.d.ts does not declare");
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} codes found in the package's JavaScript: the pattern no longer matches");
}
