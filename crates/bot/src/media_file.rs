//! Pre-encoded media that the bot publishes: VP8 simulcast layers stored as
//! IVF files and Opus audio stored in an Ogg container.
//!
//! The assets live in `assets/media/` and are produced by
//! `scripts/make-media.sh`. Every VP8 layer is the same 3 s, 30 fps clip with a
//! keyframe every 30 frames and no alt-ref frames, and the Opus track uses
//! 20 ms packets, so the frames can be sent in a loop exactly as stored.

use std::io::{Cursor, ErrorKind};
use std::sync::Arc;

use anyhow::{anyhow, bail, ensure, Context};

/// Length of the IVF file header, in bytes.
const IVF_FILE_HEADER_LEN: usize = 32;
/// Length of the header that precedes every IVF frame, in bytes.
const IVF_FRAME_HEADER_LEN: usize = 12;
/// Magic bytes at the start of every IVF file.
const IVF_SIGNATURE: &[u8; 4] = b"DKIF";
/// IVF fourcc of VP8 video.
const VP8_FOURCC: &[u8; 4] = b"VP80";
/// Start code that follows the 3-byte frame tag of a VP8 keyframe.
const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// One encoded video frame.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// The complete encoded frame, as it goes into an RTP payload.
    pub data: Arc<[u8]>,
    /// Whether the frame is a keyframe (decodable without earlier frames).
    pub keyframe: bool,
}

/// A VP8 video track read from an IVF file.
#[derive(Debug, Clone)]
pub struct IvfVideo {
    /// Frame width in pixels, as declared by the IVF header.
    pub width: u16,
    /// Frame height in pixels, as declared by the IVF header.
    pub height: u16,
    /// Codec fourcc from the IVF header; always `b"VP80"`.
    pub fourcc: [u8; 4],
    /// All frames, in file order.
    pub frames: Vec<VideoFrame>,
}

/// Parser for IVF files holding VP8 video.
///
/// IVF layout (all integers little endian): a 32-byte file header
/// (`"DKIF"`, version u16, header length u16, fourcc, width u16, height u16,
/// timebase denominator u32, timebase numerator u32, frame count u32, unused
/// u32), then for each frame a 12-byte header (size u32, timestamp u64)
/// followed by `size` bytes of frame data.
#[derive(Debug, Clone, Copy, Default)]
pub struct IvfReader;

impl IvfReader {
    /// Parses a complete IVF file holding VP8 video.
    ///
    /// # Errors
    ///
    /// Fails with a descriptive error if the signature or codec is wrong, a
    /// frame is empty, or the file is truncated (a frame runs past the end of
    /// the data, or fewer frames are present than the header declares).
    pub fn parse(bytes: &[u8]) -> anyhow::Result<IvfVideo> {
        ensure!(
            bytes.len() >= IVF_FILE_HEADER_LEN,
            "IVF file truncated: {} bytes, the file header alone is {IVF_FILE_HEADER_LEN}",
            bytes.len()
        );
        ensure!(
            &bytes[0..4] == IVF_SIGNATURE,
            "not an IVF file: signature is {:?}, expected \"DKIF\"",
            String::from_utf8_lossy(&bytes[0..4])
        );
        let header_len = usize::from(read_u16(bytes, 6));
        ensure!(
            (IVF_FILE_HEADER_LEN..=bytes.len()).contains(&header_len),
            "invalid IVF header length {header_len} (file is {} bytes)",
            bytes.len()
        );
        let fourcc = [bytes[8], bytes[9], bytes[10], bytes[11]];
        ensure!(
            &fourcc == VP8_FOURCC,
            "unsupported IVF codec {:?}, expected \"VP80\"",
            String::from_utf8_lossy(&fourcc)
        );
        let width = read_u16(bytes, 12);
        let height = read_u16(bytes, 14);
        let declared_frames = read_u32(bytes, 24);

        let mut frames = Vec::with_capacity(declared_frames as usize);
        let mut pos = header_len;
        while pos < bytes.len() {
            let index = frames.len();
            ensure!(
                bytes.len() - pos >= IVF_FRAME_HEADER_LEN,
                "IVF file truncated: frame {index} header at offset {pos} is incomplete"
            );
            let size = read_u32(bytes, pos) as usize;
            let start = pos + IVF_FRAME_HEADER_LEN;
            let end = start
                .checked_add(size)
                .filter(|&end| end <= bytes.len())
                .with_context(|| {
                    format!(
                        "IVF file truncated: frame {index} at offset {pos} declares {size} bytes, \
                         only {} remain",
                        bytes.len() - start
                    )
                })?;
            ensure!(size > 0, "IVF frame {index} at offset {pos} is empty");
            let data: Arc<[u8]> = Arc::from(&bytes[start..end]);
            frames.push(VideoFrame {
                keyframe: vp8_is_keyframe(&data),
                data,
            });
            pos = end;
        }

        // Writers that cannot seek back leave the count at 0, so only a
        // shortfall against a non-zero count is treated as truncation.
        ensure!(
            frames.len() >= declared_frames as usize,
            "IVF file truncated: header declares {declared_frames} frames, found {}",
            frames.len()
        );
        ensure!(!frames.is_empty(), "IVF file contains no frames");

        Ok(IvfVideo {
            width,
            height,
            fourcc,
            frames,
        })
    }
}

