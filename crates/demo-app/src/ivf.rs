//! IVF stream reading and VP8 frame headers.
//!
//! IVF (all integers little endian): a 32-byte file header (`"DKIF"`, version u16, header
//! length u16, fourcc, width u16, height u16, timebase denominator u32, timebase numerator
//! u32, frame count u32, unused u32), then per frame a 12-byte header (size u32, pts u64)
//! and `size` bytes of frame data. Read from a pipe, the frame count is not filled in.

use std::io::{ErrorKind, Read};

use anyhow::{bail, ensure, Context};

/// Length of the IVF file header.
pub const IVF_HEADER_LEN: usize = 32;
/// Length of the per-frame header.
pub const IVF_FRAME_HEADER_LEN: usize = 12;
/// Largest frame accepted (a sanity bound against a corrupt stream).
pub const MAX_FRAME_LEN: usize = 8 << 20;

/// The IVF file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvfHeader {
    pub fourcc: [u8; 4],
    pub width: u16,
    pub height: u16,
    pub timebase_den: u32,
    pub timebase_num: u32,
}

/// One IVF frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvfFrame {
    pub pts: u64,
    pub data: Vec<u8>,
}

/// Reads an IVF stream frame by frame.
pub struct IvfReader<R> {
    inner: R,
    header: IvfHeader,
}

impl<R: Read> IvfReader<R> {
    /// Read and check the file header.
    pub fn new(mut inner: R) -> anyhow::Result<IvfReader<R>> {
        let mut h = [0u8; IVF_HEADER_LEN];
        inner
            .read_exact(&mut h)
            .context("reading the IVF file header")?;
        ensure!(
            &h[0..4] == b"DKIF",
            "not an IVF stream (signature {:?})",
            &h[0..4]
        );
        let header_len = usize::from(u16::from_le_bytes([h[6], h[7]]));
        ensure!(
            header_len >= IVF_HEADER_LEN,
            "invalid IVF header length {header_len}"
        );
        // Skip any header extension.
        if header_len > IVF_HEADER_LEN {
            let mut rest = vec![0u8; header_len - IVF_HEADER_LEN];
            inner.read_exact(&mut rest)?;
        }
        let header = IvfHeader {
            fourcc: [h[8], h[9], h[10], h[11]],
            width: u16::from_le_bytes([h[12], h[13]]),
            height: u16::from_le_bytes([h[14], h[15]]),
            timebase_den: u32::from_le_bytes([h[16], h[17], h[18], h[19]]),
            timebase_num: u32::from_le_bytes([h[20], h[21], h[22], h[23]]),
        };
        Ok(IvfReader { inner, header })
    }

    /// The file header.
    pub fn header(&self) -> &IvfHeader {
        &self.header
    }

    /// The next frame, or None at a clean end of stream (between frames).
    pub fn next_frame(&mut self) -> anyhow::Result<Option<IvfFrame>> {
        let mut fh = [0u8; IVF_FRAME_HEADER_LEN];
        // A clean end is an EOF before the first byte of a frame header.
        let mut got = 0;
        while got < fh.len() {
            match self.inner.read(&mut fh[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => bail!("IVF stream ends inside a frame header"),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading an IVF frame header"),
            }
        }
        let size = u32::from_le_bytes([fh[0], fh[1], fh[2], fh[3]]) as usize;
        let pts = u64::from_le_bytes(fh[4..12].try_into().expect("8 bytes"));
        ensure!(size > 0, "empty IVF frame");
        ensure!(
            size <= MAX_FRAME_LEN,
            "IVF frame of {size} bytes is too large"
        );
        let mut data = vec![0u8; size];
        self.inner
            .read_exact(&mut data)
            .context("IVF stream ends inside a frame")?;
        Ok(Some(IvfFrame { pts, data }))
    }
}

/// What the first bytes of a VP8 frame say (RFC 6386 section 9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8FrameHeader {
    pub keyframe: bool,
    pub version: u8,
    pub show_frame: bool,
    /// Size of the first partition in bytes.
    pub first_partition_len: u32,
    /// Keyframes only: the picture size (14 bits each; the 2-bit scaling is dropped).
    pub width: Option<u16>,
    pub height: Option<u16>,
}

/// Parse a VP8 frame's tag (and a keyframe's start code and size). None if it is not VP8.
pub fn parse_vp8_header(data: &[u8]) -> Option<Vp8FrameHeader> {
    if data.len() < 3 {
        return None;
    }
    let tag = u32::from(data[0]) | (u32::from(data[1]) << 8) | (u32::from(data[2]) << 16);
    let keyframe = tag & 1 == 0;
    let version = ((tag >> 1) & 7) as u8;
    let show_frame = (tag >> 4) & 1 == 1;
    let first_partition_len = tag >> 5;
    if version > 3 {
        return None;
    }
    let (width, height) = if keyframe {
        if data.len() < 10 || data[3..6] != [0x9d, 0x01, 0x2a] {
            return None;
        }
        (
            Some(u16::from_le_bytes([data[6], data[7]]) & 0x3fff),
            Some(u16::from_le_bytes([data[8], data[9]]) & 0x3fff),
        )
    } else {
        (None, None)
    };
    Some(Vp8FrameHeader {
        keyframe,
        version,
        show_frame,
        first_partition_len,
        width,
        height,
    })
}

/// Whether a VP8 frame is a keyframe (its tag's inverse key bit is 0).
pub fn is_vp8_keyframe(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 1 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf(frames: &[&[u8]]) -> Vec<u8> {
        let mut v = b"DKIF".to_vec();
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&32u16.to_le_bytes());
        v.extend_from_slice(b"VP80");
        v.extend_from_slice(&320u16.to_le_bytes());
        v.extend_from_slice(&180u16.to_le_bytes());
        v.extend_from_slice(&15u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&[0xff; 8]);
        for (i, f) in frames.iter().enumerate() {
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(&(i as u64).to_le_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn parses_synthetic_stream() {
        let key = [
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00, 0xaa,
        ];
        let delta = [0x31, 0x00, 0x00, 0x55];
        let bytes = ivf(&[&key, &delta]);
        let mut r = IvfReader::new(&bytes[..]).unwrap();
        assert_eq!(&r.header().fourcc, b"VP80");
        assert_eq!((r.header().width, r.header().height), (320, 180));
        let f0 = r.next_frame().unwrap().unwrap();
        let h0 = parse_vp8_header(&f0.data).unwrap();
        assert!(h0.keyframe && h0.show_frame);
        assert_eq!((h0.width, h0.height), (Some(320), Some(180)));
        let f1 = r.next_frame().unwrap().unwrap();
        assert_eq!(f1.pts, 1);
        let h1 = parse_vp8_header(&f1.data).unwrap();
        assert!(!h1.keyframe && h1.width.is_none());
        assert!(r.next_frame().unwrap().is_none());

        // Truncated streams are errors, not clean ends.
        let cut = &bytes[..bytes.len() - 2];
        let mut r = IvfReader::new(cut).unwrap();
        r.next_frame().unwrap();
        assert!(r.next_frame().is_err());
        assert!(IvfReader::new(&b"RIFF0000"[..]).is_err());
        assert!(parse_vp8_header(&[0x10, 0x02, 0x00, 1, 2, 3, 0, 0, 0, 0]).is_none());
    }
}
