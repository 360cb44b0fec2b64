//! objectGUID in its two export forms -> one `u128` key, and back to text.
//!
//! `ldifde` writes `objectGUID:: <base64>` of the 16 raw bytes in .NET `Guid.ToByteArray()`
//! order (the first three groups little-endian); `Export-Csv` and Exchange headers write the
//! string form `5e7bf87a-c77b-4f0f-820f-5f25609c7f58`. Never panics; unreadable values are
//! `None`.

/// The 16 raw bytes as AD stores them (.NET byte order).
pub(super) fn from_bytes(bytes: &[u8]) -> Option<u128> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    let text_order = [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]];
    Some(u128::from_be_bytes(text_order))
}

/// `5e7bf87a-c77b-4f0f-820f-5f25609c7f58`, with or without braces, any case.
pub(super) fn from_text(text: &str) -> Option<u128> {
    let t = text.trim();
    let t = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(t);
    let groups: Vec<&str> = t.split('-').collect();
    let lengths_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
    if !lengths_ok || !groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())) {
        return None;
    }
    u128::from_str_radix(&groups.concat(), 16).ok()
}

/// The lower-case string form.
pub(super) fn to_text(guid: u128) -> String {
    let h = format!("{guid:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_byte_order_and_text_agree() {
        // Guid("5e7bf87a-c77b-4f0f-820f-5f25609c7f58").ToByteArray()
        let bytes = [0x7a, 0xf8, 0x7b, 0x5e, 0x7b, 0xc7, 0x0f, 0x4f, 0x82, 0x0f, 0x5f, 0x25, 0x60, 0x9c, 0x7f, 0x58];
        let text = "5e7bf87a-c77b-4f0f-820f-5f25609c7f58";
        assert_eq!(from_bytes(&bytes), from_text(text));
        assert_eq!(from_text("{5E7BF87A-C77B-4F0F-820F-5F25609C7F58}"), from_text(text));
        assert_eq!(to_text(from_bytes(&bytes).unwrap()), text);
    }

    #[test]
    fn malformed_guids_are_none() {
        assert_eq!(from_bytes(&[1, 2, 3]), None);
        assert_eq!(from_text("5e7bf87a-c77b-4f0f-820f"), None);
        assert_eq!(from_text("5e7bf87ac77b4f0f820f5f25609c7f58"), None);
        assert_eq!(from_text("ze7bf87a-c77b-4f0f-820f-5f25609c7f58"), None);
    }
}