/// Returns the width and height coded in a VP8 keyframe, or `None` if `frame`
/// is not a (well-formed) keyframe.
///
/// A VP8 frame starts with a 3-byte frame tag whose lowest bit is 0 for
/// keyframes; keyframes continue with the start code `9d 01 2a` and two
/// little-endian 16-bit fields holding the 14-bit width and height (the top two
/// bits are the scaling mode and are ignored).
#[must_use]
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || !vp8_is_keyframe(frame) || frame[3..6] != VP8_START_CODE {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width, height))
}

/// Whether a non-empty VP8 frame is a keyframe (bit 0 of the frame tag is 0).
fn vp8_is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|tag| tag & 0x01 == 0)
}

/// Reads the Opus audio packets of an Ogg Opus file.
///
/// The first Opus stream in the file is used: its `OpusHead` and `OpusTags`
/// header packets are checked and skipped, and the remaining packets are
/// returned in order, ready to be sent one per RTP packet. Packets of any
/// other logical stream are ignored.
///
/// # Errors
///
/// Fails if the data is not valid Ogg, the first stream is not Opus, an audio
/// packet is empty, or the stream is truncated (it ends without its
/// end-of-stream page).
pub fn read_ogg_opus(bytes: &[u8]) -> anyhow::Result<Vec<Arc<[u8]>>> {
    let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
    let mut next_packet = || {
        reader.read_packet().map_err(|err| match err {
            ogg::OggReadError::ReadError(io) if io.kind() == ErrorKind::UnexpectedEof => {
                anyhow!("Ogg Opus file truncated: incomplete page")
            }
            other => anyhow::Error::new(other).context("invalid Ogg data"),
        })
    };

    let head = next_packet()?.context("Ogg file contains no packets")?;
    ensure!(
        head.data.starts_with(b"OpusHead"),
        "first Ogg packet is not an OpusHead header"
    );
    let serial = head.stream_serial();

    let mut saw_tags = false;
    let mut saw_end = false;
    let mut packets = Vec::new();
    while let Some(packet) = next_packet()? {
        if packet.stream_serial() != serial {
            continue;
        }
        if !saw_tags {
            ensure!(
                packet.data.starts_with(b"OpusTags"),
                "second Opus packet is not an OpusTags header"
            );
            saw_tags = true;
            continue;
        }
        ensure!(
            !packet.data.is_empty(),
            "Opus packet {} is empty",
            packets.len()
        );
        let last = packet.last_in_stream();
        packets.push(Arc::from(packet.data));
        if last {
            saw_end = true;
            break;
        }
    }

    if !saw_tags {
        bail!("Ogg Opus file truncated: OpusTags header missing");
    }
    ensure!(
        saw_end,
        "Ogg Opus file truncated: end-of-stream page missing"
    );
    ensure!(
        !packets.is_empty(),
        "Ogg Opus file contains no audio packets"
    );
    Ok(packets)
}

/// The media compiled into the bot binary.
#[derive(Debug, Clone)]
pub struct MediaLibrary {
    /// VP8 simulcast layers, highest first: 1280x720, 640x360, 320x180.
    pub layers: Vec<IvfVideo>,
    /// Opus packets of 20 ms each.
    pub opus: Vec<Arc<[u8]>>,
}

