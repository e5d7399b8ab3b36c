//! The books' rules: budget, leases, what is owed, and every verb.

use super::*;
use crate::manifest::{Manifest, Price, Pricing, PricingMode};

fn record(lane: u8, limit: u64) -> LaneRecord {
    let key = Pubkey::new_from_array([lane; 32]);
    LaneRecord {
        service: format!("http://service-{lane}"),
        lane: key,
        funder: key,
        recipient: key,
        mint: key,
        token_program: key,
        nonce: 0,
        delegate: None,
        payer: None,
        generation: 7,
        limit,
        deposited: limit,
        grace_period: 3_600,
        status: LaneStatus::Open,
        opening_since: 0,
        seq: 0,
        signed: 0,
        owed: 0,
        granted: vec![],
        manifest: Manifest {
            amp_version: "1".into(),
            network: "solana:localnet".into(),
            program_id: amp_channel::ID,
            recipient: key,
            mints: vec![],
            min_deposit: 0,
            min_grace_period: 60,
            credit: 0,
            pricing: Pricing {
                default: Price {
                    mode: PricingMode::PerCall,
                    rate: 10,
                },
                routes: Default::default(),
                tokens: Default::default(),
                methods: Default::default(),
            },
            sponsor: None,
            session: None,
        },
    }
}

fn book(budget: u64, lanes: &[(u8, u64)]) -> Book {
    Book {
        budget,
        retired: 0,
        lanes: lanes
            .iter()
            .map(|&(l, limit)| Lane::new(record(l, limit)))
            .collect(),
        version: 1,
    }
}

fn key(lane: u8) -> Pubkey {
    Pubkey::new_from_array([lane; 32])
}

#[test]
fn can_sign_more_asks_the_budget_and_commits_nothing() {
    let mut b = book(100, &[(1, 1_000), (2, 1_000)]);
    b.claim(&key(2), 30);
    b.commit(&key(2), 0, 10).unwrap(); // lane 2 leases all the budget ahead
    b.claim(&key(1), 60);
    let version = b.version;
    // Lane 2's unused lease is reclaimed for the question.
    assert_eq!(b.can_sign_more(&key(1), 10), Ok(()));
    assert_eq!(
        b.can_sign_more(&key(1), 11),
        Err(Refusal::Budget {
            needed: 71,
            available: 70
        })
    );
    let lane = b.lane(&key(1)).unwrap();
    assert_eq!((lane.record.owed, lane.record.signed, lane.seq), (60, 0, 0));
    assert_eq!(b.version, version, "nothing to write");
    assert_eq!(b.can_sign_more(&key(3), 1), Err(Refusal::NoLane));
}

#[test]
fn leases_seqs_and_budget_ahead() {
    let mut b = book(1_000, &[(1, 1_000)]);
    b.claim(&key(1), 10);
    let c = b.commit(&key(1), 0, 4).unwrap();
    assert_eq!((c.seq, c.amount), (1, 10));
    let lane = b.lane(&key(1)).unwrap();
    assert_eq!((lane.record.seq, lane.record.signed), (5, 50));
    let first = c.wait_for;
    // Within the lease (seqs up to 5, amounts up to 50): no new write needed.
    for seq in 2..=5 {
        b.claim(&key(1), 10);
        let c = b.commit(&key(1), 0, 4).unwrap();
        assert_eq!((c.seq, c.amount, c.wait_for), (seq, 10 * seq, first));
    }
    b.claim(&key(1), 10);
    let c = b.commit(&key(1), 0, 4).unwrap();
    assert_eq!((c.seq, c.amount), (6, 60));
    assert!(c.wait_for > first, "the lease ran out: a new write");
    let lane = b.lane(&key(1)).unwrap();
    assert_eq!((lane.record.seq, lane.record.signed), (10, 100));
}

#[test]
fn never_commits_beyond_the_budget_and_reclaims_leases() {
    let mut b = book(100, &[(1, 1_000), (2, 1_000)]);
    b.claim(&key(1), 10);
    b.commit(&key(1), 0, 100).unwrap();
    assert_eq!(
        b.lane(&key(1)).unwrap().record.signed,
        100,
        "lease takes all"
    );
    // Lane 2 needs 60: lane 1's unused lease is reclaimed.
    b.claim(&key(2), 60);
    let c = b.commit(&key(2), 0, 0).unwrap();
    assert_eq!(c.amount, 60);
    assert_eq!(b.lane(&key(1)).unwrap().record.signed, 10);
    assert_eq!(b.consumed(), 70);
    // 40 more on lane 2 would pass the budget (10 + 100 > 100).
    b.claim(&key(2), 40);
    assert_eq!(
        b.commit(&key(2), 0, 0),
        Err(Refusal::Budget {
            needed: 40,
            available: 30
        })
    );
    b.release(&key(2), 40, false);
    assert_eq!(b.lane(&key(2)).unwrap().record.owed, 60);
    assert!(b.consumed() <= b.budget);
}

#[test]
fn over_limit_and_floors() {
    let mut b = book(1_000, &[(1, 50)]);
    b.claim(&key(1), 60);
    assert_eq!(
        b.commit(&key(1), 0, 0),
        Err(Refusal::OverLimit {
            amount: 60,
            limit: 50
        })
    );
    b.release(&key(1), 60, false);
    let c = b.commit(&key(1), 30, 0).unwrap();
    assert_eq!(c.amount, 30);
    assert_eq!(b.commit(&key(3), 0, 0), Err(Refusal::NoLane));
}

