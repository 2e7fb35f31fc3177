//! The scene and its software renderer.
//!
//! The picture: a dark sky over a floor grid in perspective that scrolls towards the viewer,
//! a spotlight on the floor and a crosshair through the cursor, the cursor marker (a disc:
//! orange for a pointer, green while a button is held, magenta for a touch), a 16-bit frame
//! counter drawn as blocks along the top left edge and one yellow block per held key at the top
//! right. Everything is drawn straight into an I420 (YUV 4:2:0) buffer, one pass per pixel,
//! so rendering stays cheap (a few milliseconds for 640x360 in a release build).
//!
//! [`render`] is a pure function of the scene state and the frame number.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::input::InputEvent;

/// How far one arrow key press moves the cursor, as a fraction of the frame.
pub const ARROW_STEP: f64 = 0.05;
/// Most keys remembered as held at once.
pub const MAX_HELD_KEYS: usize = 16;
/// Bits of the frame counter drawn along the top edge.
pub const COUNTER_BITS: u32 = 16;

/// What the cursor last followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CursorSource {
    Pointer,
    Touch,
    Keys,
}

/// The state the picture shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Cursor position, normalised (0..1, clamped).
    pub cursor_x: f64,
    pub cursor_y: f64,
    /// Pointer buttons held (DOM bit mask).
    pub buttons: u32,
    /// Keys held down.
    pub held_keys: BTreeSet<String>,
    /// What moved the cursor last.
    pub source: CursorSource,
}

impl Default for Scene {
    fn default() -> Self {
        Scene {
            cursor_x: 0.5,
            cursor_y: 0.5,
            buttons: 0,
            held_keys: BTreeSet::new(),
            source: CursorSource::Pointer,
        }
    }
}

impl Scene {
    /// Apply one input event. Every valid event is applied: pointer and touch move the cursor,
    /// arrow keys (key down) move it by [`ARROW_STEP`], and every key changes the held-key row.
    pub fn apply(&mut self, input: &InputEvent) {
        match input {
            InputEvent::Pointer { x, y, buttons } => {
                self.cursor_x = clamp01(*x);
                self.cursor_y = clamp01(*y);
                self.buttons = *buttons;
                self.source = CursorSource::Pointer;
            }
            InputEvent::Touch { x, y } => {
                self.cursor_x = clamp01(*x);
                self.cursor_y = clamp01(*y);
                self.buttons = 0;
                self.source = CursorSource::Touch;
            }
            InputEvent::Key { key, down } => {
                if *down {
                    let (dx, dy) = match key.as_str() {
                        "ArrowLeft" => (-ARROW_STEP, 0.0),
                        "ArrowRight" => (ARROW_STEP, 0.0),
                        "ArrowUp" => (0.0, -ARROW_STEP),
                        "ArrowDown" => (0.0, ARROW_STEP),
                        _ => (0.0, 0.0),
                    };
                    if dx != 0.0 || dy != 0.0 {
                        self.cursor_x = clamp01(self.cursor_x + dx);
                        self.cursor_y = clamp01(self.cursor_y + dy);
                        self.source = CursorSource::Keys;
                    }
                    if self.held_keys.len() < MAX_HELD_KEYS {
                        self.held_keys.insert(key.clone());
                    }
                } else {
                    self.held_keys.remove(key);
                }
            }
        }
    }

    /// The cursor's pixel position in a `width` x `height` frame.
    pub fn cursor_px(&self, width: u32, height: u32) -> (f64, f64) {
        (
            self.cursor_x * f64::from(width.saturating_sub(1)),
            self.cursor_y * f64::from(height.saturating_sub(1)),
        )
    }

    /// Radius of the cursor marker in pixels.
    pub fn marker_radius(&self, height: u32) -> f64 {
        let base = (f64::from(height) / 18.0).max(4.0);
        if self.buttons != 0 {
            base * 1.4
        } else {
            base
        }
    }

    /// The marker's colour.
    pub fn marker_rgb(&self) -> Rgb {
        if self.buttons != 0 {
            MARKER_PRESSED
        } else if self.source == CursorSource::Touch {
            MARKER_TOUCH
        } else {
            MARKER
        }
    }
}

