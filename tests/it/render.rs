//! Integration tests for the render stage.
