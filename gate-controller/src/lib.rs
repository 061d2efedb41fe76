//! echannel gate controller: the sans-IO state machine (`machine`), decisions,
//! journal, configuration and the tokio shell that drives them.

pub mod machine;
pub mod watchlist;
