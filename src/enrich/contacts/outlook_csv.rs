//! Outlook's "Export to a file" CSV (column names as Outlook writes them: `First Name`,
//! `Company`, `Job Title`, `Business Phone`, `Mobile Phone`, `E-mail Address`, …) -> one
//! directory [`Entry`] per contact, under the attribute names the directory index knows.
//!
//! The CSV itself (quotes, line breaks in fields, UTF-8/UTF-16 with BOM) is read by the
//! directory's CSV reader; this file only renames Outlook's columns and builds `displayName`
//! from the name columns (Outlook exports none). Columns it does not know (addresses,
//! notes, birthdays) are dropped. Errors carry the 1-based line.

use super::vcard::MAX_CONTACTS;
use crate::enrich::directory::{self, Entry, SyntaxError, Value};

/// Outlook column (lower-case) -> directory attribute.
const COLUMNS: [(&str, &str); 26] = [
    ("first name", "givenName"),
    ("last name", "sn"),
    ("company", "company"),
    ("department", "department"),
    ("job title", "title"),
    ("e-mail address", "mail"),
    ("business phone", "telephoneNumber"),
    ("business phone 2", "otherTelephone"),
    ("company main phone", "otherTelephone"),
    ("assistant's phone", "otherTelephone"),
    ("primary phone", "otherTelephone"),
    ("callback", "otherTelephone"),
    ("other phone", "otherTelephone"),
    ("isdn", "otherTelephone"),
    ("radio phone", "otherTelephone"),
    ("tty/tdd phone", "otherTelephone"),
    ("telex", "otherTelephone"),
    ("mobile phone", "mobile"),
    ("car phone", "otherMobile"),
    ("home phone", "homePhone"),
    ("home phone 2", "otherHomePhone"),
    ("business fax", "facsimileTelephoneNumber"),
    ("home fax", "otherFacsimileTelephoneNumber"),
    ("other fax", "otherFacsimileTelephoneNumber"),
    ("pager", "pager"),
    ("middle name", "middleName"),
];

/// Parses an Outlook contacts CSV export.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, (usize, OutlookCsvError)> {
    let rows = directory::parse_csv(bytes).map_err(|(line, problem)| (line, OutlookCsvError::Csv(problem)))?;
    if rows.len() > MAX_CONTACTS {
        return Err((MAX_CONTACTS + 2, OutlookCsvError::TooManyContacts));
    }
    Ok(rows.into_iter().map(contact).collect())
}

/// What is wrong with an Outlook CSV export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutlookCsvError {
    #[error(transparent)]
    Csv(SyntaxError),
    #[error("more than {MAX_CONTACTS} contacts")]
    TooManyContacts,
}

/// One row with Outlook's columns renamed and a display name made of its name parts.
fn contact(row: Entry) -> Entry {
    let mut entry = Entry::new(row.dn);
    for (column, value) in row.attributes {
        let lower = column.to_ascii_lowercase();
        if let Some((_, attribute)) = COLUMNS.iter().find(|(name, _)| *name == lower) {
            entry.attributes.push(((*attribute).to_owned(), value));
        }
    }
    let part = |name: &str| entry.attributes.iter().find(|(n, _)| n == name).and_then(|(_, v)| text(v));
    let names: Vec<&str> = ["givenName", "middleName", "sn"].into_iter().filter_map(part).collect();
    let display = if names.is_empty() { part("company").map(str::to_owned) } else { Some(names.join(" ")) };
    if let Some(display) = display {
        entry.push_text("displayName", display);
    }
    entry
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Text(text) => Some(text.as_str()),
        Value::Binary(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlook_columns_become_directory_attributes() {
        let csv = "\u{feff}\"Title\",\"First Name\",\"Middle Name\",\"Last Name\",\"Company\",\"Job Title\",\"Business Fax\",\"Mobile Phone\",\"E-mail Address\",\"Notes\"\r\n\
                   \"Ms.\",\"Marisol\",\"\",\"Vega\",\"Fabrikam, Inc.\",\"Buyer\",\"+1 206 555 0143\",\"+1 (206) 555-0142\",\"marisol@fabrikam.example\",\"met at\r\nthe fair\"\r\n\
                   \"\",\"\",\"\",\"\",\"Northwind\",\"\",\"\",\"\",\"\",\"\"\r\n";
        let entries = parse(csv.as_bytes()).expect("parses");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].texts("displayName"), ["Marisol Vega"]);
        assert_eq!(entries[0].texts("company"), ["Fabrikam, Inc."]);
        assert_eq!(entries[0].texts("title"), ["Buyer"]);
        assert_eq!(entries[0].texts("mobile"), ["+1 (206) 555-0142"]);
        assert_eq!(entries[0].texts("facsimileTelephoneNumber"), ["+1 206 555 0143"]);
        assert_eq!(entries[0].texts("mail"), ["marisol@fabrikam.example"]);
        assert!(entries[0].texts("Notes").is_empty() && entries[0].texts("Title").is_empty());
        assert_eq!(entries[1].texts("displayName"), ["Northwind"]);
    }

    #[test]
    fn broken_csv_names_the_line() {
        let csv = "\"First Name\",\"Mobile Phone\"\n\"a\",\"1\",\"extra\"\n";
        assert_eq!(parse(csv.as_bytes()).map(|_| ()), Err((2, OutlookCsvError::Csv(SyntaxError::FieldCount { expected: 2, found: 3 }))));
    }
}
