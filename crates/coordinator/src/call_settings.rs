//! What administrators set for calls (docs/calls.md, "Branding, consent and feature
//! switches"): the organisation's branding (company name, colours, logo), the consent text a
//! guest accepts before joining, the page a customer goes to after the call, and which call
//! features each role in the call has, per app. The coordinator keeps them and hands them to
//! every media server over the node link (`CALL_SETTINGS`); the media servers serve the
//! branding to the customer's page and enforce the switches.
//!
//! Orbita has one organisation per deployment: the branding is the deployment's; the feature
//! switches are per app (`default` for every app without its own).

use std::collections::BTreeMap;

use orbita_protocol::CallFeatures;
use serde::{Deserialize, Serialize};

use crate::call_forms::DEFAULT_SCOPE;

/// The largest logo, in bytes.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// The largest logo, in pixels each way.
pub const MAX_LOGO_SIDE: usize = 4096;
/// The longest company name, in characters.
pub const MAX_COMPANY_CHARS: usize = 100;
/// The longest consent text, in characters.
pub const MAX_CONSENT_CHARS: usize = 5000;
/// The longest redirect address, in bytes.
pub const MAX_REDIRECT_BYTES: usize = 2000;
/// The most apps with switches of their own.
pub const MAX_FEATURE_SCOPES: usize = 1000;

/// The switches of one app (or `default`): what the call's agent and its customers may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFeatures {
    /// The agent's (who joined with the host key).
    #[serde(default)]
    pub agent: CallFeatures,
    /// Everyone else's (guests; everyone in a room without a host).
    #[serde(default)]
    pub customer: CallFeatures,
}

/// The organisation's look and the customer's journey. Empty strings: not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// Shown on the customer's page and as its title.
    #[serde(default)]
    pub company: String,
    /// The main colour, `#rrggbb` (buttons, links).
    #[serde(default)]
    pub primary_color: String,
    /// The second colour, `#rrggbb` (the header's band).
    #[serde(default)]
    pub accent_color: String,
    /// What a guest must accept before joining (plain text; paragraphs by blank lines).
    #[serde(default)]
    pub consent_text: String,
    /// Where a customer goes when the call (and its survey) is over: `https://...`.
    #[serde(default)]
    pub redirect_url: String,
}

fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Branding {
    /// Checks every field; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        let company = self.company.trim();
        if company.chars().count() > MAX_COMPANY_CHARS || company.chars().any(char::is_control) {
            return Err(format!(
                "company: at most {MAX_COMPANY_CHARS} characters, no control characters"
            ));
        }
        for (name, color) in [
            ("primary_color", &self.primary_color),
            ("accent_color", &self.accent_color),
        ] {
            if !color.is_empty() && !is_color(color) {
                return Err(format!("{name}: a colour is #rrggbb, like #1a73e8"));
            }
        }
        let consent = self.consent_text.trim();
        if consent.chars().count() > MAX_CONSENT_CHARS
            || consent
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(format!(
                "consent_text: at most {MAX_CONSENT_CHARS} characters, no control characters"
            ));
        }
        let url = self.redirect_url.trim();
        if !url.is_empty() {
            let bad = || {
                format!(
                    "redirect_url: an http:// or https:// address of at most {MAX_REDIRECT_BYTES} bytes, without user or password"
                )
            };
            if url.len() > MAX_REDIRECT_BYTES {
                return Err(bad());
            }
            let parsed = url::Url::parse(url).map_err(|_| bad())?;
            if !matches!(parsed.scheme(), "http" | "https")
                || parsed.host_str().is_none()
                || !parsed.username().is_empty()
                || parsed.password().is_some()
            {
                return Err(bad());
            }
        }
        Ok(())
    }

    /// The same with surrounding white space trimmed (what is stored).
    pub fn trimmed(&self) -> Branding {
        Branding {
            company: self.company.trim().to_string(),
            primary_color: self.primary_color.to_ascii_lowercase(),
            accent_color: self.accent_color.to_ascii_lowercase(),
            consent_text: self.consent_text.trim().to_string(),
            redirect_url: self.redirect_url.trim().to_string(),
        }
    }

    /// The id of its consent text (SHA-256, hex), what a guest's `join` names; none without one.
    pub fn consent_id(&self) -> Option<String> {
        (!self.consent_text.is_empty()).then(|| consent_id(&self.consent_text))
    }
}

/// The id of a consent text: its SHA-256, hex.
pub fn consent_id(text: &str) -> String {
    crate::accounts::tokens::token_hash(text)
}

/// The organisation's logo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logo {
    /// `image/png`, `image/jpeg`, `image/webp` or `image/gif`.
    #[serde(rename = "type")]
    pub content_type: String,
    /// The file, base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

/// Why a logo is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoError {
    /// Larger than [`MAX_LOGO_BYTES`].
    TooLarge(usize),
    /// Not a PNG, JPEG, WebP or GIF picture, or not what its `Content-Type` says.
    Type(String),
    /// Unreadable or too large a picture.
    Picture(String),
}

impl std::fmt::Display for LogoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogoError::TooLarge(n) => write!(
                f,
                "the logo is {n} bytes; the limit is {MAX_LOGO_BYTES} bytes (256 KiB)"
            ),
            LogoError::Type(s) | LogoError::Picture(s) => f.write_str(s),
        }
    }
}

