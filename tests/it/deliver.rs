//! Integration tests for the deliver stage.