#[test]
fn observes_exactly_only_when_alone() {
    let mut b = book(1_000, &[(1, 1_000)]);
    b.claim(&key(1), 10);
    b.claim(&key(1), 10);
    b.observe(&key(1), 1, 5);
    assert_eq!(b.lane(&key(1)).unwrap().record.owed, 20);
    b.release(&key(1), 10, true);
    b.observe(&key(1), 2, 15);
    assert_eq!(b.lane(&key(1)).unwrap().record.owed, 15);
}

#[test]
fn a_response_read_late_does_not_lower_what_is_owed() {
    let mut b = book(1_000, &[(1, 1_000)]);
    // Seqs 1 and 2 in flight; 2's response (owed 20) is read first.
    b.claim(&key(1), 10);
    b.claim(&key(1), 10);
    b.observe(&key(1), 2, 20);
    b.release(&key(1), 10, true);
    // 1's response, read last and alone, carries the older figure.
    b.observe(&key(1), 1, 10);
    b.release(&key(1), 10, true);
    assert_eq!(b.lane(&key(1)).unwrap().record.owed, 20);
}

#[test]
fn restart_counts_leases_as_signed() {
    let mut b = book(1_000, &[(1, 1_000)]);
    b.claim(&key(1), 10);
    b.commit(&key(1), 0, 9).unwrap();
    let restored = Book::from_snapshot(1_000, b.snapshot());
    let lane = restored.lane(&key(1)).unwrap();
    assert_eq!((lane.seq, lane.signed), (10, 100));
    assert_eq!(restored.spent(), 100);
}

#[test]
fn grants_are_held_against_the_budget_and_can_be_taken_back() {
    let mut b = book(100, &[(1, 1_000)]);
    assert_eq!(
        b.grant(&key(1), key(9), 101),
        Err(Refusal::Budget {
            needed: 101,
            available: 100
        })
    );
    assert_eq!(b.grant(&key(3), key(9), 10), Err(Refusal::NoLane));
    b.grant(&key(1), key(9), 60).unwrap();
    assert_eq!(
        (b.available(), b.spent(), b.spent_on(&key(1))),
        (40, 60, 60)
    );
    b.ungrant(&key(1), &key(9));
    assert_eq!((b.available(), b.spent_on(&key(1))), (100, 0));
}

#[test]
fn retiring_counts_what_was_signed_and_granted() {
    let mut b = book(1_000, &[(1, 1_000), (2, 1_000)]);
    b.claim(&key(1), 30);
    b.commit(&key(1), 0, 5).unwrap(); // leases 180 ahead, signs 30
    b.grant(&key(1), key(9), 100).unwrap();
    assert_eq!(b.spent_on(&key(1)), 130);
    assert_eq!(b.retire_signed(&key(1)), 130);
    assert!(b.lane(&key(1)).is_none());
    // The unused lease is freed; what may have been signed stays spent.
    assert_eq!((b.retired, b.spent(), b.consumed()), (130, 130, 130));
    assert_eq!(
        b.retire_signed(&key(7)),
        0,
        "an unknown lane counts nothing"
    );
}

#[test]
fn a_lane_opens_closes_and_is_due_for_refund() {
    let mut b = book(1_000, &[]);
    let mut opening = record(1, 0);
    opening.status = LaneStatus::Opening;
    b.insert(opening);
    b.insert(record(2, 50));
    assert_eq!(b.opening(), vec![key(1)]);
    assert_eq!(b.open_services(), vec!["http://service-2".to_owned()]);
    let channel = Channel {
        funder: key(1),
        recipient: key(1),
        mint: key(1),
        authorized_signer: key(1),
        nonce: 0,
        generation: 42,
        deposited: 500,
        settled: 0,
        delegated: 100,
        delegations: 1,
        close_requested_at: 0,
        expires_at: 0,
        grace_period: 900,
        bump: 255,
        vault_bump: 255,
        payer: key(2),
    };
    b.mark_open(&key(1), &channel);
    let lane = &b.lane(&key(1)).unwrap().record;
    assert_eq!(lane.status, LaneStatus::Open);
    assert_eq!(
        (
            lane.generation,
            lane.limit,
            lane.deposited,
            lane.grace_period
        ),
        (42, 400, 500, 900)
    );
    let version = b.version;
    b.mark_closing(&key(2), 1_000);
    assert!(b.version > version, "a closing lane must be written");
    assert_eq!(b.open_lane("http://service-2"), None);
    assert!(b.refundable(999).is_empty());
    assert_eq!(b.refundable(1_000)[0].lane, key(2));
    b.forget(&key(1));
    assert!(b.lane(&key(1)).is_none());
    assert_eq!(b.retired, 0, "a lane that never opened spent nothing");
}

#[test]
fn top_ups_only_raise_and_refreshes_follow_the_chain() {
    let mut b = book(1_000, &[(1, 100)]);
    b.topped_up(&key(1), 300, 300);
    b.topped_up(&key(1), 200, 200); // a read from before the other top-up
    let lane = &b.lane(&key(1)).unwrap().record;
    assert_eq!((lane.limit, lane.deposited), (300, 300));
    b.refresh_funds(&key(1), 250, 300); // a delegation took 50
    let lane = &b.lane(&key(1)).unwrap().record;
    assert_eq!((lane.limit, lane.deposited), (250, 300));
}

#[test]
fn streams_are_counted_while_they_run() {
    let mut b = book(1_000, &[(1, 100)]);
    b.stream_started(&key(1));
    b.stream_started(&key(1));
    b.stream_ended(&key(1));
    assert_eq!(b.lane(&key(1)).unwrap().streams, 1);
    b.stream_ended(&key(1));
    b.stream_ended(&key(1));
    assert_eq!(b.lane(&key(1)).unwrap().streams, 0);
}
