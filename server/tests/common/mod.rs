//! A deliberately raw HTTP/1.1 client: tests need to see resets, hangs and refused
//! connections exactly as they happen, and to send bytes no well-behaved client would.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use inhouse_server::{Config, Running, Token};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TRACK: &str = "/v1/api/chrome/events/track";
pub const LEGACY: &str = "/api/chrome/events/track";
pub const TOKEN_ID: &str = "tok_test_1";
pub const SECRET: &str = "sec_Sup3rS3cret_value";
pub const APP: &str = "abcdefghijklmnopabcdefghijklmnop";
/// Every request in these tests is bounded by this unless it says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first error's code in an Inhouse error envelope.
    pub fn code(&self) -> String {
        let v = self.json();
        assert_eq!(v["status"], "error", "not an error envelope: {v}");
        v["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn loc(&self) -> Value {
        self.json()["errors"][0]["loc"].clone()
    }
}

pub async fn server(config: Config) -> Running {
    inhouse_server::start(config).await.expect("server starts")
}

/// A server with one registered token.
pub async fn default_server() -> Running {
    server(Config {
        tokens: vec![Token::new(TOKEN_ID, SECRET, APP)],
        ..Config::default()
    })
    .await
}

/// Sends raw bytes on a fresh connection and reads the response until the server closes.
pub async fn raw(addr: SocketAddr, request: &[u8], timeout: Duration) -> io::Result<Resp> {
    tokio::time::timeout(timeout, async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request).await?;
        read_response(&mut stream).await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client timeout"))?
}

/// Reads one response from a stream whose server closes it (`Connection: close`).
pub async fn read_response(stream: &mut TcpStream) -> io::Result<Resp> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> io::Result<Resp> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Resp {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    })
}

pub fn build(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Resp> {
    raw(addr, &build(method, path, headers, body), TIMEOUT).await
}

pub const AUTH: [(&str, &str); 4] = [
    ("x-inhouse-token-id", TOKEN_ID),
    ("x-inhouse-token-secret", SECRET),
    ("x-inhouse-app", APP),
    ("content-type", "application/json"),
];

/// A correctly authenticated track call with extra headers.
pub async fn track_with(addr: SocketAddr, body: &str, extra: &[(&str, &str)]) -> io::Result<Resp> {
    let mut headers: Vec<(&str, &str)> = AUTH.to_vec();
    headers.extend_from_slice(extra);
    send(addr, "POST", TRACK, &headers, body.as_bytes()).await
}

pub async fn track(addr: SocketAddr, event_name: &str) -> Resp {
    let body = format!(r#"{{"event_name":"{event_name}","properties":{{"screen":"home"}}}}"#);
    track_with(addr, &body, &[])
        .await
        .expect("track request completes")
}

pub async fn control_get(running: &Running, path: &str) -> Resp {
    send(running.control_addr(), "GET", path, &[], b"")
        .await
        .expect("control GET")
}

pub async fn control_post(running: &Running, path: &str, body: &Value) -> Resp {
    let body = body.to_string();
    send(
        running.control_addr(),
        "POST",
        path,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await
    .expect("control POST")
}

pub async fn faults(running: &Running, body: Value) -> Value {
    let r = control_post(running, "/faults", &body).await;
    assert_eq!(r.status, 200, "POST /faults {body}: {}", r.text());
    r.json()
}

pub async fn events(running: &Running) -> Value {
    control_get(running, "/events").await.json()
}

/// A request line on stderr without its leading timestamp, which must be RFC 3339 in UTC with
/// milliseconds (`2024-05-01T12:34:56.789Z `).
pub fn without_timestamp(line: &str) -> &str {
    let (stamp, rest) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("no timestamp: {line}"));
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "timestamp of {line:?}");
    rest
}

/// Sends every body as a track request over one keep-alive connection, pipelined (written
/// while the answers are read), and returns the statuses in order. For filling a server fast.
pub async fn pipeline_track(addr: SocketAddr, bodies: Vec<String>) -> Vec<u16> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let n = bodies.len();
    let write = tokio::spawn(async move {
        let mut out = Vec::new();
        for body in bodies {
            out.extend_from_slice(
                format!(
                    "POST {TRACK} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            for (k, v) in AUTH {
                out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body.as_bytes());
            if out.len() > 64 * 1024 {
                writer.write_all(&out).await.expect("write");
                out.clear();
            }
        }
        writer.write_all(&out).await.expect("write");
        writer
    });
    let mut statuses = Vec::with_capacity(n);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while statuses.len() < n {
        // Parse every whole response at the front of the buffer, then drop them at once.
        let mut at = 0;
        while let Some(end) = buf[at..].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[at..at + end]).to_string();
            let len: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < at + end + 4 + len {
                break;
            }
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            statuses.push(status);
            at += end + 4 + len;
        }
        buf.drain(..at);
        if statuses.len() >= n {
            break;
        }
        let got = tokio::time::timeout(Duration::from_secs(60), reader.read(&mut chunk))
            .await
            .expect("answers in time")
            .expect("read");
        assert!(got > 0, "closed after {} of {n} answers", statuses.len());
        buf.extend_from_slice(&chunk[..got]);
    }
    drop(write.await.expect("writer"));
    statuses
}

/// The `seq` of each event in a `GET /events` answer.
pub fn seqs(v: &Value) -> Vec<u64> {
    v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

/// Waits for a server process to exit; its exit status and stderr.
pub async fn exit_and_stderr(
    child: &mut tokio::process::Child,
) -> (std::process::ExitStatus, String) {
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("stderr");
    (status, stderr)
}

/// Sends SIGTERM to a server process, waits for a clean exit and returns its stderr.
pub async fn stop(mut child: tokio::process::Child) -> String {
    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let (status, stderr) = exit_and_stderr(&mut child).await;
    assert!(status.success(), "{status}");
    stderr
}

/// The first `n` lines a started server process prints on stdout; the rest is drained, so the
/// process never blocks on a full pipe.
pub async fn stdout_lines(child: &mut tokio::process::Child, n: usize) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut out = Vec::new();
    while out.len() < n {
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("in time")
            .expect("read")
            .expect("a line");
        out.push(line);
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    out
}

/// A track request (HTTP/1.1, keep-alive) with the test credentials and `body`.
pub fn keep_alive_request(body: &str) -> String {
    let mut req = format!(
        "POST {TRACK} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in AUTH {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

/// Sends one track request that keeps its connection alive on `stream`, and reads its response
/// by its Content-Length (without waiting for the server to close).
pub async fn keep_alive_track(stream: &mut TcpStream, body: &str) -> Resp {
    let req = keep_alive_request(body);
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(r) = parse_response(&got) {
            let len: usize = r
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if r.body.len() >= len {
                return r;
            }
        }
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response");
        got.extend_from_slice(&buf[..n]);
    }
}

/// The `inhouse-server` binary started with `args`, its stdout and stderr piped, killed when
/// dropped.
pub fn spawn_binary<I, S>(args: I) -> tokio::process::Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    tokio::process::Command::new(env!("CARGO_BIN_EXE_inhouse-server"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn binary")
}

/// Track bodies of `n` events named `big`, numbered `i` from 1, each padded with 10 KB.
pub fn padded_bodies(n: u32) -> Vec<String> {
    let pad = "x".repeat(10_000);
    (1..=n)
        .map(|i| format!(r#"{{"event_name":"big","properties":{{"i":{i},"pad":"{pad}"}}}}"#))
        .collect()
}
