//! AT Protocol identifier syntax (placeholder, being written).
