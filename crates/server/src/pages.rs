//! The browser client: its HTML pages and the static files under `web/`, compiled into the
//! binary (running the server needs no npm and no build step).
//!
//! Every page is the same shell, `web/index.html`; the scripts it loads (`web/js/app.js`) show
//! the home page at `/`, the pre-join and call pages at `/r/{code}`, and the account pages
//! ([`ACCOUNT_PAGES`]: sign-up, log-in, administration, planning, everyone's plans, first-run setup; they talk
//! to the coordinator's REST API, docs/accounts.md, which checks who may do what). The server fills in
//! the page kind and the room code (escaped) so the shell knows where it is before any script
//! runs. Static files are served under `/assets/` with an `ETag`, and revalidated on every
//! load (`Cache-Control: no-cache`), since their names carry no content hash.

use std::borrow::Cow;

use rust_embed::RustEmbed;

/// The files of the browser client (the repository's `web/` folder).
#[derive(RustEmbed)]
#[folder = "../../web/"]
struct WebAssets;

/// URL prefix of the static files.
pub const ASSETS_PREFIX: &str = "/assets/";

/// A static file of the browser client.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The file's bytes.
    pub body: Cow<'static, [u8]>,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// A strong `ETag` (quoted) from the content's hash.
    pub etag: String,
}

/// Environment variable naming a folder to serve the client from instead of the embedded
/// copy, for working on `web/` without rebuilding (`ORBITA_WEB_DIR=web orbita serve`).
pub const WEB_DIR_ENV: &str = "ORBITA_WEB_DIR";

/// The static file at `path` (relative to `web/`, without a leading slash), if there is one.
pub fn asset(path: &str) -> Option<Asset> {
    if path.is_empty()
        || path
            .split('/')
            .any(|part| part.is_empty() || part == ".." || part == ".")
    {
        return None;
    }
    let body: Cow<'static, [u8]> = match std::env::var_os(WEB_DIR_ENV) {
        Some(dir) => Cow::Owned(std::fs::read(std::path::Path::new(&dir).join(path)).ok()?),
        None => WebAssets::get(path)?.data,
    };
    Some(Asset {
        etag: etag_of(&body),
        body,
        content_type: content_type(path),
    })
}

/// A strong entity tag of some bytes (FNV-1a, 64 bits, twice with different seeds).
fn etag_of(bytes: &[u8]) -> String {
    let hash = |seed: u64| {
        bytes.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "\"{:016x}{:08x}\"",
        hash(0xcbf2_9ce4_8422_2325),
        hash(0x6c62_272e_07bb_0142) as u32
    )
}

/// The `Content-Type` of a static file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page shell with its `<body>` attributes filled in.
fn shell(page: &str, code: Option<&str>) -> String {
    let template = asset("index.html")
        .map(|f| String::from_utf8_lossy(&f.body).into_owned())
        .unwrap_or_else(|| {
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Orbita</title></head>\
             <body data-page=\"{{page}}\" data-code=\"{{code}}\">\
             </body></html>"
                .to_string()
        });
    template
        .replace("{{page}}", page)
        .replace("{{code}}", &escape(code.unwrap_or("")))
}

/// `GET /`: the home page (make a room, or join one by code).
pub fn index() -> String {
    shell("home", None)
}

/// The account pages: path and page kind (the shell's `data-page`).
pub const ACCOUNT_PAGES: [(&str, &str); 8] = [
    ("/signup", "signup"),
    ("/login", "login"),
    ("/admin", "admin"),
    ("/plan", "plan"),
    ("/plans", "plans"),
    ("/recordings", "recordings"),
    ("/calls", "calls"),
    ("/setup", "setup"),
];

/// `GET /signup`, `/login`, `/admin`, `/plan`, `/plans`: an account page, by its kind (one of
/// [`ACCOUNT_PAGES`]; anything else is the home page). The page itself asks the API who is
/// logged in and says so when the visitor's role may not use it.
pub fn account_page(kind: &str) -> String {
    match ACCOUNT_PAGES.iter().find(|(_, k)| *k == kind) {
        Some((_, kind)) => shell(kind, None),
        None => index(),
    }
}

/// `GET /r/{code}`: the room page (pre-join, then the call). The same for every code, live
/// or not: its script looks the code up (a counted guess, [`crate::guesses`]).
pub fn room(code: &str, _public_url: &str) -> String {
    shell("room", Some(code))
}

/// The signalling URL for a public base URL (`http` becomes `ws`, `https` becomes `wss`).
pub fn ws_url(public_url: &str) -> String {
    let rest = public_url.trim_end_matches('/');
    if let Some(host) = rest.strip_prefix("https://") {
        format!("wss://{host}/ws")
    } else if let Some(host) = rest.strip_prefix("http://") {
        format!("ws://{host}/ws")
    } else {
        format!("{rest}/ws")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_builds_ws_urls() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(ws_url("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws_url("https://v.example.org/"), "wss://v.example.org/ws");
        let page = room("<b>", "http://x");
        assert!(page.contains("&lt;b&gt;") && !page.contains("<b>"));
        assert!(
            !page.contains("data-known"),
            "the page does not tell: {page}"
        );
    }

    #[test]
    fn pages_load_the_client_and_say_where_they_are() {
        let home = index();
        assert!(home.contains("data-page=\"home\""), "{home}");
        assert!(home.contains("/assets/js/app.js"));
        let room = room("4821", "http://x");
        assert!(room.contains("data-page=\"room\"") && room.contains("data-code=\"4821\""));
        assert!(!room.contains("{{"), "every placeholder is filled: {room}");
        for (_, kind) in ACCOUNT_PAGES {
            let page = account_page(kind);
            assert!(page.contains(&format!("data-page=\"{kind}\"")), "{page}");
            assert!(!page.contains("{{"), "every placeholder is filled: {page}");
        }
        assert!(account_page("nope").contains("data-page=\"home\""));
    }

    #[test]
    fn assets_are_embedded_with_types_and_etags() {
        let app = asset("js/app.js").expect("web/js/app.js is embedded");
        assert_eq!(app.content_type, "text/javascript; charset=utf-8");
        assert!(
            app.etag.starts_with('"') && app.etag.len() == 26,
            "{}",
            app.etag
        );
        for lang in ["en", "ru", "kk"] {
            let table = asset(&format!("i18n/{lang}.json")).expect("translation table");
            let parsed: serde_json::Value = serde_json::from_slice(&table.body).unwrap();
            assert!(parsed.is_object(), "{lang}.json is an object");
        }
        assert_eq!(content_type("css/app.css"), "text/css; charset=utf-8");
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("js//app.js").is_none());
        assert!(asset("nope.js").is_none());
    }
}
