//! The top of the command line: the program's help, the global options and
//! the subcommand, and the edge where a command's report is printed.

use clap::Parser;

use crate::commands::Command;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output;

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
(~/.config/solana/cli/config.yml, or -C FILE before the command), then falls
back to devnet and ~/.config/solana/id.json.

Fees follow a Solana wallet: a compute-unit limit from simulating the
transaction, and a price from recent prioritization fees on the accounts it
writes (75th percentile), at most --max-compute-unit-price;
--with-compute-unit-price fixes it. --fee-payer pays instead of the wallet.

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
    #[command(flatten)]
    pub globals: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Runs the parsed command line and prints the command's report, the one
/// place a result reaches stdout.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let report = cli.command.run(&cli.globals).await?;
    output::print(report.as_ref(), cli.globals.output).map_err(|e| CliError::Io("stdout".into(), e))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use amp_sdk::chain::Chain;
    use amp_sdk::fees::FeePolicy;
    use amp_sdk::rpc::Cluster;
    use clap::CommandFactory;
    use solana_commitment_config::CommitmentLevel;
    use solana_signer::Signer;

    use super::*;
    use crate::context::Commitment;
    use crate::output::OutputFormat;

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
        assert_eq!(cli.globals.url, Some(Cluster::Devnet));
        assert_eq!(cli.globals.output, OutputFormat::Json);
        let Command::Pay(pay) = cli.command else {
            panic!("not pay");
        };
        assert_eq!(pay.target, "http://127.0.0.1:8402/v1/hello");
        let cli = parse(
            "-u http://127.0.0.1:8899 -k id.json channel show 11111111111111111111111111111111",
        )
        .unwrap();
        assert_eq!(
            cli.globals.url,
            Some(Cluster::Custom("http://127.0.0.1:8899".into()))
        );
        assert_eq!(cli.globals.keypair, Some(PathBuf::from("id.json")));
    }

    #[test]
    fn fee_and_commitment_options_work_anywhere() {
        let cli = parse(&format!(
            "channel show {CHANNEL} --with-compute-unit-price 1000 --max-compute-unit-price 5000 --commitment finalized --fee-payer payer.json"
        ))
        .unwrap();
        let g = &cli.globals;
        assert_eq!(g.compute_unit_price, Some(1_000));
        assert_eq!(g.max_compute_unit_price, Some(5_000));
        assert_eq!(g.commitment, Some(Commitment::Finalized));
        assert_eq!(g.fee_payer, Some(PathBuf::from("payer.json")));
        let fees = g.fees(FeePolicy::default()).unwrap();
        assert_eq!(
            (fees.compute_unit_price, fees.max_compute_unit_price),
            (Some(1_000), 5_000)
        );

        // Absent, the defaults: a price from recent fees under the default cap.
        let cli = parse(&format!("channel show {CHANNEL}")).unwrap();
        assert_eq!(cli.globals.commitment, None);
        assert_eq!(
            cli.globals.fees(FeePolicy::default()).unwrap(),
            FeePolicy::default()
        );
        for bad in [
            "--commitment eventually",
            "--with-compute-unit-price -1",
            "--max-compute-unit-price 1.5",
        ] {
            assert!(
                parse(&format!("channel show {CHANNEL} {bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_fixed_price_over_the_cap_is_refused() {
        let cli = parse(&format!(
            "channel show {CHANNEL} --with-compute-unit-price 200000"
        ))
        .unwrap();
        let err = cli.globals.fees(FeePolicy::default()).unwrap_err();
        assert!(
            err.to_string().contains("--max-compute-unit-price"),
            "{err}"
        );
        let cli = parse(&format!(
            "channel show {CHANNEL} --with-compute-unit-price 200000 --max-compute-unit-price 200000"
        ))
        .unwrap();
        assert!(cli.globals.fees(FeePolicy::default()).is_ok());
        // Over a file's policy (amp serve's [settle.fees]), the flags win.
        let base = FeePolicy {
            compute_unit_price: Some(10),
            max_compute_unit_price: 50,
            ..FeePolicy::default()
        };
        let cli = parse(&format!(
            "channel show {CHANNEL} --with-compute-unit-price 40"
        ))
        .unwrap();
        assert_eq!(cli.globals.fees(base).unwrap().compute_unit_price, Some(40));
        let cli = parse(&format!(
            "channel show {CHANNEL} --with-compute-unit-price 60"
        ))
        .unwrap();
        assert!(cli.globals.fees(base).is_err());
    }

    #[test]
    fn a_solana_config_file_gives_cluster_wallet_and_commitment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yml");
        std::fs::write(
            &file,
            "json_rpc_url: \"http://127.0.0.1:8899\"\nkeypair_path: /tmp/agent.json\ncommitment: finalized\n",
        )
        .unwrap();
        let payer = solana_keypair::Keypair::new();
        let payer_file = dir.path().join("payer.json");
        amp_sdk::keypair::write(&payer, &payer_file).unwrap();

        let config = file.display();
        let cli = parse(&format!("-C {config} channel show {CHANNEL}")).unwrap();
        let context = cli.globals.context().unwrap();
        assert_eq!(
            context.cluster,
            Cluster::Custom("http://127.0.0.1:8899".into())
        );
        assert_eq!(context.keypair_path, PathBuf::from("/tmp/agent.json"));
        assert_eq!(
            context.rpc.commitment.commitment,
            CommitmentLevel::Finalized
        );
        assert!(context.fee_payer.is_none());

        // The options win over the file; the fee payer pays for the chain.
        let cli = parse(&format!(
            "--config {config} channel show {CHANNEL} --commitment processed -u devnet --fee-payer {}",
            payer_file.display()
        ))
        .unwrap();
        let context = cli.globals.context().unwrap();
        assert_eq!(context.cluster, Cluster::Devnet);
        assert_eq!(
            context.rpc.commitment.commitment,
            CommitmentLevel::Processed
        );
        let wallet = solana_keypair::Keypair::new();
        assert_eq!(context.chain(&wallet).fee_payer(), payer.pubkey());

        // A named file must exist, and -C goes before the command (serve has
        // a --config of its own).
        let missing = dir.path().join("missing.yml");
        let cli = parse(&format!("-C {} channel show {CHANNEL}", missing.display())).unwrap();
        assert!(cli.globals.context().is_err());
        let cli = parse(&format!(
            "-C {config} serve --upstream http://127.0.0.1:1 --config prices.toml"
        ))
        .unwrap();
        assert_eq!(cli.globals.config_file, Some(file.clone()));
        let Command::Serve(serve) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(serve.config, PathBuf::from("prices.toml"));
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
        let Command::Close(close) = cli.command else {
            panic!("not close");
        };
        let values = close.voucher.values().unwrap();
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
