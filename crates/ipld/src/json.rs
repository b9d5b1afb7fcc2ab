//! JSON form (being written).
