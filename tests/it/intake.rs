//! Integration tests for the intake stage.