fn clamp01(v: f64) -> f64 {
    if v.is_nan() {
        0.5
    } else {
        v.clamp(0.0, 1.0)
    }
}

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// Cursor marker colour (pointer, no button).
pub const MARKER: Rgb = (255, 140, 0);
/// Cursor marker colour while a pointer button is held.
pub const MARKER_PRESSED: Rgb = (40, 230, 60);
/// Cursor marker colour after a touch.
pub const MARKER_TOUCH: Rgb = (230, 40, 220);
const MARKER_RING: Rgb = (255, 255, 255);
const SKY_TOP: Rgb = (8, 10, 40);
const SKY_BOTTOM: Rgb = (40, 30, 90);
const FLOOR: Rgb = (20, 24, 30);
const GRID: Rgb = (0, 190, 210);
const CROSSHAIR: Rgb = (150, 150, 170);
const COUNTER_ON: Rgb = (255, 255, 255);
const COUNTER_OFF: Rgb = (60, 60, 60);
const KEY_BLOCK: Rgb = (250, 220, 0);

/// BT.601 limited-range RGB -> YUV.
pub fn rgb_to_yuv((r, g, b): Rgb) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (clamp_u8(y), clamp_u8(u), clamp_u8(v))
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// An I420 picture: the Y plane (`width * height`), then U and V (`width/2 * height/2` each),
/// without padding, as ffmpeg's `-pix_fmt yuv420p` raw video expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl I420Frame {
    /// A black frame. Width and height must be even.
    pub fn new(width: u32, height: u32) -> I420Frame {
        assert!(
            width >= 2 && height >= 2 && width % 2 == 0 && height % 2 == 0,
            "I420 needs even dimensions, got {width}x{height}"
        );
        let y = (width * height) as usize;
        let mut data = vec![16u8; y + y / 2];
        data[y..].fill(128);
        I420Frame {
            width,
            height,
            data,
        }
    }

    /// Bytes in one frame of `width` x `height`.
    pub fn len_for(width: u32, height: u32) -> usize {
        let y = (width * height) as usize;
        y + y / 2
    }

    /// The luma of pixel (x, y).
    pub fn luma(&self, x: u32, y: u32) -> u8 {
        self.data[(y * self.width + x) as usize]
    }

    /// The (U, V) of the 2x2 block holding pixel (x, y).
    pub fn chroma(&self, x: u32, y: u32) -> (u8, u8) {
        let ysize = (self.width * self.height) as usize;
        let cw = self.width / 2;
        let i = ((y / 2) * cw + x / 2) as usize;
        let csize = ysize / 4;
        (self.data[ysize + i], self.data[ysize + csize + i])
    }
}

/// Where the frame counter's blocks are: (block size, gap, left, top).
fn counter_layout(height: u32) -> (u32, u32, u32, u32) {
    let block = (height / 40).max(3);
    let gap = (block / 4).max(1);
    (block, gap, gap * 2, gap * 2)
}

/// Render `scene` as frame number `frame` into `out` (any even size).
pub fn render(scene: &Scene, frame: u64, out: &mut I420Frame) {
    let (w, h) = (out.width, out.height);
    let (wf, hf) = (f64::from(w), f64::from(h));
    let (cx, cy) = scene.cursor_px(w, h);
    let radius = scene.marker_radius(h);
    let ring = (radius * 0.18).max(1.5);
    let marker = scene.marker_rgb();
    let horizon = (hf * 0.38).floor();
    let spot = (hf / 4.0).max(8.0);
    // The floor scrolls towards the viewer: a quarter grid cell per second at 15 fps.
    let scroll = (frame as f64) * 0.0167;
    let (block, gap, cleft, ctop) = counter_layout(h);
    let keys = scene.held_keys.len() as u32;

    let ysize = (w * h) as usize;
    let csize = ysize / 4;
    let cw = (w / 2) as usize;
    let (yplane, chroma) = out.data.split_at_mut(ysize);
    let (uplane, vplane) = chroma.split_at_mut(csize);

    for py in 0..h {
        let yf = f64::from(py);
        // Per-row floor geometry.
        let sky = mix(SKY_TOP, SKY_BOTTOM, yf / horizon.max(1.0));
        let floor_depth = if yf >= horizon {
            Some(hf * 0.5 / (yf - horizon + 1.0))
        } else {
            None
        };
        for px in 0..w {
            let xf = f64::from(px);
            let dx = xf - cx;
            let dy = yf - cy;
            let d2 = dx * dx + dy * dy;
            let color = if let Some(c) = overlay(px, py, frame, keys, w, block, gap, cleft, ctop) {
                c
            } else if d2 <= radius * radius {
                if d2 >= (radius - ring) * (radius - ring) {
                    MARKER_RING
                } else {
                    marker
                }
            } else if dx.abs() < 1.0 || dy.abs() < 1.0 {
                CROSSHAIR
            } else if let Some(z) = floor_depth {
                // World coordinates on the floor plane, and how much of it one pixel covers
                // (across and along), so far lines fade instead of aliasing.
                let wx = (xf - wf / 2.0) / wf * 8.0 * z;
                let wz = z + scroll;
                // Change per pixel step in x and in y (z changes with the row only).
                let fpz = z * z / (hf * 0.5);
                let fpx = 8.0 * z / wf + ((xf - wf / 2.0) / wf * 8.0 * fpz).abs();
                let coverage = line_coverage(wx, fpx).max(line_coverage(wz, fpz));
                let base = mix(FLOOR, GRID, coverage);
                let fog = (1.0 / (1.0 + z * 0.08)).clamp(0.0, 1.0);
                let light = if d2 < 16.0 * spot * spot {
                    1.0 + 2.5 * (-d2 / (2.0 * spot * spot)).exp()
                } else {
                    1.0
                };
                scale(base, fog * light)
            } else {
                sky
            };
            let (y, u, v) = rgb_to_yuv(color);
            yplane[(py * w + px) as usize] = y;
            if px % 2 == 0 && py % 2 == 0 {
                let ci = (py / 2) as usize * cw + (px / 2) as usize;
                uplane[ci] = u;
                vplane[ci] = v;
            }
        }
    }
}

