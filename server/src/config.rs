//! Server configuration and command-line parsing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default cap on a track request body, in bytes.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// Default `--max-memory`: 256 MiB for what the server keeps of its history.
pub const DEFAULT_MAX_MEMORY: usize = 256 * 1024 * 1024;

/// How long a client may take to send a request's headers, on both ports.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One registered credential: a project token bound to an extension (app) id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub token_id: String,
    pub token_secret: String,
    pub app_id: String,
}

impl Token {
    pub fn new(id: impl Into<String>, secret: impl Into<String>, app: impl Into<String>) -> Self {
        Token {
            token_id: id.into(),
            token_secret: secret.into(),
            app_id: app.into(),
        }
    }
}

// Hand-written so the secret never leaks through `{:?}` in logs or test output.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("token_id", &self.token_id)
            .field("token_secret", &"<redacted>")
            .field("app_id", &self.app_id)
            .finish()
    }
}

/// Fixed-window limit: at most `limit` track requests per token per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub limit: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// API port; 0 picks an ephemeral one.
    pub api_port: u16,
    /// Control port; 0 picks an ephemeral one.
    pub control_port: u16,
    pub tokens: Vec<Token>,
    pub rate_limit: Option<RateLimit>,
    pub max_body: usize,
    /// One line per API request on stderr. Off by default so library users (tests) stay quiet.
    pub log_requests: bool,
    /// Honour `Idempotency-Key` (replay / conflict). `false` (`--no-idempotency`): every valid
    /// request is stored, repeated keys included. Switchable at run time via `POST /settings`.
    pub idempotency: bool,
    /// Cap, in (estimated) bytes, on what the server keeps: see [`MemoryLimits`].
    pub max_memory: usize,
    /// `--db PATH`: keep the stored events and idempotency records in this SQLite file, so
    /// they survive a restart. `None`: memory only.
    pub db: Option<PathBuf>,
    /// A connection that has not sent a whole request head within this long is closed, on the
    /// API port and the control port alike.
    pub header_read_timeout: Duration,
}

/// How `max_memory` is shared out. Each part drops its oldest entries when over its share (or
/// over its entry cap), always keeping the newest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Stored events: 1/2.
    pub events: usize,
    /// The request log (`GET /requests`): 1/4.
    pub requests: usize,
    /// Idempotent replays (`duplicates` in `GET /events`): 1/8.
    pub duplicates: usize,
    /// Idempotency records: 1/8.
    pub idempotency: usize,
}

impl MemoryLimits {
    pub fn from_total(total: usize) -> Self {
        MemoryLimits {
            events: (total / 2).max(1),
            requests: (total / 4).max(1),
            duplicates: (total / 8).max(1),
            idempotency: (total / 8).max(1),
        }
    }
}

impl Config {
    pub fn memory_limits(&self) -> MemoryLimits {
        MemoryLimits::from_total(self.max_memory)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_port: 0,
            control_port: 0,
            tokens: Vec::new(),
            rate_limit: None,
            max_body: DEFAULT_MAX_BODY,
            log_requests: false,
            idempotency: true,
            max_memory: DEFAULT_MAX_MEMORY,
            db: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

pub const USAGE: &str =
    "usage: inhouse-server [--port P] [--control-port C] [--token ID:SECRET:APPID]... \
[--credentials FILE] [--rate-limit N/SECONDS] [--max-body BYTES] [--max-memory BYTES] \
[--db PATH] [--no-idempotency] [--quiet]";

/// What the command line asked for.
#[derive(Debug)]
pub enum Cli {
    Run(Config),
    Help,
}

impl Config {
    /// Parses the arguments after the program name. Accepts `--flag value` and `--flag=value`.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, String> {
        let mut config = Config {
            log_requests: true,
            ..Config::default()
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(Cli::Help),
                "--quiet" | "-q" => config.log_requests = false,
                "--no-idempotency" => config.idempotency = false,
                "--port" => config.api_port = parse_num(&flag, &value(&flag)?)?,
                "--control-port" => config.control_port = parse_num(&flag, &value(&flag)?)?,
                "--max-body" => config.max_body = parse_num(&flag, &value(&flag)?)?,
                "--token" => config.tokens.push(parse_token(&value(&flag)?)?),
                "--credentials" => config
                    .tokens
                    .extend(load_credentials(Path::new(&value(&flag)?))?),
                "--rate-limit" => config.rate_limit = Some(parse_rate_limit(&value(&flag)?)?),
                "--max-memory" => config.max_memory = parse_bytes(&flag, &value(&flag)?)?,
                "--db" => {
                    let path = value(&flag)?;
                    if path.is_empty() {
                        return Err("--db needs a file path".into());
                    }
                    config.db = Some(PathBuf::from(path));
                }
                other => return Err(format!("unknown argument: {other}")),
            }
        }
        Ok(Cli::Run(config))
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: not a valid number: {v}"))
}

/// A positive byte count, optionally with a binary suffix: `1048576`, `64K`, `256M`, `1G`.
pub fn parse_bytes(flag: &str, v: &str) -> Result<usize, String> {
    let err = || {
        format!(
            "{flag}: expected a positive number of bytes (e.g. 268435456, 64K, 256M, 1G), got {v}"
        )
    };
    let t = v.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let mult: usize = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(err()),
    };
    let n: usize = digits.parse().map_err(|_| err())?;
    match n.checked_mul(mult) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(err()),
    }
}

