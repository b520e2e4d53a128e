//! The server as a developer runs it all day (`make server`): fixed ports and a clear error
//! when one is taken, what it prints on start, parseable log lines, and the control port's
//! header-read timeout.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use inhouse_server::Config;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;

/// Waits for a binary that should refuse to start; returns its stderr.
async fn refused(mut child: Child) -> String {
    let (status, stderr) = exit_and_stderr(&mut child).await;
    assert!(!status.success(), "exit status {status}");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .await
        .expect("stdout");
    assert!(!stdout.contains("listening"), "{stdout}");
    stderr
}

/// The stdout lines a started binary prints, read until the watch line.
async fn startup_lines(child: &mut Child) -> Vec<String> {
    stdout_lines(child, 4).await
}

/// Two ports free right now (bound, read, released).
async fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let b = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ports = (
        a.local_addr().expect("addr").port(),
        b.local_addr().expect("addr").port(),
    );
    drop((a, b));
    ports
}

/// Fixed ports, as `make server` passes them: the binary listens where it was told and says
/// where to point an extension and how to watch events (in a browser, or with curl).
#[tokio::test]
async fn fixed_ports_and_what_it_prints_on_start() {
    let (api, control) = free_ports().await;
    let token = format!("{TOKEN_ID}:{SECRET}:{APP}");
    let mut child = spawn_binary([
        "--port",
        &api.to_string(),
        "--control-port",
        &control.to_string(),
        "--token",
        &token,
    ]);
    let lines = startup_lines(&mut child).await;
    assert_eq!(
        lines,
        [
            format!(
                "inhouse-server listening api=http://127.0.0.1:{api} control=http://127.0.0.1:{control}"
            ),
            format!("  SDK baseUrl:   http://127.0.0.1:{api}/v1/api"),
            format!("  event viewer:  http://127.0.0.1:{control}/"),
            format!("  watch events:  curl 'http://127.0.0.1:{control}/events?format=text'"),
        ]
    );
    // The printed baseUrl works as the SDK uses it (`{base}/chrome/events/track`).
    let a: SocketAddr = format!("127.0.0.1:{api}").parse().expect("addr");
    assert_eq!(track(a, "fixed_port").await.status, 200);
    let c: SocketAddr = format!("127.0.0.1:{control}").parse().expect("addr");
    let text = send(c, "GET", "/events?format=text", &[], b"")
        .await
        .expect("watch");
    assert!(text.text().contains("fixed_port"), "{}", text.text());
    stop(child).await;
}

/// A port already taken: a clear error naming the port and the flag to change, a non-zero
/// exit, and nothing left listening.
#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();

    let stderr = refused(spawn_binary(["--port", &port, "--control-port", "0"])).await;
    assert!(
        stderr.contains(&format!("port {port} is already in use"))
            && stderr.contains("choose another with --port N"),
        "{stderr}"
    );

    let stderr = refused(spawn_binary(["--port", "0", "--control-port", &port])).await;
    assert!(
        stderr.contains(&format!("port {port} is already in use"))
            && stderr.contains("choose another with --control-port N"),
        "{stderr}"
    );

    // The library says the same, with the error kind a caller can match.
    let err = inhouse_server::start(Config {
        api_port: taken.local_addr().expect("addr").port(),
        ..Config::default()
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains("--port"), "{err}");
}

/// One line per API request on stderr: an RFC 3339 UTC timestamp with milliseconds first, and
/// event names (keys, apps) that are not plain snake_case shown as JSON strings, so every line
/// splits on spaces into `name=value` fields.
#[tokio::test]
async fn log_lines_are_timestamped_and_quote_odd_values() {
    let token = format!("{TOKEN_ID}:{SECRET}:{APP}");
    let mut child = spawn_binary(["--token", &token]);
    let banner = startup_lines(&mut child).await.remove(0);
    let api: SocketAddr = banner
        .split_once("api=http://")
        .and_then(|(_, rest)| rest.split_once(' '))
        .map(|(addr, _)| addr.parse().expect("addr"))
        .expect("api address");

    let before = time_now_ms();
    type Sent<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);
    let sent: [Sent; 5] = [
        (r#"{"event_name":"plain_name","properties":{}}"#, &[], 200),
        (r#"{"event_name":"$pageview","properties":{}}"#, &[], 200),
        (r#"{"event_name":"Hello World!","properties":{}}"#, &[], 422),
        (
            r#"{"event_name":"a=b \"c\"\nd","properties":{}}"#,
            &[("idempotency-key", "key with spaces")],
            422,
        ),
        (r#"{"event_name":"","properties":{}}"#, &[], 422),
    ];
    for (body, extra, status) in sent {
        let r = track_with(api, body, extra).await.expect("response");
        assert_eq!(r.status, status, "{body}");
    }
    let after = time_now_ms();
    let stderr = stop(child).await;
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" POST ")).collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    let fields = |line: &str| -> Vec<String> { line.split(' ').map(String::from).collect() };
    for line in &lines {
        let rest = without_timestamp(line);
        let stamp = &line[..line.len() - rest.len() - 1];
        let ms = parse_rfc3339_ms(stamp);
        assert!(
            (before..=after + 1).contains(&ms),
            "{stamp} not within the run"
        );
    }
    let first = fields(without_timestamp(lines[0]));
    assert_eq!(
        first[..6],
        [
            "200",
            "POST",
            TRACK,
            "event=plain_name",
            "key=-",
            &format!("app={APP}")
        ],
        "{}",
        lines[0]
    );
    assert!(first[6].starts_with("request_id=req_") && first.len() == 7);
    assert!(lines[1].contains(" event=$pageview "), "{}", lines[1]);
    assert!(
        lines[2].contains(r#" 422 POST /v1/api/chrome/events/track event="Hello World!" key=- "#),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains(r#" event="a=b \"c\"\nd" key="key with spaces" "#),
        "{}",
        lines[3]
    );
    assert!(lines[4].contains(r#" event="" key=- "#), "{}", lines[4]);
    // Every quoted value reads back as the JSON string it is.
    let quoted = lines[3]
        .split_once(" event=")
        .and_then(|(_, rest)| rest.split_once(" key="))
        .map(|(event, _)| event)
        .expect("event field");
    let back: Value = serde_json::from_str(quoted).expect("a JSON string");
    assert_eq!(back, "a=b \"c\"\nd");
}

fn time_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// `2024-05-01T12:34:56.789Z` to epoch milliseconds (days from civil, Howard Hinnant's).
fn parse_rfc3339_ms(s: &str) -> u64 {
    let num = |range: std::ops::Range<usize>| -> i64 { s[range].parse().expect("digits") };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss, ms) = (num(11..13), num(14..16), num(17..19), num(20..23));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (((days * 24 + hh) * 60 + mm) * 60 + ss) as u64 * 1000 + ms as u64
}

/// A client that opens a connection and sends half a request head: both ports close it after
/// the header-read timeout (the control port used to keep it open for ever).
#[tokio::test]
async fn both_ports_close_a_connection_whose_request_head_never_finishes() {
    let s = server(Config {
        header_read_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    for (port, addr) in [("control", s.control_addr()), ("api", s.api_addr())] {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let t = Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "the {port} port kept a half-sent request open for 5 s"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{port}: closed too early"
        );
    }
    // A client that sends its request in time is served as usual.
    assert_eq!(control_get(&s, "/health").await.status, 200);
    s.shutdown().await;
}