/// The frame counter and held-key blocks, if (px, py) is on one.
#[allow(clippy::too_many_arguments)]
fn overlay(
    px: u32,
    py: u32,
    frame: u64,
    keys: u32,
    w: u32,
    block: u32,
    gap: u32,
    left: u32,
    top: u32,
) -> Option<Rgb> {
    if py < top || py >= top + block {
        return None;
    }
    let step = block + gap;
    // Counter: most significant bit first, left to right.
    if px >= left && px < left + COUNTER_BITS * step {
        let i = (px - left) / step;
        if (px - left) % step >= block {
            return None;
        }
        let bit = COUNTER_BITS - 1 - i;
        return Some(if (frame >> bit) & 1 == 1 {
            COUNTER_ON
        } else {
            COUNTER_OFF
        });
    }
    // Held keys: one block each, from the right edge leftwards.
    if keys > 0 {
        let right = w.saturating_sub(left);
        let start = right.saturating_sub(keys * step);
        if px >= start && px < right && (right - 1 - px) % step < block {
            return Some(KEY_BLOCK);
        }
    }
    None
}

/// Half the width of a grid line, in floor units (one cell is 1).
const LINE_HALF_WIDTH: f64 = 0.03;

/// How much of the pixel at `v`, spanning `footprint` floor units, grid lines (at every
/// integer, [`LINE_HALF_WIDTH`] either side) cover: a box filter, so near lines are crisp and
/// far ones fade to their average instead of aliasing.
fn line_coverage(v: f64, footprint: f64) -> f64 {
    let fp = footprint.max(1e-6);
    ((line_measure(v + fp / 2.0) - line_measure(v - fp / 2.0)) / fp).clamp(0.0, 1.0)
}

/// Length of line within [0, t] (for negative t, minus the length within [t, 0]).
fn line_measure(t: f64) -> f64 {
    let cell = t.floor();
    let u = t - cell;
    let lw = LINE_HALF_WIDTH;
    cell * 2.0 * lw + u.min(lw) + (u - (1.0 - lw)).max(0.0)
}

fn scale((r, g, b): Rgb, k: f64) -> Rgb {
    let s = |c: u8| (f64::from(c) * k).clamp(0.0, 255.0) as u8;
    (s(r), s(g), s(b))
}

