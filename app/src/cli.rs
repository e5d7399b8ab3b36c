//! The command line's grammar (clap) and the dispatch from it to the
//! command functions, which know nothing of clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use amp_sdk::chain::Chain;
use amp_sdk::rpc::{Cluster, RpcChain};
use anchor_lang::prelude::Pubkey;
use clap::{Args, Parser, Subcommand};
use http::{HeaderName, HeaderValue, Method};
use solana_keypair::Keypair;

use crate::amount::Amount;
use crate::commands::{
    self, AgentPayRequest, DelegateRequest, OpenRequest, PayRequest, VoucherValues,
};
use crate::config::{self, SolanaConfig};
use crate::error::CliError;
use crate::output::{self, OutputFormat};

const ABOUT: &str =
    "AMP payment channels on Solana: pay for APIs per request, settle on-chain in bulk";

const LONG_ABOUT: &str = "\
AMP payment channels on Solana: pay for APIs per request, settle on-chain in bulk.

An agent opens a channel once (a deposit held by the AMP program), then pays
every HTTP request with a signed voucher that costs nothing on-chain; the
service settles the total whenever it likes, and the channel closes with the
rest refunded and all rent returned.

Try it without a wallet or a network:  amp demo";

const AFTER_HELP: &str = "\
Cluster and wallet follow the Solana CLI: --url takes localnet, devnet,
testnet, mainnet-beta (or l, d, t, m) or an RPC URL; --keypair takes a keypair
file. Without them, amp reads the Solana CLI's configuration
(~/.config/solana/cli/config.yml), then falls back to devnet and
~/.config/solana/id.json.

Token amounts are written in tokens (10, 0.25); voucher values (--amount of a
voucher) are base units, as the AMP-Amount header carries them.";

