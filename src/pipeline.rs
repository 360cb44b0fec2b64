//! The pipeline: wires intake -> enrich -> render -> compose -> deliver. The one module that
//! knows every stage.
