//! Integration tests for the compose stage.