#[derive(Debug, Parser)]
#[command(
    name = "amp",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Cluster: localnet, devnet, testnet, mainnet-beta (l, d, t, m) or an RPC URL.
    #[arg(
        short = 'u',
        long = "url",
        global = true,
        value_name = "URL_OR_MONIKER",
        help_heading = "Global options"
    )]
    pub url: Option<Cluster>,

    /// Wallet keypair file (Solana CLI format) [default: ~/.config/solana/id.json].
    #[arg(
        short = 'k',
        long = "keypair",
        global = true,
        value_name = "KEYPAIR",
        help_heading = "Global options"
    )]
    pub keypair: Option<PathBuf>,

    /// How to print results: display, json or json-compact.
    #[arg(
        long,
        global = true,
        value_enum,
        hide_possible_values = true,
        default_value_t = OutputFormat::Display,
        help_heading = "Global options"
    )]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect channels and delegations.
    #[command(subcommand)]
    Channel(ChannelCommand),

    /// Open a channel from the wallet to a recipient, with a deposit.
    Open(OpenCmd),

    /// Add to an open channel's deposit (funder).
    #[command(name = "top-up")]
    TopUp {
        /// The channel's address.
        channel: Pubkey,
        /// Tokens to add (e.g. 5 or 0.5).
        amount: Amount,
    },

    /// Close a channel cooperatively, optionally settling a final voucher (recipient).
    ///
    /// The rest of the vault goes back to the funder at once, with the rent.
    Close {
        /// The channel's address.
        channel: Pubkey,
        #[command(flatten)]
        voucher: FinalVoucherArgs,
    },

    /// Start the grace period, after which `amp refund` returns the deposit (funder).
    #[command(name = "request-close")]
    RequestClose {
        /// The channel's address.
        channel: Pubkey,
    },

    /// Refund the vault to the funder once the grace period is over (anyone).
    Refund {
        /// The channel's address.
        channel: Pubkey,
    },

    /// Give a sub-agent key its own lane on a channel, with a cap (funder).
    ///
    /// The cap is deposited from the wallet and reserved for the delegate,
    /// whose vouchers name the delegation's address as their lane: it pays
    /// with `amp pay --channel DELEGATION` and its own keypair.
    Delegate {
        /// The channel's address.
        channel: Pubkey,
        /// The sub-agent's key, which signs the delegation's vouchers.
        delegate: Pubkey,
        /// The cap, in tokens (e.g. 5 or 0.5).
        cap: Amount,
        /// Revoke the delegation automatically this long from now (e.g. 7d).
        #[arg(long, value_parser = config::parse_duration, value_name = "DURATION")]
        expires_in: Option<u32>,
    },

    /// Revoke a delegation: its grace period starts (funder).
    ///
    /// The recipient may settle the delegate's vouchers until it ends; then
    /// `amp close-delegation` returns the unspent cap to the channel.
    Revoke {
        /// The delegation's address.
        delegation: Pubkey,
    },

    /// Close a delegation: unspent cap back to the channel, rent to the funder.
    ///
    /// The recipient may at any time (settle the delegate's vouchers first);
    /// anyone may once a revocation's grace period is over.
    #[command(name = "close-delegation")]
    CloseDelegation {
        /// The delegation's address.
        delegation: Pubkey,
    },

    /// Settle a voucher: pay the recipient what it adds (anyone).
    ///
    /// Give the voucher as the values of its credential headers (AMP-Seq,
    /// AMP-Amount, AMP-Expires, AMP-Sig); the lane is the AMP-Channel value.
    Settle {
        /// The lane: a channel, or a delegation for a delegate's voucher.
        lane: Pubkey,
        #[command(flatten)]
        voucher: VoucherArgs,
    },

    /// Make an HTTP request and pay for it through AMP, like curl.
    ///
    /// As an agent (--budget), the lane file remembers a channel per service
    /// and the first request to a service opens one. With --channel, a channel
    /// opened by `amp open` pays. The body goes to stdout, a line about the
    /// payment to stderr.
    Pay(PayCmd),

    /// The lanes `amp pay` holds as an agent: list, close, refund.
    #[command(subcommand)]
    Lanes(LanesCommand),

    /// Run the whole story locally, no setup and no network.
    ///
    /// An embedded Solana bank, a USDC-like mint, a paid API on 127.0.0.1
    /// (per-token completions, per-call answers, per-second streams) and an
    /// agent that opens a channel, makes the calls and closes; then a report
    /// of what it cost on-chain, next to one transaction per request.
    Demo(DemoCmd),

    /// Charge for an existing HTTP API: a paying reverse proxy in front of it.
    ///
    /// Prices, accepted mints, the recipient wallet, the cluster and the
    /// voucher store come from a TOML file; --url and --keypair override the
    /// file's cluster and wallet. Ctrl-C stops it after settling what is owed.
    Serve(ServeCmd),
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Show a channel or a delegation: decoded state, status, vault balance.
    Show {
        /// A channel or delegation address.
        address: Pubkey,
    },
}

#[derive(Debug, Subcommand)]
pub enum LanesCommand {
    /// List the lanes of the lane file.
    List(LaneFileArg),
    /// Close the lane paying a service: cooperatively, or on-chain if it will not.
    Close {
        /// The service (its origin, or any URL of it).
        service: String,
        /// Most all lanes of the lane file may ever sign, in tokens (as for `amp pay`).
        #[arg(long, value_name = "AMOUNT")]
        budget: Amount,
        #[command(flatten)]
        file: LaneFileArg,
    },
    /// Refund the lanes whose requested close has run its grace period.
    Refund(LaneFileArg),
}

#[derive(Debug, Args)]
pub struct LaneFileArg {
    /// The agent's lane file [default: ~/.config/amp/lanes.json].
    #[arg(long, value_name = "FILE")]
    pub lanes: Option<PathBuf>,
}

impl LaneFileArg {
    fn path(&self) -> PathBuf {
        self.lanes
            .as_deref()
            .map(config::expand_home)
            .unwrap_or_else(config::default_lane_file)
    }
}

