//! Where an event comes from (`$source` and, for events relayed from the extension's pages and
//! content scripts, the tab, the frame and the page): decided from what Chrome's
//! `runtime.onMessage` `sender` says, never from the message itself, which the page wrote.

/// Which surface of the extension an event came from (`$source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    #[default]
    Background,
    Popup,
    Options,
    SidePanel,
    ContentScript,
    Offscreen,
    /// Another page of the extension, opened in a tab.
    Page,
}

impl Source {
    /// The value of `$source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Background => "background",
            Source::Popup => "popup",
            Source::Options => "options",
            Source::SidePanel => "side_panel",
            Source::ContentScript => "content_script",
            Source::Offscreen => "offscreen",
            Source::Page => "page",
        }
    }
}

/// Where one event came from: the surface and, for an event relayed from a page or a content
/// script, what Chrome's `sender` says of it (never what the message itself claims).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub source: Source,
    pub tab_id: Option<i64>,
    pub frame_id: Option<i64>,
    pub incognito: Option<bool>,
    /// `$origin`, `$path` or `$url` with their values, as the `pageUrl` option reduces the
    /// sender's URL.
    pub location: Vec<(&'static str, String)>,
}

/// How much of a content script's page URL events carry (the `pageUrl` option): a full URL is
/// browsing history, so the origin is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PageUrl {
    /// `$origin` only (`https://example.com`).
    #[default]
    Origin,
    /// `$origin` and `$path` (no query, no fragment).
    Path,
    /// `$url`, whole.
    Full,
}

/// The extension's own pages, as the manifest names them (`/popup.html`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensionPages {
    pub popup: Option<String>,
    pub options: Option<String>,
    pub side_panel: Option<String>,
}

impl ExtensionPages {
    /// From the manifest's paths, relative or absolute (`popup.html`, `/ui/options.html`), or
    /// whole URLs (Firefox's `getManifest()` gives `options_ui.page` as
    /// `moz-extension://<uuid>/options.html`).
    pub fn new(popup: Option<String>, options: Option<String>, side_panel: Option<String>) -> ExtensionPages {
        let absolute = |p: Option<String>| {
            let p = p.filter(|p| !p.is_empty())?;
            Some(if p.contains(':') {
                split_url(&p).1.to_string()
            } else if p.starts_with('/') {
                p
            } else {
                format!("/{p}")
            })
        };
        ExtensionPages { popup: absolute(popup), options: absolute(options), side_panel: absolute(side_panel) }
    }
}

/// This extension as its own URLs name it: `chrome-extension://<id>` in Chrome and Edge,
/// `moz-extension://<uuid>` in Firefox, where the uuid is made for each install (it must never
/// reach an event: [`Extension::public_origin`] stands for it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extension {
    /// `runtime.id`: the store's id (Chrome, Edge) or the gecko id (Firefox).
    pub id: String,
    /// `runtime.getURL('')` without its last `/`.
    pub origin: String,
}

impl Extension {
    /// An extension of Chrome (or Edge), whose origin holds its id.
    pub fn chrome(id: &str) -> Extension {
        Extension { id: id.to_string(), origin: format!("chrome-extension://{id}") }
    }

    /// The origin as events show it: the same scheme with the extension's id
    /// (`moz-extension://name@example.com` for a Firefox install, whatever its uuid).
    pub fn public_origin(&self) -> String {
        // A `char` split: a `str` pattern brings the two-way searcher (4.5 KB of wasm).
        let scheme = self.origin.split(':').next().unwrap_or("chrome-extension");
        format!("{scheme}://{}", self.id)
    }
}

/// The browser's name and major version from its user agent string, where
/// `navigator.userAgentData` is missing (Firefox; a Chromium browser with client hints off).
pub fn browser_from_user_agent(agent: &str) -> (Option<String>, Option<String>) {
    let major =
        |prefix: &str| agent.split(' ').find_map(|word| word.strip_prefix(prefix)).map(|v| v.split('.').next().unwrap_or_default().to_string());
    if let Some(version) = major("Firefox/") {
        return (Some("Firefox".into()), Some(version));
    }
    match major("Chrome/") {
        Some(version) => (Some("Chrome".into()), Some(version)),
        None => (None, None),
    }
}

/// What the browser's `sender` says of a message's author.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sender {
    pub url: Option<String>,
    /// `sender.origin` (Chrome 80+).
    pub origin: Option<String>,
    pub tab_id: Option<i64>,
    pub frame_id: Option<i64>,
    pub incognito: Option<bool>,
}

/// The origin of an event relayed from `sender`, in the extension `extension`: its own pages are
/// those of its origin (`chrome-extension://<id>`, `moz-extension://<uuid>`).
pub fn relayed(sender: &Sender, extension: &Extension, pages: &ExtensionPages, page_url: PageUrl) -> Origin {
    let url = sender.url.as_deref().unwrap_or_default();
    let (url_origin, path) = split_url(url);
    let base = Origin { tab_id: sender.tab_id, frame_id: sender.frame_id, incognito: sender.incognito, ..Origin::default() };
    let own = url_origin == extension.origin;
    if own {
        let is = |page: &Option<String>| page.as_deref() == Some(path);
        let source = if is(&pages.popup) {
            Source::Popup
        } else if is(&pages.options) {
            Source::Options
        } else if is(&pages.side_panel) {
            Source::SidePanel
        } else if sender.tab_id.is_some() {
            Source::Page
        } else {
            // An extension document with no tab that the manifest does not name.
            Source::Offscreen
        };
        return Origin { source, location: vec![("$path", path.to_string())], ..base };
    }
    let origin = sender.origin.clone().filter(|o| !o.is_empty() && o != "null").unwrap_or_else(|| url_origin.to_string());
    let location = match page_url {
        PageUrl::Origin => vec![("$origin", origin)],
        PageUrl::Path => vec![("$origin", origin), ("$path", path.to_string())],
        PageUrl::Full => vec![("$url", url.to_string())],
    };
    Origin { source: Source::ContentScript, location, ..base }
}

/// A URL's origin (`scheme://host[:port]`) and path (without query and fragment; `/` when
/// empty). Not a full URL parser: Chrome hands over URLs it has already parsed.
pub fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find(':').filter(|&i| url.get(i..i + 3) == Some("://")).map_or(0, |i| i + 3);
    let path_at = url.get(after_scheme..).and_then(|rest| rest.find(['/', '?', '#'])).map_or(url.len(), |i| after_scheme + i);
    let (origin, rest) = url.split_at_checked(path_at).unwrap_or((url, ""));
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    (origin, if path.is_empty() { "/" } else { path })
}
