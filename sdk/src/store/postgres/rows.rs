//! How a lane's state crosses to and from its row.

use crate::store::backend::StoreError;
use crate::store::state::{LaneId, LaneState};
use crate::voucher::{self, SignedVoucher, SIGNATURE_LEN};
use anchor_lang::prelude::Pubkey;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
/// A lane's key columns.
pub(super) fn key(id: &LaneId) -> (Vec<u8>, i64) {
    (id.lane.to_bytes().to_vec(), int(id.generation))
}

/// Integers are signed: u64 values are stored by their bits.
pub(super) fn int(value: u64) -> i64 {
    value as i64
}

pub(super) fn uint(value: i64) -> u64 {
    value as u64
}

/// The non-key columns of a state, as parameters `$3..$12`.
pub(super) struct Columns {
    channel: Vec<u8>,
    delegate: Option<Vec<u8>>,
    signer: Vec<u8>,
    last_seq: i64,
    owed: i64,
    settled: i64,
    unsettled: i64,
    voucher: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    closed: bool,
}

impl Columns {
    pub(super) fn of(state: &LaneState) -> Self {
        Self {
            channel: state.channel.to_bytes().to_vec(),
            delegate: state.delegate.map(|d| d.to_bytes().to_vec()),
            signer: state.signer.to_bytes().to_vec(),
            last_seq: int(state.last_seq),
            owed: int(state.owed),
            settled: int(state.settled),
            unsettled: int(state.unsettled()),
            voucher: state.best.map(|b| b.voucher.to_bytes().to_vec()),
            signature: state.best.map(|b| b.signature.to_vec()),
            closed: state.closed,
        }
    }

    pub(super) fn params<'a>(
        &'a self,
        lane: &'a Vec<u8>,
        generation: &'a i64,
    ) -> [&'a (dyn ToSql + Sync); 12] {
        [
            lane,
            generation,
            &self.channel,
            &self.delegate,
            &self.signer,
            &self.last_seq,
            &self.owed,
            &self.settled,
            &self.unsettled,
            &self.voucher,
            &self.signature,
            &self.closed,
        ]
    }
}

pub(super) fn decode(row: &Row) -> Result<LaneState, StoreError> {
    let get_key = |index: usize, what: &str| -> Result<Pubkey, StoreError> {
        let bytes: &[u8] = row.try_get(index).map_err(pg)?;
        <[u8; 32]>::try_from(bytes)
            .map(Pubkey::new_from_array)
            .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes", bytes.len())))
    };
    let voucher: Option<&[u8]> = row.try_get(8).map_err(pg)?;
    let signature: Option<&[u8]> = row.try_get(9).map_err(pg)?;
    let best = match (voucher, signature) {
        (Some(voucher), Some(signature)) => Some(SignedVoucher {
            voucher: voucher::decode(voucher)
                .map_err(|e| StoreError::Corrupt(format!("voucher: {e}")))?,
            signature: <[u8; SIGNATURE_LEN]>::try_from(signature)
                .map_err(|_| StoreError::Corrupt("signature length".into()))?,
        }),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt("a voucher without signature".into())),
    };
    let delegate: Option<&[u8]> = row.try_get(3).map_err(pg)?;
    let number = |index: usize| -> Result<u64, StoreError> {
        row.try_get::<_, i64>(index).map(uint).map_err(pg)
    };
    Ok(LaneState {
        id: LaneId {
            lane: get_key(0, "lane")?,
            generation: number(1)?,
        },
        channel: get_key(2, "channel")?,
        delegate: match delegate {
            Some(_) => Some(get_key(3, "delegate")?),
            None => None,
        },
        signer: get_key(4, "signer")?,
        last_seq: number(5)?,
        owed: number(6)?,
        settled: number(7)?,
        best,
        closed: row.try_get(10).map_err(pg)?,
        reserved: 0,
    })
}

pub(super) fn decode_ids(rows: &[Row]) -> Result<Vec<LaneId>, StoreError> {
    let mut ids = rows
        .iter()
        .map(|row| {
            let lane: &[u8] = row.try_get(0).map_err(pg)?;
            let lane = <[u8; 32]>::try_from(lane)
                .map_err(|_| StoreError::Corrupt("lane length".into()))?;
            Ok(LaneId {
                lane: Pubkey::new_from_array(lane),
                generation: uint(row.try_get(1).map_err(pg)?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    ids.sort();
    Ok(ids)
}

/// Reserved amounts are non-negative and far below 2^63; clamp to be sure.
pub(super) fn reserved_column(value: i128) -> i64 {
    value.clamp(0, i128::from(i64::MAX)) as i64
}

pub(super) fn pg(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Postgres(Box::new(error))
}