/// `ID:SECRET:APPID`; the app id may itself contain no colon, the secret may not either.
pub fn parse_token(s: &str) -> Result<Token, String> {
    let parts: Vec<&str> = s.splitn(3, ':').collect();
    match parts.as_slice() {
        [id, secret, app] if !id.is_empty() && !secret.is_empty() && !app.is_empty() => {
            Ok(Token::new(*id, *secret, *app))
        }
        _ => Err("--token expects ID:SECRET:APPID, all three non-empty".into()),
    }
}

/// `N/SECONDS`, e.g. `100/60`.
pub fn parse_rate_limit(s: &str) -> Result<RateLimit, String> {
    let err = || format!("--rate-limit expects N/SECONDS with both positive, got {s}");
    let (n, secs) = s.split_once('/').ok_or_else(err)?;
    let limit: u32 = n.trim().parse().map_err(|_| err())?;
    let window_secs: u64 = secs.trim().parse().map_err(|_| err())?;
    if limit == 0 || window_secs == 0 {
        return Err(err());
    }
    Ok(RateLimit { limit, window_secs })
}

/// Reads a JSON array of `{"token_id","token_secret","app_id"}`.
pub fn load_credentials(path: &Path) -> Result<Vec<Token>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--credentials {}: {e}", path.display()))?;
    let tokens: Vec<Token> = serde_json::from_str(&text)
        .map_err(|e| format!("--credentials {}: {e}", path.display()))?;
    validate_tokens(&tokens).map_err(|e| format!("--credentials {}: {e}", path.display()))?;
    Ok(tokens)
}

/// Every field non-empty and token ids unique, so lookups are unambiguous.
pub fn validate_tokens(tokens: &[Token]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.token_id.is_empty() || t.token_secret.is_empty() || t.app_id.is_empty() {
            return Err(format!(
                "entry {i}: token_id, token_secret and app_id must be non-empty"
            ));
        }
        if !seen.insert(t.token_id.as_str()) {
            return Err(format!("entry {i}: duplicate token_id {}", t.token_id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_all_flags() {
        let Ok(Cli::Run(c)) = Config::from_args(args(
            "--port 8080 --control-port=8081 --token a:b:c --token d:e:f --rate-limit 5/10 --max-body 10 --quiet --no-idempotency --max-memory 64M --db /tmp/x.sqlite",
        )) else {
            panic!("expected a config")
        };
        assert_eq!((c.api_port, c.control_port, c.max_body), (8080, 8081, 10));
        assert_eq!(
            c.tokens,
            vec![Token::new("a", "b", "c"), Token::new("d", "e", "f")]
        );
        assert_eq!(
            c.rate_limit,
            Some(RateLimit {
                limit: 5,
                window_secs: 10
            })
        );
        assert!(!c.log_requests);
        assert!(!c.idempotency);
        assert_eq!(c.max_memory, 64 << 20);
        assert_eq!(c.db.as_deref(), Some(Path::new("/tmp/x.sqlite")));
        let Ok(Cli::Run(c)) = Config::from_args(args("--port 1")) else {
            panic!("expected a config")
        };
        assert!(c.idempotency && c.log_requests, "defaults");
        assert_eq!((c.max_memory, c.db), (DEFAULT_MAX_MEMORY, None));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Config::from_args(args("--token a:b")).is_err());
        assert!(Config::from_args(args("--rate-limit 0/10")).is_err());
        assert!(Config::from_args(args("--port")).is_err());
        assert!(Config::from_args(args("--bogus")).is_err());
        for bad in ["0", "-1", "12X", "M", "99999999999999999999G"] {
            assert!(parse_bytes("--max-memory", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bytes("--max-memory", "2k"), Ok(2048));
        assert_eq!(parse_bytes("--max-memory", "1G"), Ok(1 << 30));
        assert!(Config::from_args(args("--db=")).is_err());
        assert!(validate_tokens(&[Token::new("a", "b", "c"), Token::new("a", "x", "y")]).is_err());
    }

    #[test]
    fn debug_redacts_secret() {
        assert!(!format!("{:?}", Token::new("id", "s3cret", "app")).contains("s3cret"));
    }
}
