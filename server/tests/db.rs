//! `--db PATH`: the events and idempotency records a server accepted survive restarting it.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use inhouse_server::{Config, Token};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "inhouse-server-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(db: &Path) -> Config {
    Config {
        tokens: vec![Token::new(TOKEN_ID, SECRET, APP)],
        db: Some(db.to_path_buf()),
        ..Config::default()
    }
}

#[tokio::test]
async fn events_and_idempotency_records_survive_a_restart() {
    let dir = TempDir::new("restart");
    let db = dir.file("events.sqlite");
    let s = server(config(&db)).await;
    let a = s.api_addr();
    let body = r#"{"event_name":"first","properties":{"$event_id":"e1","nested":{"b":[1,2.5,null],"a":"ü"}}}"#;
    let first = track_with(
        a,
        body,
        &[
            ("idempotency-key", "k1"),
            (
                "origin",
                "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
            ),
            ("user-agent", "test-agent/1"),
        ],
    )
    .await
    .expect("response");
    assert_eq!(first.status, 200);
    assert_eq!(track(a, "second").await.status, 200);
    let before = events(&s).await;
    assert_eq!(seqs(&before), [1, 2]);
    s.shutdown().await;

    // Same file, new process state: everything the first run accepted is back.
    let s = server(config(&db)).await;
    let a = s.api_addr();
    let after = events(&s).await;
    assert_eq!(
        after["events"], before["events"],
        "the same records, field for field"
    );
    assert_eq!(after["event_id_duplicates"], 0);
    // The idempotency record too: a resend replays the original answer byte for byte...
    let again = track_with(a, body, &[("idempotency-key", "k1")])
        .await
        .expect("response");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // ...and another body under that key is still a conflict.
    let other = r#"{"event_name":"first","properties":{}}"#;
    let conflict = track_with(a, other, &[("idempotency-key", "k1")])
        .await
        .expect("response");
    assert_eq!(
        (conflict.status, conflict.code()),
        (409, "RESOURCE_ALREADY_EXISTS".into())
    );
    // New events carry on: the next seq, and an id never handed out before.
    let third = track(a, "third").await;
    assert_eq!(third.json()["item"]["id"], "evt_3");
    assert_eq!(seqs(&events(&s).await), [1, 2, 3]);
    s.shutdown().await;

    // Without --db nothing is read or kept: memory only, as before.
    let plain = default_server().await;
    assert_eq!(seqs(&events(&plain).await), Vec::<u64>::new());
    plain.shutdown().await;
    let s = server(config(&db)).await;
    assert_eq!(seqs(&events(&s).await), [1, 2, 3]);
    s.shutdown().await;
}

/// The file mirrors memory: events dropped for the memory cap are gone from it too (and
/// `dropped_oldest` is kept), and `POST /reset` empties it; event ids are never reused.
#[tokio::test]
async fn the_file_follows_drops_and_reset() {
    let dir = TempDir::new("mirror");
    let db = dir.file("events.sqlite");
    let capped = || Config {
        max_memory: 200_000,
        ..config(&db)
    };
    let s = server(capped()).await;
    assert!(pipeline_track(s.api_addr(), padded_bodies(20))
        .await
        .iter()
        .all(|s| *s == 200));
    let before = events(&s).await;
    let dropped = before["dropped_oldest"].as_u64().expect("dropped");
    assert!(dropped > 0);
    s.shutdown().await;

    // Restarted with room for all twenty, it has only what it kept: the dropped events were
    // deleted from the file as they were dropped.
    let s = server(config(&db)).await;
    let after = events(&s).await;
    assert_eq!(after["events"], before["events"]);
    assert_eq!(after["dropped_oldest"], dropped);

    let r = control_post(&s, "/reset", &json!({})).await;
    assert_eq!(r.status, 200);
    s.shutdown().await;
    let s = server(config(&db)).await;
    let ev = events(&s).await;
    assert_eq!(
        (seqs(&ev), ev["dropped_oldest"].clone()),
        (vec![], json!(0))
    );
    let r = track(s.api_addr(), "after_reset").await;
    assert_eq!(
        r.json()["item"]["id"],
        "evt_21",
        "ids keep counting across reset and restart"
    );
    s.shutdown().await;
}

