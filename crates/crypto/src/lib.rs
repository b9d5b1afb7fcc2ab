//! AT Protocol keys (placeholder, being written).
