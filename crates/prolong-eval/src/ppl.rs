//! Placeholder (replace whole).