/// Idempotency records forgotten for the memory cap are deleted from the file too.
#[tokio::test]
async fn forgotten_idempotency_records_are_gone_from_the_file() {
    let dir = TempDir::new("forget");
    let db = dir.file("events.sqlite");
    // 10 KB for records: a few dozen.
    let s = server(Config {
        max_memory: 80_000,
        ..config(&db)
    })
    .await;
    let body = r#"{"event_name":"k","properties":{}}"#;
    for i in 0..300 {
        let key = format!("key-{i:04}");
        let r = track_with(s.api_addr(), body, &[("idempotency-key", &key)])
            .await
            .expect("response");
        assert_eq!(r.status, 200);
    }
    s.shutdown().await;
    let s = server(config(&db)).await;
    let a = s.api_addr();
    let newest = track_with(a, body, &[("idempotency-key", "key-0299")])
        .await
        .expect("response");
    assert_eq!(newest.header("idempotent-replayed"), Some("true"));
    let oldest = track_with(a, body, &[("idempotency-key", "key-0000")])
        .await
        .expect("response");
    assert_eq!(
        (oldest.status, oldest.header("idempotent-replayed")),
        (200, None)
    );
    s.shutdown().await;
}

/// One server per file: a second one is refused with a clear error until the first stops.
#[tokio::test]
async fn a_file_in_use_is_refused() {
    let dir = TempDir::new("exclusive");
    let db = dir.file("events.sqlite");
    let s = server(config(&db)).await;
    let err = inhouse_server::start(config(&db))
        .await
        .err()
        .expect("second server refused");
    assert!(err.to_string().contains("in use"), "{err}");
    assert_eq!(track(s.api_addr(), "still_fine").await.status, 200);
    s.shutdown().await;
    let s = server(config(&db)).await;
    assert_eq!(seqs(&events(&s).await), [1]);
    s.shutdown().await;

    let junk = dir.file("junk.sqlite");
    std::fs::write(
        &junk,
        b"this is not a database, just some bytes that are long enough",
    )
    .expect("write");
    let err = inhouse_server::start(config(&junk))
        .await
        .err()
        .expect("not a database");
    assert!(err.to_string().contains("--db"), "{err}");
}

fn binary(db: &Path) -> Child {
    let token = format!("{TOKEN_ID}:{SECRET}:{APP}");
    spawn_binary([
        OsStr::new("--quiet"),
        OsStr::new("--token"),
        OsStr::new(&token),
        OsStr::new("--db"),
        db.as_os_str(),
    ])
}

/// Reads the stdout lines up to the `--db` one; returns the API and control addresses.
async fn started(child: &mut Child, db: &Path) -> (std::net::SocketAddr, std::net::SocketAddr) {
    let read = stdout_lines(child, 5).await;
    assert_eq!(read[4], format!("  events kept in {}", db.display()));
    let (api, control) = read[0]
        .strip_prefix("inhouse-server listening api=http://")
        .and_then(|r| r.split_once(" control=http://"))
        .expect("banner");
    (api.parse().expect("api"), control.parse().expect("control"))
}

/// The binary: events answered 200 are in the file even when the process is killed right
/// after (an answer waits for its commit), and SIGTERM closes the file cleanly.
#[tokio::test]
async fn the_binary_keeps_what_it_answered_even_when_killed() {
    let dir = TempDir::new("binary");
    let db = dir.file("events.sqlite");
    let mut child = binary(&db);
    let (api, _) = started(&mut child, &db).await;
    let bodies = (0..500)
        .map(|i| format!(r#"{{"event_name":"kill_me","properties":{{"i":{i}}}}}"#))
        .collect();
    let statuses = pipeline_track(api, bodies).await;
    child.start_kill().expect("SIGKILL");
    assert!(statuses.iter().all(|s| *s == 200));
    let _ = child.wait().await;

    let mut child = binary(&db);
    let (api, control) = started(&mut child, &db).await;
    let ev = send(control, "GET", "/events", &[], b"")
        .await
        .expect("events")
        .json();
    assert_eq!(
        seqs(&ev),
        (1..=500).collect::<Vec<_>>(),
        "every event answered 200"
    );
    let body = r#"{"event_name":"keyed","properties":{}}"#;
    let r = track_with(api, body, &[("idempotency-key", "bin-k")])
        .await
        .expect("response");
    assert_eq!(r.status, 200);
    let pid = child.id().expect("pid").to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("in time")
        .expect("wait");
    assert!(exit.success(), "{exit}");
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await;
    assert!(!stderr.contains("write failed"), "{stderr}");

    let mut child = binary(&db);
    let (api, _) = started(&mut child, &db).await;
    let r = track_with(api, body, &[("idempotency-key", "bin-k")])
        .await
        .expect("response");
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    assert_eq!(r.json()["item"]["id"], "evt_501");
}
