//! The server's hot path — parse a credential, rebuild and verify its
//! voucher — allocates nothing. Counted per thread, so the test harness's
//! own threads do not interfere.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use amp_sdk::headers::Credential;
use amp_sdk::voucher::{Voucher, VoucherSigner};
use anchor_lang::prelude::Pubkey;
use http::HeaderMap;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn parse_and_verify_allocate_nothing() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    let signer = key.voucher_pubkey();
    let voucher = Voucher {
        lane: Pubkey::new_from_array([8; 32]),
        generation: 99,
        seq: 12,
        cumulative: 3_400,
        expires_at: 1_900_000_000,
    };
    let mut headers = HeaderMap::new();
    Credential::sign(&key, &voucher).write(&mut headers);

    let count = allocations_in(|| {
        let credential = Credential::from_headers(&headers).unwrap();
        let signed = credential.verify(&signer, 99).unwrap();
        assert_eq!(signed.voucher, voucher);
    });
    assert_eq!(count, 0);
    // The counter does count.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(1)))),
        1
    );
}
