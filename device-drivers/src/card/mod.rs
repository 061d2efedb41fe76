//! Identity-document reading: ICAO 9303 data structures and passive authentication.
pub mod lds;
pub mod mrz;
pub mod pa;
pub mod tlv;
