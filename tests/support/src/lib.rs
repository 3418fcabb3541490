//! testbed (being written).
