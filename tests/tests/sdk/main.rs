//! The SDK's chain interface: the program driven only through the SDK on an
//! embedded bank, and the RPC chain against a canned JSON-RPC server.

mod chain;
mod rpc;