#[derive(Debug, Args)]
pub struct OpenCmd {
    /// Who the channel pays (the service's wallet).
    #[arg(long)]
    pub recipient: Pubkey,
    /// The token mint (SPL Token or Token-2022).
    #[arg(long)]
    pub mint: Pubkey,
    /// Deposit, in tokens (e.g. 10 or 0.25).
    #[arg(long)]
    pub amount: Amount,
    /// Grace period after a close request: 3600, 90s, 15m, 1h, 7d (60 s to 30 days).
    #[arg(long, value_parser = config::parse_duration, default_value = "1h")]
    pub grace: u32,
    /// Channel nonce [default: random].
    #[arg(long)]
    pub nonce: Option<u64>,
    /// The key that signs vouchers, if not the wallet (a hot key).
    #[arg(long)]
    pub signer: Option<Pubkey>,
    /// Close the channel automatically this long from now (e.g. 30d).
    #[arg(long, value_parser = config::parse_duration, value_name = "DURATION")]
    pub expires_in: Option<u32>,
}

/// A voucher as its credential headers carry it.
#[derive(Debug, Args)]
pub struct VoucherArgs {
    /// AMP-Seq.
    #[arg(long)]
    pub seq: u64,
    /// AMP-Amount: the cumulative amount, in base units.
    #[arg(long)]
    pub amount: u64,
    /// AMP-Expires, unix seconds (absent or 0: never).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub expires: i64,
    /// AMP-Sig: the ed25519 signature, base58.
    #[arg(long)]
    pub sig: commands::VoucherSignature,
}

impl From<&VoucherArgs> for VoucherValues {
    fn from(args: &VoucherArgs) -> Self {
        Self {
            seq: args.seq,
            amount: args.amount,
            expires_at: args.expires,
            signature: args.sig.0,
        }
    }
}

/// An optional final voucher for `close`.
#[derive(Debug, Args)]
pub struct FinalVoucherArgs {
    /// AMP-Seq of a final voucher to settle first.
    #[arg(long, requires_all = ["amount", "sig"])]
    pub seq: Option<u64>,
    /// AMP-Amount of the final voucher, in base units.
    #[arg(long, requires_all = ["seq", "sig"])]
    pub amount: Option<u64>,
    /// AMP-Expires of the final voucher (absent or 0: never).
    #[arg(long, requires = "seq", allow_negative_numbers = true)]
    pub expires: Option<i64>,
    /// AMP-Sig of the final voucher, base58.
    #[arg(long, requires_all = ["seq", "amount"])]
    pub sig: Option<commands::VoucherSignature>,
}

impl FinalVoucherArgs {
    fn values(&self) -> Option<VoucherValues> {
        Some(VoucherValues {
            seq: self.seq?,
            amount: self.amount?,
            expires_at: self.expires.unwrap_or(0),
            signature: self.sig?.0,
        })
    }
}

#[derive(Debug, Args)]
pub struct PayCmd {
    /// The URL to request.
    #[arg(value_name = "URL")]
    pub target: String,
    /// HTTP method [default: GET, or POST with --data].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<Method>,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body; @FILE reads a file, @- reads stdin.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,
    /// Print the response headers before the body.
    #[arg(short = 'i', long)]
    pub include: bool,

    /// Most all lanes of the lane file may ever sign, in tokens (the agent
    /// opens a channel when it has none for this service).
    #[arg(
        long,
        value_name = "AMOUNT",
        required_unless_present = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub budget: Option<Amount>,
    /// Deposit of a channel the agent opens, in tokens [default: a quarter of the budget].
    #[arg(
        long,
        value_name = "AMOUNT",
        conflicts_with = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub deposit: Option<Amount>,
    /// Mint to pay in [default: the first the service accepts].
    #[arg(
        long,
        conflicts_with = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub mint: Option<Pubkey>,
    /// The agent's lane file [default: ~/.config/amp/lanes.json].
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "channel",
        help_heading = "Paying as an agent (lane file)"
    )]
    pub lanes: Option<PathBuf>,

    /// Pay from this lane instead (a channel from `amp open`, or a
    /// delegation) whose vouchers the wallet signs; no lane file.
    #[arg(
        short = 'c',
        long = "channel",
        value_name = "LANE",
        conflicts_with = "budget",
        help_heading = "Paying from a given channel"
    )]
    pub channel: Option<Pubkey>,
    /// Most this request may cost, in tokens [default: what the lane can still pay].
    #[arg(
        long,
        value_name = "AMOUNT",
        conflicts_with = "budget",
        help_heading = "Paying from a given channel"
    )]
    pub max: Option<Amount>,
}

