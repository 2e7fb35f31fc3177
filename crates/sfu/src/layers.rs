//! Simulcast layer choice: which of a publisher's encodings a subscriber gets, from the
//! subscriber's bandwidth estimate and its requested maximum resolution. Sans-IO.

use std::time::{Duration, Instant};

use orbita_protocol::MaxQuality;

/// Measures the bitrate of one incoming layer over one-second windows.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window_start: Instant,
    window_bytes: u64,
    last_bps: u64,
    last_packet: Option<Instant>,
}

/// A layer with no packet for this long is taken as stopped by the publisher.
pub const LAYER_INACTIVE_AFTER: Duration = Duration::from_millis(1500);

const WINDOW: Duration = Duration::from_secs(1);

impl RateMeter {
    /// A meter starting now.
    pub fn new(now: Instant) -> Self {
        RateMeter {
            window_start: now,
            window_bytes: 0,
            last_bps: 0,
            last_packet: None,
        }
    }

    /// Count a packet of `bytes` payload bytes.
    pub fn add(&mut self, now: Instant, bytes: usize) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            self.last_bps = self.window_bytes * 8 * 1000 / (elapsed.as_millis().max(1) as u64);
            self.window_start = now;
            self.window_bytes = 0;
        }
        self.window_bytes += bytes as u64;
        self.last_packet = Some(now);
    }

    /// Bits per second over the last full window (or the current one before that exists).
    pub fn bps(&self, now: Instant) -> u64 {
        if !self.active(now) {
            return 0;
        }
        if self.last_bps > 0 {
            return self.last_bps;
        }
        let elapsed = now
            .saturating_duration_since(self.window_start)
            .as_millis()
            .max(100) as u64;
        self.window_bytes * 8 * 1000 / elapsed
    }

    /// Whether packets arrived recently.
    pub fn active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < LAYER_INACTIVE_AFTER)
    }
}

/// What layer choice needs to know of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerView {
    /// Width in pixels (0: unknown).
    pub width: u32,
    /// Height in pixels (0: unknown).
    pub height: u32,
    /// Measured bitrate.
    pub bps: u64,
    /// Whether the publisher is sending it.
    pub active: bool,
}

/// Pick the index (into `layers`) of the best layer that fits both the resolution cap and the
/// bandwidth budget. When nothing fits the budget the smallest allowed layer is chosen (video
/// degrades, it does not stop); when no layer is under the cap, the smallest active one.
/// `None` only when no layer is active.
pub fn choose_layer(layers: &[LayerView], max: MaxQuality, budget_bps: u64) -> Option<usize> {
    let mut order: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].active).collect();
    order.sort_by_key(|&i| (layers[i].height, layers[i].width, layers[i].bps));
    let smallest = *order.first()?;
    let allowed: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let l = &layers[i];
            (l.width == 0 && l.height == 0) || max.allows(l.width, l.height)
        })
        .collect();
    let Some(&smallest_allowed) = allowed.first() else {
        return Some(smallest);
    };
    Some(
        allowed
            .iter()
            .rev()
            .copied()
            .find(|&i| layers[i].bps <= budget_bps)
            .unwrap_or(smallest_allowed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(width: u32, height: u32, bps: u64) -> LayerView {
        LayerView {
            width,
            height,
            bps,
            active: true,
        }
    }

    /// The order a browser announces them: full, half, quarter.
    fn three() -> Vec<LayerView> {
        vec![
            layer(1280, 720, 1_200_000),
            layer(640, 360, 450_000),
            layer(320, 180, 150_000),
        ]
    }

    #[test]
    fn resolution_cap_picks_the_largest_layer_under_it() {
        let q = |s| MaxQuality::parse(s).unwrap();
        assert_eq!(choose_layer(&three(), q("auto"), 10_000_000), Some(0));
        assert_eq!(choose_layer(&three(), q("1280x720"), 10_000_000), Some(0));
        assert_eq!(choose_layer(&three(), q("640x480"), 10_000_000), Some(1));
        assert_eq!(choose_layer(&three(), q("320x240"), 10_000_000), Some(2));
        // Nothing fits under 100x100: the smallest layer still flows.
        assert_eq!(choose_layer(&three(), q("100x100"), 10_000_000), Some(2));
    }

    #[test]
    fn bandwidth_budget_lowers_the_layer() {
        assert_eq!(choose_layer(&three(), MaxQuality::Auto, 1_000_000), Some(1));
        assert_eq!(choose_layer(&three(), MaxQuality::Auto, 200_000), Some(2));
        assert_eq!(choose_layer(&three(), MaxQuality::Auto, 10_000), Some(2));
    }

    #[test]
    fn stopped_layers_are_skipped() {
        let mut l = three();
        l[0].active = false;
        assert_eq!(choose_layer(&l, MaxQuality::Auto, 10_000_000), Some(1));
        for x in &mut l {
            x.active = false;
        }
        assert_eq!(choose_layer(&l, MaxQuality::Auto, 10_000_000), None);
    }

    #[test]
    fn meter_measures_bits_per_second_and_goes_inactive() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        for i in 0..=100 {
            m.add(t0 + Duration::from_millis(i * 10), 1000);
        }
        // 100 packets of 1000 bytes in the first second: 800 kbit/s.
        let bps = m.bps(t0 + Duration::from_millis(1000));
        assert!((780_000..=820_000).contains(&bps), "{bps}");
        assert!(!m.active(t0 + Duration::from_secs(5)));
        assert_eq!(m.bps(t0 + Duration::from_secs(5)), 0);
    }
}
