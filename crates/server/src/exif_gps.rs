//! A call's location written into a screenshot's EXIF GPS tags (docs/calls.md,
//! "Screenshots"): the tags made by the `kamadak-exif` crate's writer, put into the JPEG as
//! its APP1 segment (after a JFIF APP0, replacing any EXIF segment it had).

use std::io::Cursor;

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use orbita_protocol::Position;

/// `value`'s degrees, minutes and seconds (to 1/10000 s, about 3 mm).
fn dms(value: f64) -> Vec<Rational> {
    let value = value.abs();
    let degrees = value.floor();
    let minutes = ((value - degrees) * 60.0).floor();
    let seconds = ((value - degrees) * 60.0 - minutes) * 60.0;
    vec![
        Rational::from((degrees as u32, 1)),
        Rational::from((minutes as u32, 1)),
        Rational::from(((seconds * 10_000.0).round() as u32, 10_000)),
    ]
}

/// The EXIF block (TIFF structure) with the GPS tags of `position`, taken at `at` (UTC).
fn gps_block(position: &Position, at: chrono::DateTime<chrono::Utc>) -> Result<Vec<u8>, String> {
    use chrono::Timelike;
    let ascii = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
    let field = |tag, value| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    };
    let fields = [
        field(Tag::GPSVersionID, Value::Byte(vec![2, 3, 0, 0])),
        field(
            Tag::GPSLatitudeRef,
            ascii(if position.lat < 0.0 { "S" } else { "N" }),
        ),
        field(Tag::GPSLatitude, Value::Rational(dms(position.lat))),
        field(
            Tag::GPSLongitudeRef,
            ascii(if position.lon < 0.0 { "W" } else { "E" }),
        ),
        field(Tag::GPSLongitude, Value::Rational(dms(position.lon))),
        field(
            Tag::GPSHPositioningError,
            Value::Rational(vec![Rational::from((
                (position.accuracy_m * 100.0).round() as u32,
                100,
            ))]),
        ),
        field(
            Tag::GPSTimeStamp,
            Value::Rational(vec![
                Rational::from((at.hour(), 1)),
                Rational::from((at.minute(), 1)),
                Rational::from((at.second(), 1)),
            ]),
        ),
        field(Tag::GPSDateStamp, ascii(&at.format("%Y:%m:%d").to_string())),
    ];
    let mut writer = Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    writer
        .write(&mut out, false)
        .map_err(|e| format!("the EXIF block could not be made: {e}"))?;
    Ok(out.into_inner())
}

/// `jpeg` with `position` in its EXIF GPS tags (any EXIF it had replaced).
pub fn with_gps(
    jpeg: &[u8],
    position: &Position,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<u8>, String> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return Err("not a JPEG".into());
    }
    let block = gps_block(position, at)?;
    let length = 2 + 6 + block.len();
    let length = u16::try_from(length).map_err(|_| "the EXIF block is too large".to_string())?;
    let mut app1 = vec![0xff, 0xe1];
    app1.extend_from_slice(&length.to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&block);

    let mut out = Vec::with_capacity(jpeg.len() + app1.len());
    out.extend_from_slice(&jpeg[..2]);
    let mut at_byte = 2;
    let mut placed = false;
    // The segments before the picture's data: APPn and comments (each marker, length).
    while at_byte + 4 <= jpeg.len() && jpeg[at_byte] == 0xff {
        let marker = jpeg[at_byte + 1];
        if !(0xe0..=0xef).contains(&marker) && marker != 0xfe {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[at_byte + 2], jpeg[at_byte + 3]]));
        let end = at_byte + 2 + len;
        if len < 2 || end > jpeg.len() {
            return Err("a damaged JPEG segment".into());
        }
        let segment = &jpeg[at_byte..end];
        let is_exif = marker == 0xe1 && segment.get(4..10) == Some(b"Exif\0\0");
        if marker != 0xe0 && !placed {
            out.extend_from_slice(&app1);
            placed = true;
        }
        if !is_exif {
            out.extend_from_slice(segment);
        }
        at_byte = end;
    }
    if !placed {
        out.extend_from_slice(&app1);
    }
    out.extend_from_slice(&jpeg[at_byte..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest JPEG-shaped bytes: SOI, a JFIF APP0, an old EXIF APP1, then "the picture".
    fn jpeg() -> Vec<u8> {
        let mut j = vec![0xff, 0xd8];
        j.extend_from_slice(&[0xff, 0xe0, 0x00, 0x10]);
        j.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        j.extend_from_slice(&[0xff, 0xe1, 0x00, 0x0a]);
        j.extend_from_slice(b"Exif\0\0ab");
        j.extend_from_slice(&[0xff, 0xdb, 0x00, 0x04, 0x01, 0x02, 0xff, 0xd9]);
        j
    }

    fn degrees(field: &Field) -> f64 {
        match &field.value {
            Value::Rational(v) => v[0].to_f64() + v[1].to_f64() / 60.0 + v[2].to_f64() / 3600.0,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reader_finds_the_position_and_the_picture_is_kept() {
        let position = Position {
            lat: -33.856_784,
            lon: 151.215_297,
            accuracy_m: 12.5,
        };
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:20:30Z")
            .unwrap()
            .to_utc();
        let out = with_gps(&jpeg(), &position, at).unwrap();
        // The JFIF segment first, then the new EXIF; the old EXIF gone; the rest as it was.
        assert_eq!(&out[2..6], &[0xff, 0xe0, 0x00, 0x10]);
        assert_eq!(&out[20..22], &[0xff, 0xe1]);
        assert!(!out.windows(8).any(|w| w == b"Exif\0\0ab"));
        assert!(out.ends_with(&[0xff, 0xdb, 0x00, 0x04, 0x01, 0x02, 0xff, 0xd9]));

        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&out))
            .unwrap();
        let get = |tag| exif.get_field(tag, In::PRIMARY).unwrap();
        assert_eq!(get(Tag::GPSLatitudeRef).display_value().to_string(), "S");
        assert_eq!(get(Tag::GPSLongitudeRef).display_value().to_string(), "E");
        assert!((degrees(get(Tag::GPSLatitude)) - 33.856_784).abs() < 1e-6);
        assert!((degrees(get(Tag::GPSLongitude)) - 151.215_297).abs() < 1e-6);
        assert_eq!(
            get(Tag::GPSDateStamp).display_value().to_string(),
            "2026-12-07"
        );
    }

    #[test]
    fn what_is_not_a_jpeg_is_refused() {
        let p = Position {
            lat: 1.0,
            lon: 2.0,
            accuracy_m: 3.0,
        };
        assert!(with_gps(b"\x89PNG", &p, chrono::Utc::now()).is_err());
        assert!(with_gps(
            &[0xff, 0xd8, 0xff, 0xe0, 0xff, 0xff],
            &p,
            chrono::Utc::now()
        )
        .is_err());
    }
}