#[derive(Debug, Args)]
pub struct DemoCmd {
    /// Paid calls the agent makes.
    #[arg(long, default_value_t = 1_000)]
    pub calls: u32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ServeCmd {
    /// The API to put behind the paywall, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub upstream: reqwest::Url,
    /// Prices, accepted mints, wallet, cluster and voucher store (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8402")]
    pub listen: SocketAddr,
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not 'Name: value'"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("header name: {e}"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("header value: {e}"))?;
    Ok((name, value))
}

/// The cluster and wallet a cluster command uses.
struct Context {
    cluster: Cluster,
    keypair_path: PathBuf,
}

impl Context {
    fn new(cli: &Cli) -> Result<Self, CliError> {
        let solana = SolanaConfig::load();
        let cluster = match (&cli.url, &solana.json_rpc_url) {
            (Some(cluster), _) => cluster.clone(),
            (None, Some(url)) => url
                .parse()
                .map_err(|e| CliError::usage(format!("Solana CLI config json_rpc_url: {e}")))?,
            (None, None) => config::DEFAULT_CLUSTER,
        };
        let keypair_path = cli
            .keypair
            .clone()
            .or(solana.keypair_path)
            .map(|p| config::expand_home(&p))
            .unwrap_or_else(config::default_keypair_path);
        Ok(Self {
            cluster,
            keypair_path,
        })
    }

    fn wallet(&self) -> Result<Keypair, CliError> {
        Ok(amp_sdk::keypair::read(&self.keypair_path)?)
    }

