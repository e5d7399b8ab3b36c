//! The commands, one module each: the module owns its clap arguments (a
//! `*Cmd` struct, or a subcommand enum for a group) and a `run` that returns
//! a report, which prints for people ([`Display`](std::fmt::Display)) and as
//! JSON ([`Serialize`](serde::Serialize)). [`Command::run`] is the only
//! dispatcher; the binary prints what it returns, once.
//!
//! Under each `run` is a plain function over the SDK's
//! [`Chain`](amp_sdk::chain::Chain) (`open`, `settle`, …), so the same code
//! runs against a JSON-RPC node and against the embedded bank, where the
//! tests call it directly.

pub mod channel;
pub mod close;
pub mod close_delegation;
pub mod delegate;
pub mod demo;
pub mod lane;
pub mod lanes;
pub mod localnet;
pub mod open;
pub mod pay;
pub mod proxy;
pub mod refund;
pub mod request_close;
pub mod revoke;
pub mod serve;
pub mod settle;
pub mod spend;
pub mod status;
pub mod top_up;
pub mod voucher;

use clap::Subcommand;

use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::Report;

pub use channel::{show, ChannelCommand, DelegationView, LaneKind, LaneView};
pub use close::{close, CloseCmd, CloseReport};
pub use close_delegation::{close_delegation, CloseDelegationCmd, CloseDelegationReport};
pub use delegate::{delegate, DelegateCmd, DelegateReport, DelegateRequest};
pub use demo::DemoCmd;
pub use lane::{random_nonce, MintInfo, StatusView};
pub use lanes::LanesCommand;
pub use localnet::LocalnetCmd;
pub use open::{open, OpenCmd, OpenReport, OpenRequest};
pub use pay::{pay, pay_agent, AgentPayRequest, PayCmd, PayOutput, PayReport, PayRequest};
pub use proxy::{ProxyCmd, ProxyReport};
pub use refund::{refund, RefundCmd, RefundReport};
pub use request_close::{request_close, RequestCloseCmd, RequestCloseReport};
pub use revoke::{revoke, RevokeCmd, RevokeReport};
pub use serve::{ServeCmd, ServeReport};
pub use settle::{settle, SettleCmd, SettleReport};
pub use spend::{SpendCmd, SpendOutput};
pub use status::{StatusCmd, StatusReport};
pub use top_up::{top_up, TopUpCmd, TopUpReport};
pub use voucher::{FinalVoucherArgs, VoucherArgs, VoucherValues};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect channels and delegations.
    #[command(subcommand)]
    Channel(ChannelCommand),
    Open(OpenCmd),
    #[command(name = "top-up")]
    TopUp(TopUpCmd),
    Close(CloseCmd),
    #[command(name = "request-close")]
    RequestClose(RequestCloseCmd),
    Refund(RefundCmd),
    Delegate(DelegateCmd),
    Revoke(RevokeCmd),
    #[command(name = "close-delegation")]
    CloseDelegation(CloseDelegationCmd),
    Settle(SettleCmd),
    Pay(Box<PayCmd>),
    Proxy(ProxyCmd),
    /// The lanes `amp pay` holds as an agent: list, close, refund.
    #[command(subcommand)]
    Lanes(LanesCommand),
    Spend(SpendCmd),
    Demo(DemoCmd),
    Serve(ServeCmd),
    Status(StatusCmd),
    Localnet(LocalnetCmd),
}

impl Command {
    /// Runs the command; its report is for the caller to print.
    pub async fn run(self, globals: &GlobalArgs) -> Result<Box<dyn Report>, CliError> {
        Ok(match self {
            Self::Channel(command) => Box::new(command.run(globals).await?),
            Self::Open(command) => Box::new(command.run(globals).await?),
            Self::TopUp(command) => Box::new(command.run(globals).await?),
            Self::Close(command) => Box::new(command.run(globals).await?),
            Self::RequestClose(command) => Box::new(command.run(globals).await?),
            Self::Refund(command) => Box::new(command.run(globals).await?),
            Self::Delegate(command) => Box::new(command.run(globals).await?),
            Self::Revoke(command) => Box::new(command.run(globals).await?),
            Self::CloseDelegation(command) => Box::new(command.run(globals).await?),
            Self::Settle(command) => Box::new(command.run(globals).await?),
            Self::Pay(command) => Box::new(command.run(globals).await?),
            Self::Proxy(command) => Box::new(command.run(globals).await?),
            Self::Lanes(command) => command.run(globals).await?,
            Self::Spend(command) => Box::new(command.run(globals).await?),
            Self::Demo(command) => Box::new(command.run(globals).await?),
            Self::Serve(command) => Box::new(command.run(globals).await?),
            Self::Status(command) => Box::new(command.run(globals).await?),
            Self::Localnet(command) => command.run(globals).await?,
        })
    }

    /// The command as typed, for error messages (`amp channel show: …`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Channel(_) => "channel show",
            Self::Open(_) => "open",
            Self::TopUp(_) => "top-up",
            Self::Close(_) => "close",
            Self::RequestClose(_) => "request-close",
            Self::Refund(_) => "refund",
            Self::Settle(_) => "settle",
            Self::Delegate(_) => "delegate",
            Self::Revoke(_) => "revoke",
            Self::CloseDelegation(_) => "close-delegation",
            Self::Pay(_) => "pay",
            Self::Proxy(_) => "proxy",
            Self::Lanes(_) => "lanes",
            Self::Spend(_) => "spend",
            Self::Demo(_) => "demo",
            Self::Serve(_) => "serve",
            Self::Status(_) => "status",
            Self::Localnet(LocalnetCmd {
                command: Some(localnet::LocalnetCommand::Fund(_)),
                ..
            }) => "localnet fund",
            Self::Localnet(_) => "localnet",
        }
    }
}
