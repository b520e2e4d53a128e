//! Who sends: the identified user (`identify`, `$user_id` on every later event) and the super
//! properties (`register`, merged into every later event). Kept in `chrome.storage.local` under
//! [`PROFILE_KEY`], written by the same `set` as the events tracked with them, and forgotten by
//! `reset()` and by an opt-out with purge.
//!
//! Stored text, one line each: `u<user id>`, then `p<key as JSON>\t<value as JSON>` per super
//! property in the order registered. No field can hold a newline: a user id has no control
//! characters, and JSON text escapes them.

use super::error::{Error, ErrorCode, Result};
use super::json::write_str;
use super::props::{Props, MAX_STRING_BYTES};

/// Key of the profile record in `chrome.storage.local`.
pub const PROFILE_KEY: &str = "inhouse:v1:profile";
/// The longest user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 256;
/// The super properties' JSON text at most, all together: they ride on every event.
pub const MAX_SUPER_BYTES: usize = 16 * 1024;

/// The identified user and the super properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    user_id: Option<String>,
    /// (key as JSON text, value as JSON text), in the order registered.
    supers: Vec<(String, String)>,
}

impl Profile {
    /// The profile stored as `text`; `None` when it is damaged (then nothing of it is used).
    pub fn decode(text: &str) -> Option<Profile> {
        let mut profile = Profile::default();
        for line in text.lines() {
            if let Some(user) = line.strip_prefix('u') {
                check_user_id(user).ok()?;
                profile.user_id = Some(user.into());
            } else {
                let (key, value) = line.strip_prefix('p')?.split_once('\t')?;
                let quoted = key.len() >= 2 && key.starts_with('"') && key.ends_with('"');
                if !quoted || value.is_empty() {
                    return None;
                }
                profile.supers.push((key.into(), value.into()));
            }
        }
        Some(profile)
    }

    /// The text [`Profile::decode`] reads back.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(user) = &self.user_id {
            out.push('u');
            out.push_str(user);
            out.push('\n');
        }
        for (key, value) in &self.supers {
            out.push('p');
            out.push_str(key);
            out.push('\t');
            out.push_str(value);
            out.push('\n');
        }
        out
    }

    /// The identified user, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The super properties: (key as JSON text, value as JSON text).
    pub fn supers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.supers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets the user (already checked by [`check_user_id`]).
    pub fn identify(&mut self, user_id: String) {
        self.user_id = Some(user_id);
    }

    /// Merges `props` into the super properties: a key registered again takes the new value.
    /// Refused, and nothing changed, when they would grow past [`MAX_SUPER_BYTES`].
    pub fn register(&mut self, props: &Props) -> Result<()> {
        let mut next = self.supers.clone();
        for (key, value) in props.members() {
            match next.iter_mut().find(|(k, _)| k == key) {
                Some(member) => member.1 = value.into(),
                None => next.push((key.into(), value.into())),
            }
        }
        let bytes: usize = next.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        if bytes > MAX_SUPER_BYTES {
            let message =
                format!("super properties would take {bytes} bytes serialized; they ride on every event, so the limit is {MAX_SUPER_BYTES}");
            return Err(Error::at(ErrorCode::InvalidProperties, "properties", message));
        }
        self.supers = next;
        Ok(())
    }

    /// Removes one super property (nothing if it is not registered).
    pub fn unregister(&mut self, key: &str) {
        let mut quoted = String::with_capacity(key.len() + 2);
        write_str(&mut quoted, key);
        self.supers.retain(|(k, _)| *k != quoted);
    }
}

/// A user id is 1 to 256 characters without control characters.
pub fn check_user_id(user_id: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::at(ErrorCode::InvalidUserId, "userId", format!("userId {why}")));
    if user_id.is_empty() {
        return bad("must not be empty");
    }
    let chars = user_id.chars().count();
    if chars > MAX_USER_ID_CHARS || user_id.len() > MAX_STRING_BYTES {
        return bad(&format!("must be at most {MAX_USER_ID_CHARS} characters, got {chars}"));
    }
    if user_id.chars().any(char::is_control) {
        return bad("must not contain control characters (newlines, tabs, ...)");
    }
    Ok(())
}