impl MediaLibrary {
    /// Parses the assets embedded from `assets/media/`.
    ///
    /// # Errors
    ///
    /// Fails only if an embedded asset is malformed, i.e. the assets were
    /// regenerated incorrectly.
    pub fn embedded() -> anyhow::Result<MediaLibrary> {
        const LAYERS: [(&str, &[u8]); 3] = [
            (
                "vp8-1280x720.ivf",
                include_bytes!("../../../assets/media/vp8-1280x720.ivf"),
            ),
            (
                "vp8-640x360.ivf",
                include_bytes!("../../../assets/media/vp8-640x360.ivf"),
            ),
            (
                "vp8-320x180.ivf",
                include_bytes!("../../../assets/media/vp8-320x180.ivf"),
            ),
        ];
        const OPUS: &[u8] = include_bytes!("../../../assets/media/opus-48k.ogg");

        let layers = LAYERS
            .iter()
            .map(|(name, bytes)| IvfReader::parse(bytes).with_context(|| format!("parsing {name}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let opus = read_ogg_opus(OPUS).context("parsing opus-48k.ogg")?;
        Ok(MediaLibrary { layers, opus })
    }
}

/// Reads a little-endian u16 at `pos`; the caller guarantees the bounds.
fn read_u16(bytes: &[u8], pos: usize) -> u16 {
    u16::from_le_bytes([bytes[pos], bytes[pos + 1]])
}

/// Reads a little-endian u32 at `pos`; the caller guarantees the bounds.
fn read_u32(bytes: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD: &[u8] = include_bytes!("../../../assets/media/vp8-1280x720.ivf");
    const LOW: &[u8] = include_bytes!("../../../assets/media/vp8-320x180.ivf");
    const OPUS: &[u8] = include_bytes!("../../../assets/media/opus-48k.ogg");

    /// Duration in microseconds of one Opus frame with the given TOC config
    /// (RFC 6716, section 3.1).
    fn opus_frame_duration_us(config: u8) -> u32 {
        match config {
            0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
            12..=15 => [10_000, 20_000][usize::from(config % 2)],
            _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
        }
    }

    #[test]
    fn hd_layer_parses() {
        let video = IvfReader::parse(HD).unwrap();
        assert_eq!((video.width, video.height), (1280, 720));
        assert_eq!(&video.fourcc, b"VP80");
        assert_eq!(video.frames.len(), 90);
        assert!(video.frames[0].keyframe);
        assert_eq!(vp8_keyframe_size(&video.frames[0].data), Some((1280, 720)));
    }

    #[test]
    fn low_layer_keyframe_size() {
        let video = IvfReader::parse(LOW).unwrap();
        assert_eq!((video.width, video.height), (320, 180));
        assert_eq!(vp8_keyframe_size(&video.frames[0].data), Some((320, 180)));
    }

    #[test]
    fn keyframes_every_30_frames() {
        let media = MediaLibrary::embedded().unwrap();
        let sizes: Vec<_> = media.layers.iter().map(|l| (l.width, l.height)).collect();
        assert_eq!(sizes, [(1280, 720), (640, 360), (320, 180)]);
        for layer in &media.layers {
            assert_eq!(layer.frames.len(), 90);
            for (i, frame) in layer.frames.iter().enumerate() {
                assert_eq!(
                    frame.keyframe,
                    i % 30 == 0,
                    "frame {i} of {}p",
                    layer.height
                );
                let expected = frame.keyframe.then_some((layer.width, layer.height));
                assert_eq!(vp8_keyframe_size(&frame.data), expected);
            }
        }
    }

    #[test]
    fn opus_packets_are_20ms() {
        let packets = read_ogg_opus(OPUS).unwrap();
        assert!(
            (148..=152).contains(&packets.len()),
            "{} packets",
            packets.len()
        );
        for (i, packet) in packets.iter().enumerate() {
            assert!(!packet.is_empty(), "packet {i} is empty");
            let toc = packet[0];
            let frames = match toc & 0x03 {
                0 => 1,
                1 | 2 => 2,
                _ => u32::from(packet.get(1).copied().unwrap_or(0) & 0x3f),
            };
            let duration = frames * opus_frame_duration_us(toc >> 3);
            assert_eq!(duration, 20_000, "packet {i} with TOC {toc:#04x}");
        }
        assert_eq!(MediaLibrary::embedded().unwrap().opus.len(), packets.len());
    }

    #[test]
    fn truncated_ivf_is_an_error() {
        for len in [0, 10, 31, 32, 40, HD.len() / 2, HD.len() - 1] {
            let err = IvfReader::parse(&HD[..len]).unwrap_err();
            assert!(err.to_string().contains("truncated"), "len {len}: {err}");
        }
    }

    #[test]
    fn bad_ivf_is_an_error() {
        let mut bad = HD.to_vec();
        bad[0] = b'X';
        assert!(IvfReader::parse(&bad).is_err());
        let mut vp9 = HD.to_vec();
        vp9[8..12].copy_from_slice(b"VP90");
        assert!(IvfReader::parse(&vp9).is_err());
    }

    #[test]
    fn truncated_ogg_is_an_error() {
        for len in [0, 20, 60, OPUS.len() / 2] {
            assert!(read_ogg_opus(&OPUS[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn keyframe_size_rejects_non_keyframes() {
        assert_eq!(vp8_keyframe_size(&[]), None);
        assert_eq!(
            vp8_keyframe_size(&[0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x40]),
            None
        );
        assert_eq!(
            vp8_keyframe_size(&[0x01, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]),
            None
        );
        assert_eq!(
            vp8_keyframe_size(&[0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0xc1, 0xb4, 0x00]),
            Some((320, 180))
        );
    }
}
