//! Delivery: a composed message -> a receipt, through SMTP, an `.eml` folder or a pickup folder.
//!
//! OWNER: delivery helper.
