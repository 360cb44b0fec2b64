//! CSV export (`Get-ADUser … | Export-Csv`) -> [`Entry`] values.
//!
//! Reads RFC 4180 records (quoted fields with `""` escapes and line breaks), UTF-8 with or
//! without BOM or UTF-16 with BOM, CRLF or LF, an optional PowerShell 5 `#TYPE …` first line,
//! and a header row of LDAP attribute names (the common `Get-ADUser` property names such as
//! `EmailAddress` or `OfficePhone` are accepted for their LDAP attribute). The values of a
//! multi-valued attribute are joined with `|` in one cell. A `dn` / `DistinguishedName`
//! column names the entry. Errors carry the 1-based line; never panics.

use super::{Entry, SyntaxError, text};

/// `Get-ADUser` property names -> LDAP attribute names (others are taken as written).
const ALIASES: [(&str, &str); 7] = [
    ("emailaddress", "mail"),
    ("officephone", "telephoneNumber"),
    ("mobilephone", "mobile"),
    ("fax", "facsimileTelephoneNumber"),
    ("surname", "sn"),
    ("office", "physicalDeliveryOfficeName"),
    ("distinguishedname", "dn"),
];

/// One record and the line it starts on.
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Parses a CSV export.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<Entry>, (usize, SyntaxError)> {
    let text = text::decode(bytes)?.replace("\r\n", "\n");
    let (body, first_line) = match text.strip_prefix("#TYPE") {
        Some(rest) => (rest.split_once('\n').map_or("", |(_, body)| body), 2),
        None => (text.as_str(), 1),
    };
    let header_line = body.lines().next().unwrap_or_default();
    let delimiter = [',', ';', '\t'].into_iter().find(|d| header_line.contains(*d)).unwrap_or(',');
    let mut records = split_records(body, delimiter, first_line)?.into_iter().filter(|r| r.fields != [""]);
    let header = records.next().ok_or((first_line, SyntaxError::MissingHeader))?;
    let columns = columns(&header)?;
    let dn_column = columns.iter().position(|c| c == "dn");

    let mut entries = Vec::new();
    for record in records {
        if record.fields.len() != columns.len() {
            return Err((record.line, SyntaxError::FieldCount { expected: columns.len(), found: record.fields.len() }));
        }
        let dn = dn_column.map(|i| record.fields[i].trim()).filter(|dn| !dn.is_empty());
        let mut entry = Entry::new(dn.map_or_else(|| format!("line {}", record.line), str::to_owned));
        for (i, (name, cell)) in columns.iter().zip(&record.fields).enumerate() {
            if Some(i) == dn_column {
                continue;
            }
            if cell.starts_with("Microsoft.") && cell.ends_with("Collection") {
                return Err((record.line, SyntaxError::CollectionTypeName(name.clone())));
            }
            for value in cell.split('|').map(str::trim).filter(|v| !v.is_empty()) {
                entry.push_text(name.as_str(), value);
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Header names, aliases resolved; empty and repeated names are errors.
fn columns(header: &Record) -> Result<Vec<String>, (usize, SyntaxError)> {
    let mut names: Vec<String> = Vec::with_capacity(header.fields.len());
    for (i, raw) in header.fields.iter().enumerate() {
        let name = raw.trim();
        if name.is_empty() {
            return Err((header.line, SyntaxError::EmptyColumnName(i + 1)));
        }
        let lower = name.to_ascii_lowercase();
        let name = match ALIASES.iter().find(|(alias, _)| *alias == lower) {
            Some((_, ldap)) => ldap,
            None if lower == "dn" => "dn",
            None => name,
        };
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err((header.line, SyntaxError::DuplicateColumn(raw.trim().to_owned())));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// RFC 4180 records (`\n` line ends; quoted fields may hold the delimiter, `""` and `\n`).
fn split_records(text: &str, delimiter: char, first_line: usize) -> Result<Vec<Record>, (usize, SyntaxError)> {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        AfterQuote,
    }
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut state = State::FieldStart;
    let mut line = first_line;
    let mut record_line = first_line;
    let mut quote_line = first_line;
    for c in text.chars() {
        match (&state, c) {
            (State::Quoted, '"') => state = State::AfterQuote,
            (State::Quoted, c) => field.push(c),
            (State::FieldStart, '"') => {
                state = State::Quoted;
                quote_line = line;
            }
            (State::AfterQuote, '"') => {
                field.push('"');
                state = State::Quoted;
            }
            (_, c) if c == delimiter => {
                fields.push(std::mem::take(&mut field));
                state = State::FieldStart;
            }
            (_, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push(Record { line: record_line, fields: std::mem::take(&mut fields) });
                state = State::FieldStart;
                record_line = line + 1;
            }
            (State::AfterQuote, c) => return Err((line, SyntaxError::AfterQuote(c))),
            (_, c) => {
                field.push(c);
                state = State::Unquoted;
            }
        }
        if c == '\n' {
            line += 1;
        }
    }
    match state {
        State::Quoted => return Err((quote_line, SyntaxError::UnclosedQuote)),
        State::FieldStart if fields.is_empty() => {}
        _ => {
            fields.push(field);
            records.push(Record { line: record_line, fields });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_csv_with_bom_type_line_quotes_and_multi_values() {
        let csv = "\u{feff}#TYPE Selected.Microsoft.ActiveDirectory.Management.ADUser\r\n\
                   \"DistinguishedName\",\"displayName\",\"EmailAddress\",\"proxyAddresses\",\"description\"\r\n\
                   \"CN=Liam,OU=People\",\"Liam O'Connor\",\"liam.oconnor@contoso.com\",\"SMTP:liam@contoso.com|SIP:liam@contoso.com\",\"Lead, \"\"Tier 2\"\"\r\nnights\"\r\n\
                   \"CN=Empty\",\"\",\"\",\"\",\"\"\r\n";
        let entries = parse(csv.as_bytes()).expect("valid CSV");
        assert_eq!(entries.len(), 2);
        let liam = &entries[0];
        assert_eq!(liam.dn, "CN=Liam,OU=People");
        assert_eq!(liam.texts("mail"), ["liam.oconnor@contoso.com"]);
        assert_eq!(liam.texts("proxyAddresses"), ["SMTP:liam@contoso.com", "SIP:liam@contoso.com"]);
        assert_eq!(liam.texts("description"), ["Lead, \"Tier 2\"\nnights"]);
        assert!(entries[1].attributes.is_empty());
    }

    #[test]
    fn unquoted_semicolon_delimited_without_dn_column() {
        let entries = parse(b"mail;mobile\nolivia@contoso.com;+1 425 555 0100\n\n").expect("valid CSV");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].dn, "line 2");
        assert_eq!(entries[0].texts("mobile"), ["+1 425 555 0100"]);
    }

    #[test]
    fn errors_name_the_line() {
        let err = |csv: &str| parse(csv.as_bytes()).expect_err("invalid CSV");
        assert_eq!(err(""), (1, SyntaxError::MissingHeader));
        assert_eq!(err("mail,mobile\na@b\n"), (2, SyntaxError::FieldCount { expected: 2, found: 1 }));
        assert_eq!(err("mail,\"mobile\n"), (1, SyntaxError::UnclosedQuote));
        assert_eq!(err("mail,mobile\n\"a\"x,1\n"), (2, SyntaxError::AfterQuote('x')));
        assert_eq!(err("mail,,mobile\n"), (1, SyntaxError::EmptyColumnName(2)));
        assert_eq!(err("mail,EmailAddress\n"), (1, SyntaxError::DuplicateColumn("EmailAddress".into())));
        assert_eq!(
            err("#TYPE x\nmail,proxyAddresses\na@b,Microsoft.ActiveDirectory.Management.ADPropertyValueCollection\n"),
            (3, SyntaxError::CollectionTypeName("proxyAddresses".into()))
        );
        assert_eq!(err("mail\n\"a\nb\nc\",\n"), (2, SyntaxError::FieldCount { expected: 1, found: 2 }));
    }
}
