//! Errors as events: `$exception` with the error's type, message and a stack reduced to this
//! extension's own frames, and a throttle so that an error repeated a thousand times is stored
//! a bounded number of times and counted.

use super::event::Props;
use super::json::{fnv1a, FNV_OFFSET};
use super::origin::Extension;

/// Distinct errors stored per minute at most; the rest are counted.
pub const MAX_DISTINCT_PER_MINUTE: usize = 10;
const MINUTE_MS: u64 = 60_000;
/// Longest message kept.
const MAX_MESSAGE_CHARS: usize = 1000;
/// Frames kept at most.
const MAX_FRAMES: usize = 30;

/// An error as JavaScript describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Thrown {
    /// `error.name` (`TypeError`), or `Error` for a thrown non-error.
    pub kind: String,
    pub message: String,
    pub stack: Option<String>,
}

impl Thrown {
    /// The stack's frames in this extension's own files (`chrome-extension://<id>/…`,
    /// `moz-extension://<uuid>/…`), query strings removed, a Firefox install's uuid replaced by
    /// the extension's id; other frames (the host page's, other extensions') are left out.
    pub fn own_frames(&self, extension: &Extension) -> Vec<String> {
        let prefix = format!("{}/", extension.origin);
        let public = format!("{}/", extension.public_origin());
        let stack = self.stack.as_deref().unwrap_or_default();
        // A byte-window search, not `str::contains`: its two-way searcher brings `str` slicing's
        // panic path (4.5 KB of wasm with the searcher, measured with twiggy).
        let ours = |line: &str| line.as_bytes().windows(prefix.len()).any(|w| w == prefix.as_bytes());
        let shown = |frame: String| if prefix == public { frame } else { replace_all(&frame, &prefix, &public).unwrap_or(frame) };
        stack.lines().filter(|line| ours(line)).take(MAX_FRAMES).map(|line| shown(without_query(line.trim()))).collect()
    }

    /// The `$exception` event's properties: `type`, `message`, `stack` (own frames, one per line).
    pub fn props(&self, extension: &Extension) -> Props {
        let message: String = self.message.chars().take(MAX_MESSAGE_CHARS).collect();
        let stack = self.own_frames(extension).join("\n");
        Props::of_strings(&[("type", &self.kind), ("message", &message), ("stack", &stack)])
    }

    /// The error with every occurrence of `secret` (the configured token secret) replaced by
    /// `[redacted]` in its type, message and stack: an error that quotes the secret (a failed
    /// request's headers, a logged config) never stores or sends it.
    pub fn redacted(self, secret: &str) -> Thrown {
        let clean = |text: String| replace_all(&text, secret, "[redacted]").unwrap_or(text);
        Thrown { kind: clean(self.kind), message: clean(self.message), stack: self.stack.map(clean) }
    }

    /// What makes two errors the same one: type, message and first own frame.
    pub fn fingerprint(&self, extension: &Extension) -> u64 {
        let first = self.own_frames(extension).into_iter().next().unwrap_or_default();
        fnv1a(&[&self.kind, &self.message, &first], FNV_OFFSET)
    }
}

/// `text` with each occurrence of `needle` replaced by `with`; `None` when there is none. A
/// byte-window search, like [`Thrown::own_frames`]'s (no `str` searcher in the wasm).
fn replace_all(text: &str, needle: &str, with: &str) -> Option<String> {
    let (bytes, needle) = (text.as_bytes(), needle.as_bytes());
    if needle.is_empty() || bytes.len() < needle.len() {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let (mut i, mut found) = (0, false);
    while i < bytes.len() {
        if bytes.get(i..i + needle.len()) == Some(needle) {
            out.extend_from_slice(with.as_bytes());
            i += needle.len();
            found = true;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Whole occurrences of a valid string were replaced by a valid string: still valid UTF-8.
    found.then(|| String::from_utf8(out).ok()).flatten()
}

/// `at f (chrome-extension://id/a.js?v=2:10:5)` → `at f (chrome-extension://id/a.js:10:5)`.
fn without_query(frame: &str) -> String {
    let mut parts = frame.split('?');
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        // The query ends where the line and column (`:10:5`), a `)` or a space begin.
        let line_or_end =
            |i: usize, c: char| c == ')' || c == ' ' || (c == ':' && part.get(i + 1..).is_some_and(|r| r.starts_with(|d: char| d.is_ascii_digit())));
        let kept = part.char_indices().find(|&(i, c)| line_or_end(i, c)).and_then(|(i, _)| part.get(i..));
        out.push_str(kept.unwrap_or_default());
    }
    out
}

/// Stores each distinct error once per minute, at most [`MAX_DISTINCT_PER_MINUTE`] of them; the
/// rest are counted.
#[derive(Debug, Default)]
pub struct Throttle {
    window_start: u64,
    /// The distinct errors of this minute.
    seen: Vec<u64>,
    /// Errors not stored, since the tracker started.
    pub throttled: u64,
}

impl Throttle {
    /// Whether the error `fingerprint`, thrown at `now`, is stored.
    pub fn admit(&mut self, fingerprint: u64, now: u64) -> bool {
        if now.saturating_sub(self.window_start) >= MINUTE_MS {
            self.window_start = now;
            self.seen.clear();
        }
        let admitted = !self.seen.contains(&fingerprint) && self.seen.len() < MAX_DISTINCT_PER_MINUTE;
        if admitted {
            self.seen.push(fingerprint);
        } else {
            self.throttled += 1;
        }
        admitted
    }
}
