//! The browser edge: performs what the core decides. Everything here binds *global* objects
//! (`fetch`, `setTimeout`, `chrome`, `navigator`, `crypto`) and never `window`, so it runs the
//! same in an MV3 service worker, an extension page and a test page.

pub mod answer;
pub mod hooks;
pub mod js;
pub mod options;
pub mod props;
pub mod runtime;
pub mod schedule;
pub mod shell;
pub mod storage;
pub mod transport;
