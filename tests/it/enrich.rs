//! Integration tests for the enrich stage.