fn mix(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    let m = |x: u8, y: u8| (f64::from(x) * (1.0 - t) + f64::from(y) * t) as u8;
    (m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Read the frame counter back from a rendered (or decoded) frame: each block's centre luma
/// is compared with the midpoint between the on and off colours.
pub fn read_counter(frame: &I420Frame) -> u64 {
    let (block, gap, left, top) = counter_layout(frame.height);
    let threshold = (rgb_to_yuv(COUNTER_ON).0 as u32 + rgb_to_yuv(COUNTER_OFF).0 as u32) / 2;
    let mut value = 0u64;
    for i in 0..COUNTER_BITS {
        let x = left + i * (block + gap) + block / 2;
        let y = top + block / 2;
        value = (value << 1) | u64::from(u32::from(frame.luma(x, y)) > threshold);
    }
    value
}

/// Find the cursor marker in a frame: the centroid of pixels whose colour is close to
/// `marker` (the marker's colour), or None if there are none.
pub fn find_marker(frame: &I420Frame, marker: Rgb) -> Option<(f64, f64)> {
    let (my, mu, mv) = rgb_to_yuv(marker);
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0u64);
    for y in (0..frame.height).step_by(2) {
        for x in (0..frame.width).step_by(2) {
            let (u, v) = frame.chroma(x, y);
            let close = |a: u8, b: u8, tol: i32| (i32::from(a) - i32::from(b)).abs() <= tol;
            if close(frame.luma(x, y), my, 24) && close(u, mu, 16) && close(v, mv, 16) {
                sx += f64::from(x);
                sy += f64::from(y);
                n += 1;
            }
        }
    }
    (n > 0).then(|| (sx / n as f64, sy / n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(scene: &Scene, frame: u64) -> I420Frame {
        let mut f = I420Frame::new(320, 180);
        render(scene, frame, &mut f);
        f
    }

    #[test]
    fn pointer_moves_the_marker() {
        let mut scene = Scene::default();
        scene.apply(&InputEvent::Pointer {
            x: 0.2,
            y: 0.3,
            buttons: 0,
        });
        let a = draw(&scene, 7);
        scene.apply(&InputEvent::Pointer {
            x: 0.8,
            y: 0.7,
            buttons: 0,
        });
        let b = draw(&scene, 7);
        assert_ne!(a, b, "different pointer positions give different frames");
        let differing = a.data.iter().zip(&b.data).filter(|(x, y)| x != y).count();
        assert!(differing > 500, "only {differing} bytes differ");

        for (frame, x, y) in [(&a, 0.2, 0.3), (&b, 0.8, 0.7)] {
            let (mx, my) = find_marker(frame, MARKER).expect("marker drawn");
            let (ex, ey) = (x * 319.0, y * 179.0);
            assert!(
                (mx - ex).abs() < 6.0 && (my - ey).abs() < 6.0,
                "marker at ({mx:.1}, {my:.1}), pointer at ({ex:.1}, {ey:.1})"
            );
        }
        assert_eq!(draw(&scene, 7), b, "rendering is a pure function");
    }

    #[test]
    fn buttons_touch_and_keys_show() {
        let mut scene = Scene::default();
        scene.apply(&InputEvent::Pointer {
            x: 0.5,
            y: 0.5,
            buttons: 1,
        });
        let f = draw(&scene, 0);
        assert!(find_marker(&f, MARKER_PRESSED).is_some());
        assert!(find_marker(&f, MARKER).is_none());

        scene.apply(&InputEvent::Touch { x: 0.1, y: 0.9 });
        let f = draw(&scene, 0);
        let (mx, my) = find_marker(&f, MARKER_TOUCH).expect("touch marker");
        assert!(
            (mx - 31.9).abs() < 6.0 && (my - 161.1).abs() < 6.0,
            "{mx} {my}"
        );

        let mut s = Scene::default();
        s.apply(&InputEvent::Key {
            key: "ArrowLeft".into(),
            down: true,
        });
        assert!((s.cursor_x - 0.45).abs() < 1e-9 && s.cursor_y == 0.5);
        assert_eq!(s.source, CursorSource::Keys);
        let with_key = draw(&s, 0);
        s.apply(&InputEvent::Key {
            key: "ArrowLeft".into(),
            down: false,
        });
        assert!(s.held_keys.is_empty());
        assert_ne!(draw(&s, 0), with_key, "held key blocks are drawn");
        // Clamping.
        s.apply(&InputEvent::Pointer {
            x: -3.0,
            y: 9.0,
            buttons: 0,
        });
        assert_eq!((s.cursor_x, s.cursor_y), (0.0, 1.0));
    }

    #[test]
    fn counter_reads_back() {
        let scene = Scene::default();
        for n in [0u64, 1, 2, 255, 4660, 65535] {
            assert_eq!(read_counter(&draw(&scene, n)), n);
        }
        let mut big = I420Frame::new(640, 360);
        render(&scene, 12345, &mut big);
        assert_eq!(read_counter(&big), 12345);
    }
}
