//! Placeholder HTML pages (the browser UI is a later issue).

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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
}

/// `GET /`: what Orbita is.
pub fn index() -> String {
    page(
        "Orbita",
        "<h1>Orbita</h1>\n\
         <p>A self-hosted video platform: browsers and bots join rooms by a short code, and an \
         SFU forwards everyone's audio and video to everyone else.</p>\n\
         <p>The browser interface is not here yet. Create a room with \
         <code>curl -X POST /api/rooms</code> and join it with <code>orbita bot</code>; \
         signalling is at <code>/ws</code>.</p>",
    )
}

/// `GET /r/{code}`: the join page of one room.
pub fn room(code: &str, known: bool, public_url: &str) -> String {
    let code_html = escape(code);
    let ws_url = escape(&ws_url(public_url));
    let body = if known {
        format!(
            "<h1>Orbita room {code_html}</h1>\n\
             <p>Join code: <strong>{code_html}</strong></p>\n\
             <p>The browser interface is not here yet. Join with a bot:</p>\n\
             <pre>orbita bot --url {ws_url} --code {code_html}</pre>"
        )
    } else {
        format!(
            "<h1>No room {code_html}</h1>\n\
             <p>No room has the code <strong>{code_html}</strong>. It may have ended; ask for a \
             new link.</p>"
        )
    };
    page(&format!("Orbita room {code_html}"), &body)
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
        let page = room("<b>", false, "http://x");
        assert!(page.contains("&lt;b&gt;") && !page.contains("<b>"));
    }
}
