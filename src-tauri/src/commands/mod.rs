//! Tauri commands, one module per domain. Each is a one-line adapter onto the engine; errors
//! cross as `ApiError { code, message }` after the engine logged their full chain.

pub mod dispatch;
pub mod feeds;
pub mod incidents;
pub mod replay;
pub mod scenario;
pub mod training;
pub mod wall;
