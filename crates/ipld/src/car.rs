//! CAR v1 (being written).
