//! EBML (RFC 8794) encoding: element IDs, variable-size integers and the element kinds the
//! WebM muxer writes. Everything appends to a `Vec<u8>`; masters are built from their encoded
//! children, so every size written is exact and minimal (except the Segment's, which is
//! "unknown" so a file cut anywhere after a cluster is still valid).

/// The reserved all-ones 8-byte size: "unknown size" (a Segment written as it is made).
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Largest value a size field can hold (2^56 - 2: the all-ones 8-byte value means unknown).
pub const MAX_SIZE: u64 = (1 << 56) - 2;

/// Appends an element ID. IDs carry their own length marker (e.g. `0x1A45DFA3` is four bytes,
/// `0xA3` one), so this writes the value's significant bytes.
pub fn write_id(buf: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8).min(3) as usize;
    buf.extend_from_slice(&bytes[skip..]);
}

/// How many bytes the shortest size field for `size` takes: n bytes hold up to 2^(7n) - 2
/// (all ones is reserved).
pub fn size_len(size: u64) -> usize {
    (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap_or(8)
}

/// Appends an element data size as the shortest variable-size integer.
///
/// # Panics
/// If `size` exceeds [`MAX_SIZE`] (no element here comes near: clusters are capped in MiB).
pub fn write_size(buf: &mut Vec<u8>, size: u64) {
    assert!(size <= MAX_SIZE, "EBML size {size} too large");
    let n = size_len(size);
    let marked = size | (1u64 << (7 * n));
    buf.extend_from_slice(&marked.to_be_bytes()[8 - n..]);
}

/// Appends an element with binary data.
pub fn write_bytes(buf: &mut Vec<u8>, id: u32, data: &[u8]) {
    write_id(buf, id);
    write_size(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Appends an unsigned integer element in its fewest bytes (at least one).
pub fn write_uint(buf: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = ((value.leading_zeros() / 8) as usize).min(7);
    write_bytes(buf, id, &bytes[skip..]);
}

/// Appends an 8-byte float element.
pub fn write_float(buf: &mut Vec<u8>, id: u32, value: f64) {
    write_bytes(buf, id, &value.to_be_bytes());
}

/// Appends a string element (ASCII or UTF-8; no terminator).
pub fn write_str(buf: &mut Vec<u8>, id: u32, value: &str) {
    write_bytes(buf, id, value.as_bytes());
}

/// Appends a master element whose children `fill` writes.
pub fn write_master(buf: &mut Vec<u8>, id: u32, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut children = Vec::new();
    fill(&mut children);
    write_bytes(buf, id, &children);
}

/// Appends a Void element (ID `0xEC`) of exactly `total` bytes, header included: room kept
/// for an element written later in place. `total` must be at least 2 and at most 128 (a
/// one-byte size).
pub fn write_void(buf: &mut Vec<u8>, total: usize) {
    assert!((2..=128).contains(&total), "void of {total} bytes");
    write_id(buf, VOID);
    write_size(buf, (total - 2) as u64);
    buf.resize(buf.len() + total - 2, 0);
}

/// The Void element's ID.
pub const VOID: u32 = 0xEC;

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut buf = Vec::new();
        f(&mut buf);
        buf
    }

    #[test]
    fn ids_keep_their_length_marker() {
        assert_eq!(encoded(|b| write_id(b, 0xA3)), [0xA3]);
        assert_eq!(encoded(|b| write_id(b, 0x4286)), [0x42, 0x86]);
        assert_eq!(encoded(|b| write_id(b, 0x2AD7B1)), [0x2A, 0xD7, 0xB1]);
        assert_eq!(
            encoded(|b| write_id(b, 0x1A45DFA3)),
            [0x1A, 0x45, 0xDF, 0xA3]
        );
    }

    #[test]
    fn sizes_are_shortest_and_skip_the_reserved_all_ones() {
        assert_eq!(encoded(|b| write_size(b, 0)), [0x80]);
        assert_eq!(encoded(|b| write_size(b, 126)), [0xFE]);
        // 127 in one byte would be 0xFF: "unknown". It takes two.
        assert_eq!(encoded(|b| write_size(b, 127)), [0x40, 0x7F]);
        assert_eq!(encoded(|b| write_size(b, 16_382)), [0x7F, 0xFE]);
        assert_eq!(encoded(|b| write_size(b, 16_383)), [0x20, 0x3F, 0xFF]);
        assert_eq!(size_len(8 << 20), 4);
        assert_eq!(encoded(|b| write_size(b, MAX_SIZE)).len(), 8);
        for n in 1..=8 {
            let top = (1u64 << (7 * n)) - 2;
            assert_eq!(size_len(top), n, "{top}");
            if n < 8 {
                assert_eq!(size_len(top + 1), n + 1, "{}", top + 1);
            }
        }
    }

    #[test]
    fn elements_encode_their_exact_size() {
        assert_eq!(encoded(|b| write_uint(b, 0xD7, 1)), [0xD7, 0x81, 0x01]);
        assert_eq!(encoded(|b| write_uint(b, 0xE7, 0)), [0xE7, 0x81, 0x00]);
        assert_eq!(
            encoded(|b| write_uint(b, 0x2AD7B1, 1_000_000)),
            [0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40]
        );
        assert_eq!(encoded(|b| write_uint(b, 0xE7, u64::MAX)).len(), 1 + 1 + 8);
        assert_eq!(
            encoded(|b| write_str(b, 0x4282, "webm")),
            b"\x42\x82\x84webm"
        );
        let float = encoded(|b| write_float(b, 0xB5, 48_000.0));
        assert_eq!(float[..2], [0xB5, 0x88]);
        assert_eq!(f64::from_be_bytes(float[2..].try_into().unwrap()), 48_000.0);
        let master = encoded(|b| write_master(b, 0xE1, |c| write_uint(c, 0x9F, 2)));
        assert_eq!(master, [0xE1, 0x83, 0x9F, 0x81, 0x02]);
        // A 200-byte payload needs a two-byte size.
        let big = encoded(|b| write_bytes(b, 0x63A2, &[7; 200]));
        assert_eq!(big.len(), 2 + 2 + 200);
        assert_eq!(big[2..4], [0x40, 200]);
    }

    #[test]
    fn void_fills_exactly_the_room_asked() {
        for total in [2, 11, 128] {
            let void = encoded(|b| write_void(b, total));
            assert_eq!(void.len(), total);
            assert_eq!(u32::from(void[0]), VOID);
            assert_eq!(void[1], 0x80 | (total as u8 - 2));
        }
    }
}
