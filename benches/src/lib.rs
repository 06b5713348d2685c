//! ChatiCO benchmarks: the load tool (`chatico-load`, module [`load`]), the raw WebSocket
//! broadcast bound it is compared with (`chatico-raw-server`, module [`raw`]), the server it
//! drives (`chatico-bench-server`, module [`server`]), and criterion micro-benchmarks
//! (`benches/`). BENCHMARKS.md at the repository root has the figures and the commands.

pub mod load;
pub mod raw;
pub mod server;