impl Logo {
    /// A logo from an upload: `declared` is its `Content-Type`; the bytes must be a PNG, JPEG,
    /// WebP or GIF picture of that type, at most [`MAX_LOGO_BYTES`] and [`MAX_LOGO_SIDE`]
    /// pixels each way. SVG is refused: it may carry scripts.
    pub fn from_upload(declared: &str, data: Vec<u8>) -> Result<Logo, LogoError> {
        if data.len() > MAX_LOGO_BYTES {
            return Err(LogoError::TooLarge(data.len()));
        }
        let declared = declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let sniffed = match imagesize::image_type(&data) {
            Ok(imagesize::ImageType::Png) => "image/png",
            Ok(imagesize::ImageType::Jpeg) => "image/jpeg",
            Ok(imagesize::ImageType::Webp) => "image/webp",
            Ok(imagesize::ImageType::Gif) => "image/gif",
            _ => {
                return Err(LogoError::Type(
                    "the logo must be a PNG, JPEG, WebP or GIF picture (SVG is not taken)".into(),
                ))
            }
        };
        if declared != sniffed {
            return Err(LogoError::Type(format!(
                "the file is {sniffed} but was sent as {declared:?}; send it with Content-Type: {sniffed}"
            )));
        }
        let size = imagesize::blob_size(&data)
            .map_err(|e| LogoError::Picture(format!("the picture cannot be read: {e}")))?;
        if size.width == 0
            || size.height == 0
            || size.width > MAX_LOGO_SIDE
            || size.height > MAX_LOGO_SIDE
        {
            return Err(LogoError::Picture(format!(
                "the picture is {}x{} pixels; at most {MAX_LOGO_SIDE} each way",
                size.width, size.height
            )));
        }
        Ok(Logo {
            content_type: sniffed.to_string(),
            data,
        })
    }
}

/// Everything the media servers need (`CALL_SETTINGS` on the node link).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSettings {
    /// Changes whenever anything changes (ms of the last change).
    pub version: i64,
    /// The switches per app, `default` for every other.
    #[serde(default)]
    pub features: BTreeMap<String, RoleFeatures>,
    /// The branding.
    #[serde(default)]
    pub branding: Branding,
    /// The logo, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Logo>,
}

impl CallSettings {
    /// The switches of a call of app `rc_name`: the app's, else the default, else everything
    /// on.
    pub fn features_for(&self, rc_name: &str) -> RoleFeatures {
        self.features
            .get(rc_name)
            .or_else(|| self.features.get(DEFAULT_SCOPE))
            .copied()
            .unwrap_or_default()
    }
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2x1 PNG.
    pub(crate) const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 2, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x7b, 0x40, 0xe8, 0xdd,
    ];

    #[test]
    fn branding_checks_name_the_field() {
        let ok = Branding {
            company: "Acme".into(),
            primary_color: "#1A73E8".into(),
            accent_color: String::new(),
            consent_text: "We record this call.\n\nDo you agree?".into(),
            redirect_url: "https://example.org/thanks?x=1".into(),
        };
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(ok.trimmed().primary_color, "#1a73e8");
        for (b, field) in [
            (
                Branding {
                    primary_color: "red".into(),
                    ..ok.clone()
                },
                "primary_color",
            ),
            (
                Branding {
                    accent_color: "#12345g".into(),
                    ..ok.clone()
                },
                "accent_color",
            ),
            (
                Branding {
                    redirect_url: "javascript:alert(1)".into(),
                    ..ok.clone()
                },
                "redirect_url",
            ),
            (
                Branding {
                    redirect_url: "https://user:pw@example.org/".into(),
                    ..ok.clone()
                },
                "redirect_url",
            ),
            (
                Branding {
                    company: "x".repeat(101),
                    ..ok.clone()
                },
                "company",
            ),
            (
                Branding {
                    consent_text: "a\u{0}b".into(),
                    ..ok.clone()
                },
                "consent_text",
            ),
        ] {
            let e = b.check().unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
        assert_eq!(ok.consent_id().map(|c| c.len()), Some(64));
        assert_eq!(Branding::default().consent_id(), None);
    }

    #[test]
    fn logos_are_sniffed_and_bounded() {
        let logo = Logo::from_upload("image/png", PNG.to_vec()).unwrap();
        assert_eq!(logo.content_type, "image/png");
        assert!(matches!(
            Logo::from_upload("image/jpeg", PNG.to_vec()),
            Err(LogoError::Type(_))
        ));
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        assert!(matches!(
            Logo::from_upload("image/svg+xml", svg.to_vec()),
            Err(LogoError::Type(_))
        ));
        let mut big = PNG.to_vec();
        big.resize(MAX_LOGO_BYTES + 1, 0);
        assert!(matches!(
            Logo::from_upload("image/png", big),
            Err(LogoError::TooLarge(_))
        ));
        let json = serde_json::to_string(&logo).unwrap();
        assert!(json.contains("\"type\":\"image/png\""), "{json}");
        assert_eq!(serde_json::from_str::<Logo>(&json).unwrap(), logo);
    }

    #[test]
    fn features_fall_back_to_default_then_everything_on() {
        let mut s = CallSettings::default();
        assert!(s.features_for("video-room").agent.camera);
        let one_way = RoleFeatures {
            agent: CallFeatures {
                camera: false,
                ..CallFeatures::default()
            },
            ..RoleFeatures::default()
        };
        s.features.insert("default".into(), one_way);
        assert!(!s.features_for("SomeRC").agent.camera);
        s.features.insert("SomeRC".into(), RoleFeatures::default());
        assert!(s.features_for("SomeRC").agent.camera);
        assert!(!s.features_for("video-room").agent.camera);
        let parsed: RoleFeatures =
            serde_json::from_str(r#"{"agent":{"camera":false},"customer":{}}"#).unwrap();
        assert_eq!(parsed, one_way);
    }
}
