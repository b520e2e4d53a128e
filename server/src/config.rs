//! Server configuration and command-line parsing.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Default cap on a track request body, in bytes.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

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
        }
    }
}

pub const USAGE: &str =
    "usage: inhouse-server [--port P] [--control-port C] [--token ID:SECRET:APPID]... \
[--credentials FILE] [--rate-limit N/SECONDS] [--max-body BYTES] [--no-idempotency] [--quiet]";

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
            "--port 8080 --control-port=8081 --token a:b:c --token d:e:f --rate-limit 5/10 --max-body 10 --quiet --no-idempotency",
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
        let Ok(Cli::Run(c)) = Config::from_args(args("--port 1")) else {
            panic!("expected a config")
        };
        assert!(c.idempotency && c.log_requests, "defaults");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Config::from_args(args("--token a:b")).is_err());
        assert!(Config::from_args(args("--rate-limit 0/10")).is_err());
        assert!(Config::from_args(args("--port")).is_err());
        assert!(Config::from_args(args("--bogus")).is_err());
        assert!(validate_tokens(&[Token::new("a", "b", "c"), Token::new("a", "x", "y")]).is_err());
    }

    #[test]
    fn debug_redacts_secret() {
        assert!(!format!("{:?}", Token::new("id", "s3cret", "app")).contains("s3cret"));
    }
}
