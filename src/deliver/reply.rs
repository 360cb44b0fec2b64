//! What an SMTP server answered: [`Reply`] (a code and its text) and [`RecipientReply`] (the
//! answer to one `RCPT TO`). Both a successful [`Receipt`](super::Receipt) and a
//! [`DeliveryError`](super::DeliveryError) carry them, so they live apart from either.

use std::error::Error as _;
use std::fmt;

use lettre::Address;

/// An SMTP reply: the code and the text lines joined with spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub(crate) fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// 4xx: the server may accept later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    /// 5xx: the server will not accept this.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    pub(crate) fn from_response(response: &lettre::transport::smtp::response::Response) -> Reply {
        Reply { code: response.code().to_string().parse().unwrap_or(0), text: response.message().collect::<Vec<_>>().join(" ") }
    }

    /// The reply inside a lettre error for a negative reply (4xx/5xx), if it is one.
    pub(crate) fn from_error(err: &lettre::transport::smtp::Error) -> Option<Reply> {
        let code = err.status()?;
        Some(Reply { code: code.to_string().parse().unwrap_or(0), text: err.source().map(|s| s.to_string()).unwrap_or_default() })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() { write!(f, "{}", self.code) } else { write!(f, "{} {}", self.code, self.text) }
    }
}

/// The server's reply to one `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReply {
    pub address: Address,
    pub reply: Reply,
}

impl RecipientReply {
    pub(crate) fn is_accepted(&self) -> bool {
        self.reply.is_positive()
    }
    pub fn is_transient(&self) -> bool {
        self.reply.is_transient()
    }
    pub fn is_permanent(&self) -> bool {
        self.reply.is_permanent()
    }
}
