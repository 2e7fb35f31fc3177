//! What a participant's `User-Agent` says of their device: browser, operating system and
//! kind of device, for the call records (docs/calls.md). Parsed by `woothee` (the rules the
//! woothee project keeps for many languages), with what it does not tell added here: tablets.

use woothee::parser::Parser;

/// A participant's device as their browser describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    /// `Chrome 131`, `Safari 17`, `Firefox 133`; empty when unknown.
    pub browser: String,
    /// `Windows 10`, `macOS 10.15.7`, `Android 14`, `iOS 17.1`; empty when unknown.
    pub os: String,
    /// `desktop`, `mobile`, `tablet`, `bot`, `other`; empty when unknown.
    pub kind: String,
}

const UNKNOWN: &str = "UNKNOWN";

fn known(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty() && s != UNKNOWN).then_some(s)
}

/// The device that user agent `ua` describes.
pub fn describe(ua: &str) -> Device {
    let Some(r) = Parser::new().parse(ua) else {
        return Device::default();
    };
    let major = known(r.version).map(|v| v.split('.').next().unwrap_or(v));
    let browser = match (known(r.name), major) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n.to_string(),
        _ => String::new(),
    };
    // woothee names iOS by the device and gives Windows' NT version apart from its name.
    let version = known(&r.os_version).filter(|v| !v.starts_with("NT "));
    let os = match known(r.os) {
        Some("iPhone" | "iPad" | "iPod") => "iOS",
        Some("Mac OSX") => "macOS",
        Some(os) => os,
        None => "",
    };
    let os = match version {
        Some(v) if !os.is_empty() => format!("{os} {v}"),
        _ => os.to_string(),
    };
    let tablet = ua.contains("iPad") || (ua.contains("Android") && !ua.contains("Mobile"));
    let kind = match r.category {
        "pc" => "desktop",
        "smartphone" if tablet => "tablet",
        "smartphone" | "mobilephone" => "mobile",
        "crawler" => "bot",
        "appliance" | "misc" => "other",
        _ => "",
    };
    Device {
        browser: browser.chars().take(64).collect(),
        os: os.chars().take(64).collect(),
        kind: kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(browser: &str, os: &str, kind: &str) -> Device {
        Device {
            browser: browser.into(),
            os: os.into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn common_browsers() {
        assert_eq!(
            describe("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
            d("Chrome 131", "Windows 10", "desktop")
        );
        assert_eq!(
            describe("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"),
            d("Safari 17", "iOS 17.1", "mobile")
        );
        assert_eq!(
            describe("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
            d("Chrome 131", "Android 14", "mobile")
        );
        assert_eq!(
            describe("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
            d("Chrome 120", "Android 13", "tablet")
        );
        assert_eq!(
            describe("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
            d("Firefox 133", "Linux", "desktop")
        );
        assert_eq!(
            describe("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"),
            d("Chrome 156", "Linux", "desktop")
        );
    }

    #[test]
    fn unknown_and_empty() {
        assert_eq!(describe(""), Device::default());
        assert_eq!(describe("x"), Device::default());
        assert_eq!(describe("orbita-bot/1"), d("misc crawler", "", "bot"));
        assert_eq!(
            describe("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"),
            d("Safari 17", "iOS 17.1", "tablet")
        );
        assert_eq!(
            describe("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"),
            d("Safari 17", "macOS 10.15.7", "desktop")
        );
    }
}
