//! `[dialplan]` settings: the raw TOML keys ([`RawDialPlan`]) -> [`DialPlan`], every problem
//! reported with its line through the configuration's problem list; the US plan stands in
//! for a bad one.

use serde::Deserialize;
use toml::Spanned;

use super::DialPlan;
use crate::settings::Problems;

/// `[dialplan]`, as written: how bare numbers are read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDialPlan {
    /// ISO 3166 region for numbers without a country code (default `US`).
    pub region: Option<Spanned<String>>,
    /// Digits dialled to reach an outside line (`9`); stripped from caller ids.
    pub outside_line_code: Option<Spanned<String>>,
    /// Length of internal extensions (default 4).
    pub extension_digits: Option<Spanned<u32>>,
    /// Shortest trailing-digit match allowed (default 7).
    pub min_suffix_digits: Option<Spanned<u32>>,
}

impl RawDialPlan {
    /// Checks every key; problems go to `p`.
    pub(crate) fn validate(&self, p: &mut Problems<'_>) -> DialPlan {
        let region = self.region.as_ref().map(|r| r.get_ref().as_str()).unwrap_or("US");
        let outside = self.outside_line_code.as_ref().map(|o| o.get_ref().as_str());
        if let Some(o) = &self.outside_line_code
            && !o.get_ref().chars().all(|c| c.is_ascii_digit())
        {
            p.at(o, format!("dialplan.outside_line_code: `{}` must be digits", o.get_ref()));
        }
        let ext = self.extension_digits.as_ref().map(|e| *e.get_ref()).unwrap_or(4);
        if let Some(e) = &self.extension_digits
            && !(1..=10).contains(e.get_ref())
        {
            p.at(e, "dialplan.extension_digits: must be between 1 and 10");
        }
        let suffix = self.min_suffix_digits.as_ref().map(|s| *s.get_ref()).unwrap_or(7);
        if let Some(s) = &self.min_suffix_digits
            && !(4..=15).contains(s.get_ref())
        {
            p.at(s, "dialplan.min_suffix_digits: must be between 4 and 15");
        }
        match DialPlan::new(region, outside, ext as usize, suffix as usize) {
            Ok(plan) => plan,
            Err(message) => {
                match &self.region {
                    Some(r) => p.at(r, format!("dialplan.region: {message}")),
                    None => p.general(format!("dialplan: {message}")),
                }
                DialPlan::new("US", None, 4, 7).expect("the US default dial plan is valid")
            }
        }
    }
}
