#!/usr/bin/env bash
# AMP deploy migration: run after `anchor deploy`, as `anchor run migrate`
# (Anchor passes the cluster in ANCHOR_PROVIDER_URL), or directly as
# `migrations/deploy.sh [RPC_URL]`.
#
# The program needs no initialisation after deployment: it has no global or
# config account, and every Channel, Vault and Delegation is created by its
# users' own transactions. So this migration changes nothing on chain; it only
# checks that the program is live at the address the committed IDL names,
# executable and owned by the upgradeable loader, and prints its upgrade
# authority and last deploy slot.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

url="${1:-${ANCHOR_PROVIDER_URL:-}}"
idl="idl/amp_channel.json"
program_id="$(sed -n 's/^  "address": "\([1-9A-HJ-NP-Za-km-z]*\)",$/\1/p' "$idl")"
if [ -z "$program_id" ]; then
    echo "deploy migration: no program address in $idl" >&2
    exit 1
fi

echo "deploy migration: checking amp_channel $program_id${url:+ on $url}"
# Fails (non-zero) if the account does not exist or is not a program.
solana program show "$program_id" ${url:+--url "$url"}
echo "deploy migration: nothing to initialise; done"
