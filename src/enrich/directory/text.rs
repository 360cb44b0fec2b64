//! Bytes of a directory export -> text: UTF-8 with or without BOM, or UTF-16 (LE/BE) with a
//! BOM (`ldifde -u`, `Export-Csv -Encoding Unicode`). Never guesses an encoding without a BOM.
//! Error: [`SyntaxError::NotText`] with the line of the first undecodable byte.

use super::SyntaxError;

/// Decodes an export; the error carries the 1-based line of the first bad byte.
pub(super) fn decode(bytes: &[u8]) -> Result<String, (usize, SyntaxError)> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        let mut out = String::with_capacity(rest.len() / 2);
        let bad = |out: &str| (1 + out.matches('\n').count(), SyntaxError::NotText);
        for c in char::decode_utf16(rest.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]))) {
            let c = c.map_err(|_| bad(&out))?;
            out.push(c);
        }
        if rest.len() % 2 == 1 {
            return Err(bad(&out));
        }
        Ok(out)
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => utf8(bytes),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, (usize, SyntaxError)> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        (1 + bytes[..good].iter().filter(|&&b| b == b'\n').count(), SyntaxError::NotText)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boms_and_encodings() {
        assert_eq!(decode(b"\xEF\xBB\xBFdn: x").unwrap(), "dn: x");
        assert_eq!(decode(b"\xFF\xFEd\0n\0:\0 \0\xE9\0").unwrap(), "dn: \u{e9}");
        assert_eq!(decode(b"\xFE\xFF\0d\0n").unwrap(), "dn");
        assert_eq!(decode(b"plain").unwrap(), "plain");
    }

    #[test]
    fn undecodable_bytes_name_their_line() {
        assert_eq!(decode(b"a\nb\n\xFFc"), Err((3, SyntaxError::NotText)));
        assert_eq!(decode(b"\xFF\xFEa\0\n\0\x00\xD8"), Err((2, SyntaxError::NotText)));
        assert_eq!(decode(b"\xFF\xFEa\0b"), Err((1, SyntaxError::NotText)));
    }
}
