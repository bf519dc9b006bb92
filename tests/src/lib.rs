//! End-to-end test harness (filled in below).
