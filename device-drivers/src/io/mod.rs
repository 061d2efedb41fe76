//! Lane I/O over embedded-hal pins: the scan cycle and its backends.

pub mod modbus;
