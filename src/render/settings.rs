//! `[templates]` settings: the raw TOML keys ([`RawTemplates`]) -> the template folder and
//! [`RenderSettings`] (time zone, default culture), every problem reported with its line
//! through the configuration's problem list. Pure: the folder is read by the template loader.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::RenderSettings;
use crate::settings::Problems;

/// `[templates]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplates {
    pub dir: Option<PathBuf>,
    pub default_locale: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    /// A voice mail preview at or under this confidence gets the "confidence is low" notice.
    pub transcript_low_confidence: Option<Spanned<f64>>,
}

impl RawTemplates {
    /// Checks the culture and the time zone (default: `en-US` and the system's zone).
    pub(crate) fn validate(&self, p: &mut Problems<'_>) -> RenderSettings {
        let default_locale = match &self.default_locale {
            Some(l) if super::locale::is_valid_culture(l.get_ref()) => l.get_ref().clone(),
            Some(l) => {
                p.at(l, format!("templates.default_locale: `{}` is not a culture name like `en-US`", l.get_ref()));
                "en-US".to_owned()
            }
            None => "en-US".to_owned(),
        };
        let timezone = match &self.timezone {
            Some(tz) => jiff::tz::TimeZone::get(tz.get_ref()).unwrap_or_else(|_| {
                p.at(tz, format!("templates.timezone: unknown IANA time zone `{}`", tz.get_ref()));
                jiff::tz::TimeZone::UTC
            }),
            None => jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        };
        RenderSettings { timezone, default_locale }
    }

    /// `transcript_low_confidence`: a number from 0 to 1 (default: Exchange's 0.30).
    pub(crate) fn transcript_low_confidence(&self, p: &mut Problems<'_>) -> f64 {
        match &self.transcript_low_confidence {
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                p.at(v, format!("templates.transcript_low_confidence: `{}` is not a number from 0 to 1", v.get_ref()));
                crate::event::LOW_CONFIDENCE
            }
            None => crate::event::LOW_CONFIDENCE,
        }
    }
}
