//! The cluster commands, called as functions with the embedded bank as the
//! chain: the same code `amp` runs against an RPC node.

use amp_cli::amount::Amount;
use amp_cli::commands::{self, DelegateRequest, LaneKind, OpenRequest, StatusView, VoucherValues};
use amp_cli::demo::sandbox;
use amp_cli::CliError;
use amp_sdk::chain::Chain;
use amp_sdk::embedded::EmbeddedBank;
use amp_sdk::server::LaneAccounts;
use amp_sdk::voucher::{SignedVoucher, Voucher};
use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;

const USDC: u64 = 1_000_000;

struct World {
    bank: EmbeddedBank,
    funder: Keypair,
    recipient: Keypair,
    mint: Pubkey,
}

async fn world() -> World {
    let bank = EmbeddedBank::start().await;
    let (funder, recipient) = (Keypair::new(), Keypair::new());
    sandbox::airdrop(&bank, &funder.pubkey(), 1_000_000_000)
        .await
        .unwrap();
    let mint = sandbox::create_mint(&bank, &funder.pubkey(), 6)
        .await
        .unwrap();
    sandbox::mint_to(&bank, &mint, &funder, &funder.pubkey(), 10 * USDC)
        .await
        .unwrap();
    World {
        bank,
        funder,
        recipient,
        mint,
    }
}

impl World {
    fn open_request(&self, amount: &str) -> OpenRequest {
        OpenRequest {
            recipient: self.recipient.pubkey(),
            mint: self.mint,
            amount: amount.parse().unwrap(),
            grace_period: 3_600,
            nonce: None,
            signer: None,
            expires_at: 0,
        }
    }

    async fn balance(&self, owner: &Pubkey) -> u64 {
        let account = amp_sdk::pda::associated_token(owner, &self.mint, &anchor_spl::token::ID);
        self.bank
            .token_balance(&account)
            .await
            .unwrap()
            .unwrap_or(0)
    }

    /// The funder's voucher on its channel.
    async fn voucher(&self, channel: &Pubkey, seq: u64, cumulative: u64) -> VoucherValues {
        self.lane_voucher(&self.funder, channel, seq, cumulative)
            .await
    }

    /// A voucher `signer` signs on `lane` (a channel, or a delegation for its delegate).
    async fn lane_voucher(
        &self,
        signer: &Keypair,
        lane: &Pubkey,
        seq: u64,
        cumulative: u64,
    ) -> VoucherValues {
        let generation = LaneAccounts::fetch(&self.bank, lane)
            .await
            .unwrap()
            .unwrap()
            .generation();
        let signed = SignedVoucher::sign(
            signer,
            Voucher {
                lane: *lane,
                generation,
                seq,
                cumulative,
                expires_at: 0,
            },
        );
        VoucherValues::from_credential(&signed.into())
    }
}

