//! The event viewer page on the control port (`GET /`). What it does in a browser is tested in
//! headless Chromium by tests/e2e/viewer.test.mjs; here, what is served.

mod common;

use common::*;

/// `id="…"` / `data-fault="…"` attributes the page's script and the browser test rely on.
const HOOKS: [&str; 9] = [
    r#"id="events""#,
    r#"id="filter-event""#,
    r#"id="filter-install""#,
    r#"id="filter-session""#,
    r#"id="filter-dups""#,
    r#"id="armed""#,
    r#"id="idempotency""#,
    r#"id="reset""#,
    r#"data-fault="fail_503""#,
];

/// The control endpoints the page calls, as it calls them.
const CALLS: [&str; 5] = [
    "`/events?since=${since}&limit=${PAGE + 1}`",
    "'/faults'",
    "'/settings'",
    "'/reset'",
    "const PAGE = 1000;",
];

#[tokio::test]
async fn the_page_is_served_self_contained() {
    let s = default_server().await;
    let r = control_get(&s, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = r.text();
    assert_eq!(page, inhouse_server::viewer::PAGE);
    assert!(page.starts_with("<!doctype html>"));
    for hook in HOOKS.iter().chain(&CALLS) {
        assert!(page.contains(hook), "the page lacks {hook}");
    }
    // No external asset, no CDN: nothing loaded by URL at all.
    for external in [
        "http://", "https://", "src=", "href=", "<link", "@import", "url(",
    ] {
        assert!(!page.contains(external), "the page contains {external:?}");
    }
    // Client values are set as text, never parsed as markup.
    assert!(!page.contains("innerHTML") && !page.contains("insertAdjacentHTML"));
    s.shutdown().await;
}

/// Every fault button has its request body in the page's script, and every body a button
/// names is a button.
#[tokio::test]
async fn every_fault_button_has_a_request() {
    let page = inhouse_server::viewer::PAGE;
    let buttons: Vec<&str> = page
        .split(r#"data-fault=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(buttons.len() >= 15, "{buttons:?}");
    let table = page
        .split("const FAULTS = {")
        .nth(1)
        .and_then(|rest| rest.split("};").next())
        .expect("the FAULTS table");
    let bodies: Vec<&str> = table
        .lines()
        .filter_map(|l| l.trim().split_once(": ("))
        .map(|(name, _)| name)
        .collect();
    let mut sorted_buttons = buttons.clone();
    sorted_buttons.sort_unstable();
    let mut sorted_bodies = bodies.clone();
    sorted_bodies.sort_unstable();
    assert_eq!(sorted_buttons, sorted_bodies);
}

/// What the page reads holds no secret, and the page is the same whatever was sent.
#[tokio::test]
async fn what_the_page_reads_holds_no_secret() {
    let s = default_server().await;
    assert_eq!(track(s.api_addr(), "viewer_event").await.status, 200);
    for path in ["/", "/events?since=0&limit=1001", "/faults", "/settings"] {
        let r = control_get(&s, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(!r.text().contains(SECRET), "{path} shows the secret");
    }
    let events = control_get(&s, "/events?since=0&limit=1001").await.json();
    assert_eq!(events["events"][0]["event_name"], "viewer_event");
    assert_eq!(
        events["events"][0]["headers"]["x-inhouse-token-secret"],
        "<redacted>"
    );
    s.shutdown().await;
}
