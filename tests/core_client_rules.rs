#![cfg(not(target_arch = "wasm32"))]
//! The checks `/client` makes before it sends (`pkg-template/client.js`) are the core's: the same
//! limits and the same words. A content script must refuse what extension messaging cannot carry
//! (a value nested 100,000 levels deep, a cycle) before it sends it, so the client keeps a copy of
//! these rules; this test fails when the copy and the core's rules part.

use inhouse_tracker::core::config::MAX_EVENT_BYTES;
use inhouse_tracker::core::props::{MAX_PROPERTY_DEPTH, MAX_STRING_BYTES};

const CLIENT: &str = include_str!("../pkg-template/client.js");
const CORE_PROPS: &str = include_str!("../src/core/props.rs");
const WEB_PROPS: &str = include_str!("../src/web/props.rs");

/// The value of `const NAME = <a product of integers>;` in the client.
fn client_const(name: &str) -> u64 {
    let start = CLIENT.find(&format!("const {name} = ")).unwrap_or_else(|| panic!("client.js has no const {name}")) + name.len() + 9;
    let expr = &CLIENT[start..start + CLIENT[start..].find(';').unwrap()];
    expr.split('*').map(|n| n.trim().replace('_', "").parse::<u64>().unwrap()).product()
}

#[test]
fn the_limits_are_the_cores() {
    assert_eq!(client_const("MAX_DEPTH"), MAX_PROPERTY_DEPTH as u64);
    assert_eq!(client_const("MAX_STRING_BYTES"), MAX_STRING_BYTES as u64);
    assert_eq!(client_const("MAX_EVENT_BYTES"), u64::from(MAX_EVENT_BYTES.max), "the largest maxEventBytes any tracker accepts");
}

#[test]
fn the_messages_are_the_cores() {
    let depth = format!("properties may nest at most {MAX_PROPERTY_DEPTH} levels deep");
    let long = format!("longer than {MAX_STRING_BYTES} bytes");
    for (phrase, core) in [
        (depth.as_str(), CORE_PROPS),
        (long.as_str(), CORE_PROPS),
        (", which JSON cannot represent", WEB_PROPS),
        (" is a BigInt, which JSON cannot represent; convert it to a string or a number", WEB_PROPS),
        (" is a circular reference", WEB_PROPS),
    ] {
        assert!(core.contains(phrase), "the core no longer says {phrase:?}");
        assert!(CLIENT.contains(phrase), "client.js does not say {phrase:?} as the core does");
    }
}
