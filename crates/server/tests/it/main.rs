//! The control plane's tests, one test binary.

mod protocol_doc;
mod signalling;
