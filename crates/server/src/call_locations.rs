//! Locations shared in a call's chat (docs/calls.md, "Location"): the map link, the address
//! from a Nominatim-compatible reverse geocoder and a map tile around the place, each only
//! when the operator configured the service (`geocoder_url`, `map_tile_url`): nothing leaves
//! the server for a third party unless they did.
//!
//! Nominatim's usage policy is kept: an identifying `User-Agent` (Orbita, its version and this
//! server's address), at most one request a second from this server (requests wait their turn,
//! at most [`MAX_WAITING`] of them; more get no address), answers read up to a limit, and a
//! timeout ([`TIMEOUT`]): a slow or failing service costs the location its address, never the
//! location itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

/// How long a geocoder or tile server may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Lookups that may wait for the geocoder's one-a-second turn.
pub const MAX_WAITING: usize = 20;
/// The map tiles' zoom (a few streets across).
pub const TILE_ZOOM: u32 = 16;
/// The most bytes read of an answer.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// The geocoder's pace (Nominatim: one request a second).
const GEOCODER_INTERVAL: Duration = Duration::from_secs(1);

/// The place on OpenStreetMap's site.
pub fn map_url(lat: f64, lon: f64) -> String {
    format!("https://www.openstreetmap.org/?mlat={lat:.6}&mlon={lon:.6}#map=17/{lat:.6}/{lon:.6}")
}

/// The slippy-map tile at `zoom` holding the place, and the place's pixel on it (256 x 256).
pub fn tile_of(lat: f64, lon: f64, zoom: u32) -> (u32, u32, u32, u32) {
    let n = f64::from(1u32 << zoom);
    // Web Mercator stops at ±85.0511°.
    let lat = lat.clamp(-85.051_128, 85.051_128).to_radians();
    let x = (lon + 180.0) / 360.0 * n;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n;
    let max = n - 1e-9;
    let (x, y) = (x.clamp(0.0, max), y.clamp(0.0, max));
    (
        x as u32,
        y as u32,
        ((x.fract() * 256.0) as u32).min(255),
        ((y.fract() * 256.0) as u32).min(255),
    )
}

/// The server's geocoder and tile server.
pub struct Geo {
    geocoder_url: Option<String>,
    tile_url: Option<String>,
    agent: ureq::Agent,
    /// When the geocoder may be asked next.
    next_turn: Mutex<tokio::time::Instant>,
    waiting: AtomicUsize,
}

impl Geo {
    /// The services of these settings; `public_url` identifies this server to them.
    pub fn new(geocoder_url: Option<String>, tile_url: Option<String>, public_url: &str) -> Geo {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::WebPki)
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(2)
            .user_agent(format!(
                "Orbita/{} (+{public_url})",
                env!("CARGO_PKG_VERSION")
            ))
            .tls_config(tls)
            .build()
            .into();
        Geo {
            geocoder_url: geocoder_url.map(|u| u.trim_end_matches('/').to_string()),
            tile_url,
            agent,
            next_turn: Mutex::new(tokio::time::Instant::now()),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The address of the place (Nominatim's `/reverse`), when a geocoder is configured and
    /// answers in time. `language`: the sender's `Accept-Language`, passed on.
    pub async fn address(&self, lat: f64, lon: f64, language: Option<String>) -> Option<String> {
        let base = self.geocoder_url.clone()?;
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("reverse geocoding skipped: {MAX_WAITING} lookups already wait");
            return None;
        }
        {
            let mut next = self.next_turn.lock().await;
            tokio::time::sleep_until(*next).await;
            *next = tokio::time::Instant::now() + GEOCODER_INTERVAL;
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let agent = self.agent.clone();
        let asked = tokio::task::spawn_blocking(move || {
            let mut request = agent
                .get(format!("{base}/reverse"))
                .query("format", "jsonv2")
                .query("lat", format!("{lat:.7}"))
                .query("lon", format!("{lon:.7}"))
                .query("zoom", "18")
                .query("addressdetails", "0");
            if let Some(language) = language {
                request = request.header("Accept-Language", language);
            }
            let mut answer = request.call().map_err(|e| e.to_string())?;
            if answer.status() != 200 {
                return Err(format!("status {}", answer.status()));
            }
            let body = answer
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
                .map_err(|e| e.to_string())?;
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            value["display_name"]
                .as_str()
                .map(|s| s.chars().take(500).collect::<String>())
                .ok_or_else(|| format!("no display_name: {}", value["error"]))
        })
        .await;
        match asked {
            Ok(Ok(address)) => Some(address),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reverse geocoding failed");
                None
            }
            Err(_) => None,
        }
    }

    /// The map tile around the place (PNG or JPEG bytes) and the place's pixel on it, when a
    /// tile server is configured and answers in time.
    pub async fn tile(&self, lat: f64, lon: f64) -> Option<(Vec<u8>, u32, u32)> {
        let template = self.tile_url.clone()?;
        let (x, y, px, py) = tile_of(lat, lon, TILE_ZOOM);
        let url = template
            .replace("{z}", &TILE_ZOOM.to_string())
            .replace("{x}", &x.to_string())
            .replace("{y}", &y.to_string());
        let agent = self.agent.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let mut answer = agent.get(&url).call().map_err(|e| e.to_string())?;
            if answer.status() != 200 {
                return Err(format!("status {}", answer.status()));
            }
            answer
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
                .map_err(|e| e.to_string())
        })
        .await;
        match fetched {
            Ok(Ok(bytes)) if is_picture(&bytes) => Some((bytes, px, py)),
            Ok(Ok(_)) => {
                tracing::warn!("the map tile server answered something else than a PNG or JPEG");
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the map tile could not be fetched");
                None
            }
            Err(_) => None,
        }
    }
}

/// Whether `bytes` start as a PNG or a JPEG.
fn is_picture(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xff, 0xd8, 0xff])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_and_pixels_of_known_places() {
        // Zoom 0: the world on one tile; (0, 0) at its middle.
        assert_eq!(tile_of(0.0, 0.0, 0), (0, 0, 128, 128));
        // Almaty at zoom 16 (OpenStreetMap's tile numbers, by the wiki's formula with asinh).
        assert_eq!(tile_of(43.238_949, 76.889_709, 16), (46765, 24021, 88, 144));
        // The poles and the date line stay on the map.
        for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0)] {
            let (x, y, _, _) = tile_of(lat, lon, 16);
            assert!(x < 65536 && y < 65536, "{lat},{lon}");
        }
    }

    #[test]
    fn the_map_link_shows_the_place() {
        assert_eq!(
            map_url(43.2389, 76.8897),
            "https://www.openstreetmap.org/?mlat=43.238900&mlon=76.889700#map=17/43.238900/76.889700"
        );
    }
}