    /// The RPC chain, paying fees from `wallet`.
    fn chain(&self, wallet: &Keypair) -> RpcChain {
        tracing::debug!(cluster = %self.cluster, url = self.cluster.url(), "using RPC");
        RpcChain::new(&self.cluster, wallet.insecure_clone())
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let format = cli.output;
    // The demo needs no cluster, wallet or configuration at all.
    if let Command::Demo(cmd) = &cli.command {
        let options = crate::demo::DemoOptions {
            calls: cmd.calls,
            progress: !cmd.quiet && format == OutputFormat::Display,
            ..Default::default()
        };
        let report = {
            // The embedded programs print log lines; the report owns stdout.
            let _quiet = crate::stdout::StdoutToStderr::start();
            crate::demo::run(options).await?
        };
        return output::print(&report, format).map_err(|e| CliError::Io("stdout".into(), e));
    }
    let ctx = Context::new(&cli)?;
    match &cli.command {
        Command::Serve(cmd) => {
            crate::proxy::run_from_file(
                &cmd.config,
                cmd.upstream.clone(),
                cmd.listen,
                cli.url.clone(),
                cli.keypair.as_deref(),
            )
            .await
        }
        Command::Pay(cmd) => {
            let wallet = ctx.wallet()?;
            let http = reqwest::Client::new();
            let report = match cmd.channel {
                Some(lane) => {
                    let chain = ctx.chain(&wallet);
                    commands::pay(&chain, &wallet, &http, pay_request(cmd, lane)?).await?
                }
                None => {
                    let request = agent_pay_request(cmd)?;
                    commands::pay_agent(ctx.chain(&wallet), &wallet, &http, request).await?
                }
            };
            if format == OutputFormat::Display {
                if cmd.include {
                    println!("HTTP {}", report.status);
                    for (name, value) in &report.headers {
                        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
                    }
                    println!();
                }
                eprintln!("{}", report.summary());
            }
            output::print(&report, format).map_err(|e| CliError::Io("stdout".into(), e))
        }
        Command::Lanes(command) => {
            let wallet = ctx.wallet()?;
            let chain: Arc<dyn Chain> = Arc::new(ctx.chain(&wallet));
            let io = |e| CliError::Io("stdout".into(), e);
            match command {
                LanesCommand::List(file) => {
                    let report = commands::lanes::list(chain, &wallet, file.path()).await?;
                    output::print(&report, format).map_err(io)
                }
                LanesCommand::Close {
                    service,
                    budget,
                    file,
                } => {
                    let report =
                        commands::lanes::close(chain, &wallet, file.path(), service, budget)
                            .await?;
                    output::print(&report, format).map_err(io)
                }
                LanesCommand::Refund(file) => {
                    let report = commands::lanes::refund(chain, &wallet, file.path()).await?;
                    output::print(&report, format).map_err(io)
                }
            }
        }
        Command::Channel(ChannelCommand::Show { address }) => {
            // Reading needs no wallet: a throwaway key stands in as fee payer.
            let wallet = ctx.wallet().unwrap_or_else(|_| Keypair::new());
            let chain = ctx.chain(&wallet);
            let report = commands::show(&chain, address).await?;
            output::print(&report, format).map_err(|e| CliError::Io("stdout".into(), e))
        }
        command => {
            let wallet = ctx.wallet()?;
            let chain = ctx.chain(&wallet);
            run_with_wallet(command, &chain, &wallet, format).await
        }
    }
}

async fn run_with_wallet(
    command: &Command,
    chain: &dyn Chain,
    wallet: &Keypair,
    format: OutputFormat,
) -> Result<(), CliError> {
    let io = |e| CliError::Io("stdout".into(), e);
    match command {
        Command::Open(cmd) => {
            let expires_at = match cmd.expires_in {
                Some(seconds) => chain.clock().await?.unix_timestamp + i64::from(seconds),
                None => 0,
            };
            let request = OpenRequest {
                recipient: cmd.recipient,
                mint: cmd.mint,
                amount: cmd.amount.clone(),
                grace_period: cmd.grace,
                nonce: cmd.nonce,
                signer: cmd.signer,
                expires_at,
            };
            let report = commands::open(chain, wallet, request).await?;
            output::print(&report, format).map_err(io)
        }
        Command::TopUp { channel, amount } => {
            let report = commands::top_up(chain, wallet, channel, amount.clone()).await?;
            output::print(&report, format).map_err(io)
        }
        Command::Close { channel, voucher } => {
            let report = commands::close(chain, wallet, channel, voucher.values()).await?;
            output::print(&report, format).map_err(io)
        }
        Command::RequestClose { channel } => {
            let report = commands::request_close(chain, wallet, channel).await?;
            output::print(&report, format).map_err(io)
        }
        Command::Refund { channel } => {
            let report = commands::refund(chain, channel).await?;
            output::print(&report, format).map_err(io)
        }
        Command::Settle { lane, voucher } => {
            let report = commands::settle(chain, lane, voucher.into()).await?;
            output::print(&report, format).map_err(io)
        }
        Command::Delegate {
            channel,
            delegate,
            cap,
            expires_in,
        } => {
            let expires_at = match expires_in {
                Some(seconds) => chain.clock().await?.unix_timestamp + i64::from(*seconds),
                None => 0,
            };
            let request = DelegateRequest {
                channel: *channel,
                delegate: *delegate,
                cap: cap.clone(),
                expires_at,
            };
            let report = commands::delegate(chain, wallet, request).await?;
            output::print(&report, format).map_err(io)
        }
        Command::Revoke { delegation } => {
            let report = commands::revoke(chain, wallet, delegation).await?;
            output::print(&report, format).map_err(io)
        }
        Command::CloseDelegation { delegation } => {
            let report = commands::close_delegation(chain, wallet, delegation).await?;
            output::print(&report, format).map_err(io)
        }
        Command::Channel(_)
        | Command::Demo(_)
        | Command::Serve(_)
        | Command::Pay(_)
        | Command::Lanes(_) => {
            unreachable!("dispatched in run")
        }
    }
}

fn request_body(cmd: &PayCmd) -> Result<Option<Vec<u8>>, CliError> {
    Ok(match cmd.data.as_deref() {
        None => None,
        Some("@-") => {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)
                .map_err(|e| CliError::Io("stdin".into(), e))?;
            Some(data)
        }
        Some(data) => match data.strip_prefix('@') {
            Some(path) => Some(std::fs::read(path).map_err(|e| CliError::Io(path.into(), e))?),
            None => Some(data.as_bytes().to_vec()),
        },
    })
}

fn method(cmd: &PayCmd, body: &Option<Vec<u8>>) -> Method {
    cmd.method.clone().unwrap_or(if body.is_some() {
        Method::POST
    } else {
        Method::GET
    })
}

fn pay_request(cmd: &PayCmd, lane: Pubkey) -> Result<PayRequest, CliError> {
    let body = request_body(cmd)?;
    Ok(PayRequest {
        url: cmd.target.clone(),
        method: method(cmd, &body),
        headers: cmd.headers.clone(),
        body,
        lane,
        max: cmd.max.clone(),
    })
}

fn agent_pay_request(cmd: &PayCmd) -> Result<AgentPayRequest, CliError> {
    let body = request_body(cmd)?;
    let budget = cmd
        .budget
        .clone()
        .ok_or_else(|| CliError::usage("--budget (or --channel) is required"))?;
    Ok(AgentPayRequest {
        url: cmd.target.clone(),
        method: method(cmd, &body),
        headers: cmd.headers.clone(),
        body,
        lanes: cmd
            .lanes
            .as_deref()
            .map(config::expand_home)
            .unwrap_or_else(config::default_lane_file),
        mint: cmd.mint,
        budget,
        deposit: cmd.deposit.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    const CHANNEL: &str = "11111111111111111111111111111111";

    fn parse(args: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("amp").chain(args.split_whitespace()))
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_anywhere() {
        let cli =
            parse("pay http://127.0.0.1:8402/v1/hello -u devnet --budget 1 --output json").unwrap();
        assert_eq!(cli.url, Some(Cluster::Devnet));
        assert_eq!(cli.output, OutputFormat::Json);
        let Command::Pay(pay) = cli.command else {
            panic!("not pay");
        };
        assert_eq!(pay.target, "http://127.0.0.1:8402/v1/hello");
        let cli = parse(
            "-u http://127.0.0.1:8899 -k id.json channel show 11111111111111111111111111111111",
        )
        .unwrap();
        assert_eq!(
            cli.url,
            Some(Cluster::Custom("http://127.0.0.1:8899".into()))
        );
        assert_eq!(cli.keypair, Some(PathBuf::from("id.json")));
    }

    #[test]
    fn pay_needs_a_budget_or_a_channel_not_both() {
        assert!(parse("pay http://x").is_err());
        assert!(parse(&format!("pay http://x --channel {CHANNEL}")).is_ok());
        assert!(parse(&format!("pay http://x --channel {CHANNEL} --budget 1")).is_err());
        assert!(parse("pay http://x --budget 1 --max 1").is_err());
        assert!(parse("pay http://x --budget 1 -H Accept:text/plain -H X-Y:z").is_ok());
        assert!(parse("pay http://x --budget 1 -H nocolon").is_err());
    }

    #[test]
    fn a_final_voucher_is_all_or_nothing() {
        assert!(parse(&format!("close {CHANNEL}")).is_ok());
        assert!(parse(&format!("close {CHANNEL} --seq 1 --amount 5")).is_err());
        let sig = bs58::encode([7u8; 64]).into_string();
        let cli = parse(&format!("close {CHANNEL} --seq 1 --amount 5 --sig {sig}")).unwrap();
        let Command::Close { voucher, .. } = cli.command else {
            panic!("not close");
        };
        let values = voucher.values().unwrap();
        assert_eq!((values.seq, values.amount, values.expires_at), (1, 5, 0));
        assert!(parse(&format!("settle {CHANNEL} --seq 1 --amount 5 --sig 0OIl")).is_err());
    }

    #[test]
    fn open_reads_durations_and_amounts() {
        let cli = parse(&format!(
            "open --recipient {CHANNEL} --mint {CHANNEL} --amount 2.5 --grace 2h --expires-in 30d"
        ))
        .unwrap();
        let Command::Open(open) = cli.command else {
            panic!("not open");
        };
        assert_eq!(open.grace, 7_200);
        assert_eq!(open.expires_in, Some(2_592_000));
        assert_eq!(open.amount.to_base_units(6).unwrap(), 2_500_000);
        assert!(parse(&format!(
            "open --recipient {CHANNEL} --mint {CHANNEL} --amount 1,5"
        ))
        .is_err());
    }
}
