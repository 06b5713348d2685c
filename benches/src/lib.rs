//! Benchmarks and the load tool. Filled by the benchmarks issue.