#[tokio::test]
async fn open_top_up_settle_and_close() {
    let w = world().await;
    let chain: &dyn Chain = &w.bank;

    let opened = commands::open(chain, &w.funder, w.open_request("5"))
        .await
        .unwrap();
    assert_eq!(opened.deposit, 5 * USDC);
    assert_eq!(opened.authorized_signer, w.funder.pubkey());
    assert!(opened.rent > 0);
    let channel = opened.channel;
    assert_eq!(w.balance(&w.funder.pubkey()).await, 5 * USDC);

    let shown = commands::show(chain, &channel).await.unwrap();
    assert_eq!(shown.kind, LaneKind::Channel);
    assert_eq!(shown.status, StatusView::Open);
    assert_eq!(shown.vault_balance, 5 * USDC);
    assert_eq!(shown.channel.remaining, 5 * USDC);
    assert_eq!(shown.mint.decimals, 6);
    let json = serde_json::to_value(&shown).unwrap();
    assert_eq!(json["channel"]["deposited"], "5000000");
    assert_eq!(json["status"]["state"], "open");
    assert_eq!(json["address"], channel.to_string());
    assert!(shown.to_string().contains("deposited           5"));
    // The sandbox mint has no freeze authority; `show` says whom a channel trusts.
    assert_eq!(shown.mint.freeze_authority, None);
    assert!(json["mint"]["freeze_authority"].is_null());
    assert!(shown.to_string().contains("freeze authority    none"));

    let topped = commands::top_up(chain, &w.funder, &channel, "1.5".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(topped.deposited, 6_500_000);

    // Anyone may settle: the chain's fee payer signs alone.
    let voucher = w.voucher(&channel, 1, 2 * USDC).await;
    let settled = commands::settle(chain, &channel, voucher).await.unwrap();
    assert_eq!(settled.paid, 2 * USDC);
    assert_eq!(w.balance(&w.recipient.pubkey()).await, 2 * USDC);

    // The same voucher again pays nothing, and says so before sending.
    let again = commands::settle(chain, &channel, voucher).await;
    assert!(
        matches!(&again, Err(CliError::State(m)) if m.contains("nothing to settle")),
        "{again:?}"
    );
    // A voucher whose values were changed does not verify.
    let mut forged = w.voucher(&channel, 2, 3 * USDC).await;
    forged.amount = 4 * USDC;
    let refused = commands::settle(chain, &channel, forged).await;
    assert!(matches!(refused, Err(CliError::State(_))), "{refused:?}");

    // Only the recipient closes cooperatively.
    let last = w.voucher(&channel, 3, 3 * USDC).await;
    let wrong = commands::close(chain, &w.funder, &channel, Some(last)).await;
    assert!(
        matches!(wrong, Err(CliError::WrongWallet { .. })),
        "{wrong:?}"
    );
    let funder_lamports = w.bank.lamports(&w.funder.pubkey()).await.unwrap();
    let closed = commands::close(chain, &w.recipient, &channel, Some(last))
        .await
        .unwrap();
    assert_eq!(closed.paid, USDC);
    assert_eq!(closed.refund.refunded, 3_500_000);
    assert_eq!(closed.refund.rent_returned, opened.rent);
    assert_eq!(w.balance(&w.recipient.pubkey()).await, 3 * USDC);
    assert_eq!(w.balance(&w.funder.pubkey()).await, 7 * USDC);
    assert_eq!(
        w.bank.lamports(&w.funder.pubkey()).await.unwrap(),
        funder_lamports + opened.rent
    );
    assert!(matches!(
        commands::show(chain, &channel).await,
        Err(CliError::NoLane(_))
    ));
}

#[tokio::test]
async fn request_close_then_refund_after_grace() {
    let w = world().await;
    let chain: &dyn Chain = &w.bank;
    let channel = commands::open(chain, &w.funder, w.open_request("2"))
        .await
        .unwrap()
        .channel;

    let stranger = Keypair::new();
    let refused = commands::top_up(chain, &stranger, &channel, Amount::Base(1)).await;
    assert!(
        matches!(refused, Err(CliError::WrongWallet { .. })),
        "{refused:?}"
    );
    let refused = commands::request_close(chain, &w.recipient, &channel).await;
    assert!(
        matches!(refused, Err(CliError::WrongWallet { .. })),
        "{refused:?}"
    );
    let early = commands::refund(chain, &channel).await;
    assert!(
        matches!(&early, Err(CliError::State(m)) if m.contains("open")),
        "{early:?}"
    );

    let requested = commands::request_close(chain, &w.funder, &channel)
        .await
        .unwrap();
    assert_eq!(requested.refundable_at, w.bank.now() + 3_600);
    let shown = commands::show(chain, &channel).await.unwrap();
    assert_eq!(
        shown.status,
        StatusView::Closing {
            refundable_at: requested.refundable_at
        }
    );
    let again = commands::request_close(chain, &w.funder, &channel).await;
    assert!(matches!(again, Err(CliError::State(_))), "{again:?}");
    let top_up = commands::top_up(chain, &w.funder, &channel, Amount::Base(1)).await;
    assert!(matches!(top_up, Err(CliError::State(_))), "{top_up:?}");
    let early = commands::refund(chain, &channel).await;
    assert!(
        matches!(&early, Err(CliError::State(m)) if m.contains("grace period runs until")),
        "{early:?}"
    );

    // The recipient may still settle during the grace period.
    let voucher = w.voucher(&channel, 1, 500_000).await;
    commands::settle(chain, &channel, voucher).await.unwrap();

    w.bank.advance_time(3_600);
    assert_eq!(
        commands::show(chain, &channel).await.unwrap().status,
        StatusView::Refundable
    );
    // Too late to settle now: refused before sending.
    let late = commands::settle(chain, &channel, w.voucher(&channel, 2, USDC).await).await;
    assert!(matches!(late, Err(CliError::State(_))), "{late:?}");

    let refunded = commands::refund(chain, &channel).await.unwrap();
    assert_eq!(refunded.refunded, 1_500_000);
    assert_eq!(refunded.funder, w.funder.pubkey());
    assert_eq!(w.balance(&w.funder.pubkey()).await, 9_500_000);
    assert_eq!(w.balance(&w.recipient.pubkey()).await, 500_000);
    assert!(w.bank.channel(&channel).await.unwrap().is_none());
}

#[tokio::test]
async fn open_refuses_bad_terms_before_sending() {
    let w = world().await;
    let chain: &dyn Chain = &w.bank;
    let too_much = commands::open(chain, &w.funder, w.open_request("11")).await;
    assert!(
        matches!(&too_much, Err(CliError::State(m)) if m.contains("less than the deposit")),
        "{too_much:?}"
    );
    let too_precise = commands::open(chain, &w.funder, w.open_request("0.0000001")).await;
    assert!(
        matches!(too_precise, Err(CliError::Amount(_))),
        "{too_precise:?}"
    );
    let mut short_grace = w.open_request("1");
    short_grace.grace_period = 59;
    assert!(matches!(
        commands::open(chain, &w.funder, short_grace).await,
        Err(CliError::Usage(_))
    ));
    let mut to_self = w.open_request("1");
    to_self.recipient = w.funder.pubkey();
    assert!(matches!(
        commands::open(chain, &w.funder, to_self).await,
        Err(CliError::Usage(_))
    ));

    // The recipient would sign its own payments: refused by the program's rule.
    let mut recipient_signs = w.open_request("1");
    recipient_signs.signer = Some(w.recipient.pubkey());
    let refused = commands::open(chain, &w.funder, recipient_signs).await;
    assert!(
        matches!(&refused, Err(CliError::Usage(m)) if m.contains("recipient cannot sign")),
        "{refused:?}"
    );

    // A hot key signs vouchers; a chosen nonce is used as given, once.
    let hot = Keypair::new();
    let mut request = w.open_request("1");
    request.signer = Some(hot.pubkey());
    request.nonce = Some(42);
    let opened = commands::open(chain, &w.funder, request.clone())
        .await
        .unwrap();
    assert_eq!(opened.authorized_signer, hot.pubkey());
    assert_eq!(
        opened.channel,
        amp_sdk::pda::channel(&w.funder.pubkey(), &w.recipient.pubkey(), 42).0
    );
    let twice = commands::open(chain, &w.funder, request).await;
    assert!(
        matches!(&twice, Err(CliError::State(m)) if m.contains("already exists")),
        "{twice:?}"
    );
}

#[tokio::test]
async fn delegate_revoke_and_close_delegation() {
    let w = world().await;
    let chain: &dyn Chain = &w.bank;
    let channel = commands::open(chain, &w.funder, w.open_request("2"))
        .await
        .unwrap()
        .channel;
    let sub_agent = Keypair::new();
    let request = |delegate: Pubkey, cap: &str| DelegateRequest {
        channel,
        delegate,
        cap: cap.parse().unwrap(),
        expires_at: 0,
    };

    // Refused before sending: not the funder, more than the wallet holds,
    // a delegation address where a channel is expected.
    let stranger = Keypair::new();
    let to_recipient =
        commands::delegate(chain, &w.funder, request(w.recipient.pubkey(), "1")).await;
    assert!(
        matches!(&to_recipient, Err(CliError::Usage(m)) if m.contains("recipient cannot sign")),
        "{to_recipient:?}"
    );
    let refused = commands::delegate(chain, &stranger, request(sub_agent.pubkey(), "1")).await;
    assert!(
        matches!(refused, Err(CliError::WrongWallet { .. })),
        "{refused:?}"
    );
    let too_much = commands::delegate(chain, &w.funder, request(sub_agent.pubkey(), "9")).await;
    assert!(
        matches!(&too_much, Err(CliError::State(m)) if m.contains("less than the cap")),
        "{too_much:?}"
    );

    let past = DelegateRequest {
        expires_at: w.bank.now() - 1,
        ..request(sub_agent.pubkey(), "1")
    };
    let expired = commands::delegate(chain, &w.funder, past).await;
    assert!(matches!(expired, Err(CliError::Usage(_))), "{expired:?}");

    let delegated = commands::delegate(chain, &w.funder, request(sub_agent.pubkey(), "1"))
        .await
        .unwrap();
    let delegation = delegated.delegation;
    assert_eq!(
        delegation,
        amp_sdk::pda::delegation(&channel, &sub_agent.pubkey()).0
    );
    assert_eq!(delegated.cap, USDC);
    assert!(delegated.rent > 0);
    assert!(delegated.to_string().contains("amp pay --channel"));
    assert_eq!(w.balance(&w.funder.pubkey()).await, 7 * USDC);
    let shown = commands::show(chain, &delegation).await.unwrap();
    assert_eq!(shown.kind, LaneKind::Delegation);
    let again = commands::delegate(chain, &w.funder, request(sub_agent.pubkey(), "1")).await;
    assert!(
        matches!(&again, Err(CliError::State(m)) if m.contains("already has a delegation")),
        "{again:?}"
    );
    let on_delegation = commands::top_up(chain, &w.funder, &delegation, Amount::Base(1)).await;
    assert!(
        matches!(on_delegation, Err(CliError::NotAChannel(..))),
        "{on_delegation:?}"
    );
    let on_channel = commands::revoke(chain, &w.funder, &channel).await;
    assert!(
        matches!(on_channel, Err(CliError::NotADelegation(..))),
        "{on_channel:?}"
    );

    // The sub-agent's vouchers settle on the delegation's lane.
    let voucher = w.lane_voucher(&sub_agent, &delegation, 1, 300_000).await;
    assert_eq!(
        commands::settle(chain, &delegation, voucher)
            .await
            .unwrap()
            .paid,
        300_000
    );

    // A live delegation closes only by the recipient, or after a revocation's grace.
    let live = commands::close_delegation(chain, &stranger, &delegation).await;
    assert!(
        matches!(&live, Err(CliError::State(m)) if m.contains("amp revoke")),
        "{live:?}"
    );
    let refused = commands::revoke(chain, &w.recipient, &delegation).await;
    assert!(
        matches!(refused, Err(CliError::WrongWallet { .. })),
        "{refused:?}"
    );
    let revoked = commands::revoke(chain, &w.funder, &delegation)
        .await
        .unwrap();
    assert_eq!(revoked.closable_at, w.bank.now() + 3_600);
    let twice = commands::revoke(chain, &w.funder, &delegation).await;
    assert!(matches!(twice, Err(CliError::State(_))), "{twice:?}");
    let early = commands::close_delegation(chain, &stranger, &delegation).await;
    assert!(
        matches!(&early, Err(CliError::State(m)) if m.contains("grace period runs until")),
        "{early:?}"
    );
    // During the grace period the recipient still settles the delegate's vouchers.
    let voucher = w.lane_voucher(&sub_agent, &delegation, 2, 400_000).await;
    commands::settle(chain, &delegation, voucher).await.unwrap();

    w.bank.advance_time(3_600);
    let closed = commands::close_delegation(chain, &stranger, &delegation)
        .await
        .unwrap();
    assert_eq!(closed.channel, channel);
    assert_eq!(closed.settled, 400_000);
    assert_eq!(closed.unspent, 600_000);
    assert!(closed.rent_returned > 0);
    assert!(w.bank.account(&delegation).await.unwrap().is_none());
    let after = w.bank.channel(&channel).await.unwrap().unwrap();
    assert_eq!(after.delegations, 0);

    // The recipient closes a live delegation at once (the whole cap is unspent).
    let second = Keypair::new();
    let delegated = commands::delegate(chain, &w.funder, request(second.pubkey(), "0.5"))
        .await
        .unwrap();
    let closed = commands::close_delegation(chain, &w.recipient, &delegated.delegation)
        .await
        .unwrap();
    assert_eq!((closed.settled, closed.unspent), (0, 500_000));

    // With no delegation left, the channel closes: everything not paid is back.
    let refund = commands::close(chain, &w.recipient, &channel, None)
        .await
        .unwrap()
        .refund;
    assert_eq!(refund.refunded, 2 * USDC + USDC + 500_000 - 400_000);
    assert_eq!(w.balance(&w.funder.pubkey()).await, 10 * USDC - 400_000);
    assert_eq!(w.balance(&w.recipient.pubkey()).await, 400_000);
}
